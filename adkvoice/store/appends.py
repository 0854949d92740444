"""Appends that finish even when the task that asked for them is cancelled.

ADK's SQL session services append an event in steps: check that the session object is
not stale (storage's update_time no newer than the object's last_update_time), write,
commit, then set the object's last_update_time. ADK cancels its task that sends to the
model whenever a live connection ends (a goAway, a drop, a handoff), and that task
appends each typed turn before sending it. Cancelled between the commit and the last
step, storage is ahead of the object, so every later append on that session raises
StaleSessionError, inside that same sending task: the conversation stops answering
without a word (measured: 1 run in 8 of `chat --text` across a goAway).

`finish_even_if_cancelled` runs the append to its end and then lets the cancellation
through, so storage and the session object always agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def finish_even_if_cancelled(operation: Coroutine[Any, Any, T]) -> T:
    """Await `operation`; when this task is cancelled meanwhile, wait for it to finish
    (a second cancellation stops the wait, not the operation), then raise."""
    task = asyncio.ensure_future(operation)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
