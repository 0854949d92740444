"""The events a backend yields: in order, ending once, with the failure that ended them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from adkvoice.errors import BackendError
from adkvoice.events import Event, Notice


class Outbox:
    """A backend's event stream. `events()` may be iterated by more than one caller in
    turn: each sees the end (and the failure) once the backend has ended."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()  # None: the end
        self.failure: BackendError | None = None

    def put(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def notice(self, message: str, *, level: Literal["info", "warning"] = "warning") -> None:
        self._queue.put_nowait(Notice(message=message, level=level))

    def end(self) -> None:
        self._queue.put_nowait(None)

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise self.failure

    async def events(self) -> AsyncIterator[Event]:
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # later callers see the end too
                self.raise_if_failed()
                return
            yield item
