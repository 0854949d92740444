"""Small helpers for a connection's turn tasks: cancelling one, running one after another."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

TurnMaker = Callable[[], Coroutine[Any, Any, None]]


async def cancel(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended (never swallows our own cancellation)."""
    task.cancel()
    await asyncio.wait([task])


async def after(previous: asyncio.Task[None] | None, make: TurnMaker) -> None:
    """Run `make` once `previous` has finished (cancelling this cancels both)."""
    try:
        if previous is not None:
            await asyncio.wait([previous])
    except asyncio.CancelledError:
        if previous is not None:
            await cancel(previous)
        raise
    await make()
