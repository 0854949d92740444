"""The interface every backend implements (embedded ADK, remote servers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from adkvoice.events import Event


class Backend(Protocol):
    """A live conversation with one agent.

    `start` connects; `events` yields normalized events until the conversation ends and
    raises an `adkvoice.errors.BackendError` subclass when the connection fails. All
    methods are called from the event loop that owns the backend.
    """

    @property
    def description(self) -> str:
        """One line saying what this backend talks to, for the status line."""
        ...

    async def start(self) -> None: ...

    async def send_text(self, text: str) -> None: ...

    async def send_audio(self, pcm16k: bytes) -> None:
        """Send 16 kHz 16-bit little-endian mono PCM."""
        ...

    async def send_activity_start(self) -> None: ...

    async def send_activity_end(self) -> None: ...

    def events(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...
