"""Stopping background tasks without swallowing our own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]] | asyncio.Task[object]) -> None:
    """Cancel tasks and wait until they have finished.

    Unlike `task.cancel(); with suppress(CancelledError): await task`, a cancellation
    of the *calling* task (Ctrl-C, SIGTERM) still propagates: `asyncio.wait` never raises
    the tasks' own CancelledError, only ours.
    """
    pending = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
