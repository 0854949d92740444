"""Session resumption handles: the conversation each one restores, and for how long.

Gemini keeps a resumption handle usable for a while after its connection ended; the
emulator keeps one for `ttl_s` (2 hours by default, `EmulatorOptions.handle_ttl_s`) counted
from the end of the connection that issued it, so the handles of a connection still open
never expire. A setup naming a handle that is unknown, superseded or expired is refused
(see server.py).

Each handle holds a snapshot of the conversation, and a connection issues one per turn:
only its last KEEP_PER_CONNECTION handles stay usable, so a long conversation does not
keep a snapshot per turn. Clients resume with the latest handle they received; Gemini
does not document how long older ones of the same connection stay valid.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from . import client_messages as p

DEFAULT_TTL_S = 2 * 60 * 60
KEEP_PER_CONNECTION = 4


@dataclass
class ContextSnapshot:
    """What a resumption handle restores."""

    history: list[p.Turn] = field(default_factory=list)
    user_turns: int = 0

    def copy(self) -> ContextSnapshot:
        return ContextSnapshot(history=list(self.history), user_turns=self.user_turns)


class HandleOwner:
    """The handles one connection issued, and when that connection ended."""

    def __init__(self) -> None:
        self.ended_at: float | None = None
        self.issued: deque[str] = deque()


@dataclass
class _Entry:
    conversation: ContextSnapshot
    owner: HandleOwner


class IssuedHandles:
    """Emulator-wide, so a new connection can resume a handle any earlier one issued."""

    def __init__(
        self, ttl_s: float = DEFAULT_TTL_S, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def issue(self, owner: HandleOwner, conversation: ContextSnapshot) -> str:
        """A new handle for a snapshot of `conversation`; supersedes the owner's oldest."""
        self._prune()
        handle = "emu-" + secrets.token_urlsafe(12)
        self._entries[handle] = _Entry(conversation.copy(), owner)
        owner.issued.append(handle)
        while len(owner.issued) > KEEP_PER_CONNECTION:
            self._entries.pop(owner.issued.popleft(), None)
        return handle

    def restore(self, handle: str) -> ContextSnapshot | None:
        """A copy of the conversation `handle` names, or None if it is not (or no longer) valid."""
        self._prune()
        entry = self._entries.get(handle)
        return None if entry is None else entry.conversation.copy()

    def get(self, handle: str) -> ContextSnapshot | None:
        """The stored snapshot itself (for tests); None if the handle is not valid."""
        self._prune()
        entry = self._entries.get(handle)
        return None if entry is None else entry.conversation

    def connection_ended(self, owner: HandleOwner) -> None:
        """Start the owner's handles' time to live."""
        owner.ended_at = self._clock()

    def _prune(self) -> None:
        now = self._clock()
        expired = [
            handle
            for handle, entry in self._entries.items()
            if entry.owner.ended_at is not None and now - entry.owner.ended_at >= self.ttl_s
        ]
        for handle in expired:
            del self._entries[handle]
