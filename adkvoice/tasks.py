"""Background tasks: stopped without swallowing our own cancellation, and supervised so
that a failure in any of them ends the command with one line instead of vanishing."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any


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


class Supervisor:
    """The tasks of one command. The first to fail ends the command with its error,
    including failures handed over from threads (the key reader) and from tasks started
    per key press, which would otherwise vanish into a log line nobody sees."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """End the command with `exc` (call on the loop; from a thread, through
        `loop.call_soon_threadsafe`)."""
        if not self._failed.done():
            self._failed.set_exception(exc)

    async def run_until_first_done(self, tasks: Iterable[asyncio.Task[object]]) -> None:
        """Wait until one of `tasks` ends or anything fails; raise the first failure.
        Every task is cancelled and awaited on the way out."""
        watched = list(tasks)
        waits: list[asyncio.Future[Any]] = [*watched, self._failed]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if self._failed.done():
                self._failed.result()
            for task in done:
                if task is not self._failed and (exc := task.exception()) is not None:
                    raise exc
        finally:
            await cancel_and_wait([*watched, *self._tasks])
            if self._failed.done() and not self._failed.cancelled():
                self._failed.exception()  # retrieved: never "exception was never retrieved"
            else:
                self._failed.cancel()
