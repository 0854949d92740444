"""What a live conversation needs to survive a reconnect: pure bookkeeping, no I/O.

A reconnect (after goAway, or after the connection dropped) resumes the model's side of
the conversation from the last resumption handle, which the server only issues between
turns. Whatever was in flight is gone on the server's side:

- `TurnLedger` knows which typed turn the old connection took and whether its answer
  completed, so the backend can send that turn again after the reconnect.
- `ToolReplay` makes the repeated turn reuse the results of tools that already ran for
  it, so asking again never runs a tool twice.
- `Backoff` spaces reconnect attempts: exponential, with jitter, within a budget.
- `SendHold` keeps what the user sends while there is no connection (typed turns whole,
  microphone audio bounded) and counts the audio it had to drop so the user can be told.

Both backends (embedded and remote) keep their turn state here and nowhere else: the
ledger is also what says when an answer is complete (`AnswerComplete`), because only the
backend sees the reconnects that reset it.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from adkvoice.backends.turns import TurnTracker, is_agent_output
from adkvoice.events import Event, ToolCall

MIC_BYTES_PER_SECOND = 16_000 * 2  # 16 kHz 16-bit mono microphone audio
# Audio captured while (re)connecting is kept up to this long; older audio is dropped.
MAX_HELD_AUDIO_BYTES = 2 * MIC_BYTES_PER_SECOND
# A typed turn whose connection failed this many times (goAway does not count) is given
# up: the message itself, not the network, is most likely what breaks the connection.
MAX_TURN_FAILURES = 3


@dataclass
class PendingTurn:
    """A typed turn that has not been answered completely yet."""

    text: str
    request: object  # the queue item that carries it, compared by identity
    taken_on: int | None = None  # the connection that took it from the queue
    output_seen: bool = False  # part of an answer arrived before the connection ended
    attempts: int = 1  # times sent
    failures: int = 0  # connections that failed while it was in flight


@dataclass(frozen=True)
class Retry:
    """Send `text` again: the connection that took it ended before it was answered."""

    text: str
    had_output: bool  # the user saw part of an answer that will not be finished
    attempt: int


@dataclass(frozen=True)
class AnsweredFromHistory:
    """The new connection replays a history that ends with the lost turn (the message, or
    a tool result for it): the model answers it by itself, so it is not sent again."""

    had_output: bool


@dataclass(frozen=True)
class AwaitServer:
    """A remote server may answer the lost turn by itself (an ADK server replays its
    stored history, which ends with it): send it again only if the server stays silent."""

    text: str
    had_output: bool


@dataclass(frozen=True)
class GiveUp:
    """The connection failed `failures` times while answering the turn; stop repeating it."""

    text: str
    failures: int


class TurnLedger:
    """Tracks the typed turn awaiting its answer across connections."""

    def __init__(self) -> None:
        self._turn: PendingTurn | None = None
        self._tracker = TurnTracker()
        self.connections = 0  # connections opened so far; the current one's number

    def tools_unseen(self, unseen: bool) -> None:
        """The current transport does not carry tool calls (see `TurnTracker`)."""
        self._tracker.tools_unseen = unseen

    @property
    def pending(self) -> PendingTurn | None:
        return self._turn

    def sent(self, text: str, request: object) -> None:
        """A new typed turn was queued for the model."""
        self._turn = PendingTurn(text=text, request=request)
        self._tracker.reset()

    def taken(self, request: object) -> None:
        """The current connection took `request` from the queue to send it."""
        if self._turn is not None and request is self._turn.request:
            self._turn.taken_on = self.connections

    def observe(self, event: Event) -> bool:
        """Fold in an event from the model; True when it completes the answer to a turn
        (typed or spoken): the backend then emits `AnswerComplete` after it."""
        if self._turn is not None and (is_agent_output(event) or isinstance(event, ToolCall)):
            self._turn.output_seen = True
        answered = self._tracker.feed(event)
        if answered:
            self._turn = None
        return answered

    def disconnected(self, *, failed: bool) -> None:
        """The current connection ended; `failed` unless it was closed on purpose (goAway)."""
        turn = self._turn
        if failed and turn is not None and turn.taken_on == self.connections:
            turn.failures += 1

    def connected(
        self, history_ends_with_user: bool | None = False
    ) -> Retry | AnsweredFromHistory | AwaitServer | GiveUp | None:
        """A connection opened. After a reconnect: what to do about a turn the old one lost.

        `history_ends_with_user`: the new connection is a fresh one whose replayed history
        ends with the user. A turn the old connection took was stored before it was sent,
        so that history ends with this turn, or with a tool result of its answer. None: a
        remote server's history cannot be seen (`AwaitServer`).
        """
        self.connections += 1
        turn = self._turn
        if turn is None or turn.taken_on is None or turn.taken_on >= self.connections:
            return None  # nothing in flight, or still queued: the new connection sends it
        if turn.failures >= MAX_TURN_FAILURES:
            self._turn = None
            self._tracker.reset()
            return GiveUp(text=turn.text, failures=turn.failures)
        had_output = turn.output_seen
        turn.attempts += 1
        turn.output_seen = False
        self._tracker.reset()
        if history_ends_with_user is None:
            turn.taken_on = self.connections
            return AwaitServer(text=turn.text, had_output=had_output)
        if history_ends_with_user:
            turn.taken_on = self.connections
            return AnsweredFromHistory(had_output=had_output)
        turn.taken_on = None
        return Retry(text=turn.text, had_output=had_output, attempt=turn.attempts)

    def resent(self, request: object) -> None:
        """The retried turn now travels in `request`."""
        if self._turn is not None:
            self._turn.request = request


def _call_key(name: str, args: dict[str, Any]) -> str:
    return name + "\0" + json.dumps(args, sort_keys=True, default=str)


class ToolReplay:
    """Results of the tools run for the current turn, replayed when the turn is repeated.

    Only a repeated turn replays: a user who asks the same thing twice gets the tool run
    twice, as they would expect.
    """

    def __init__(self) -> None:
        self._recorded: list[tuple[str, dict[str, Any]]] = []
        self._replayable: list[tuple[str, dict[str, Any]]] = []
        self.replayed = 0

    def new_turn(self) -> None:
        self._recorded.clear()
        self._replayable.clear()

    def repeating(self) -> None:
        """The turn is being sent again: its tools' results may be used once more each."""
        self._replayable = list(self._recorded)

    def lookup(self, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        key = _call_key(name, args)
        for index, (recorded_key, response) in enumerate(self._replayable):
            if recorded_key == key:
                del self._replayable[index]
                self.replayed += 1
                return response
        return None

    def record(self, name: str, args: dict[str, Any], response: dict[str, Any]) -> None:
        self._recorded.append((_call_key(name, args), response))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter and a retry budget."""

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 10.0
    jitter: float = 0.3  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    attempts: int = 8

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        rng = rng or random.Random()
        delay = self.first_s
        for _ in range(self.attempts):
            yield min(self.max_s, delay) * rng.uniform(1 - self.jitter, 1 + self.jitter)
            delay *= self.factor


T = TypeVar("T")


class SendHold(Generic[T]):
    """What is sent while disconnected, in order, for after the (re)connect.

    Typed turns and signals are always kept; audio (items added with `audio_bytes`) at
    most `max_audio_bytes`, the oldest dropped first.
    """

    def __init__(self, max_audio_bytes: int) -> None:
        self._max_audio_bytes = max_audio_bytes
        self._items: deque[tuple[T, int]] = deque()
        self._audio_bytes = 0
        self.dropped_bytes = 0  # audio dropped since the last `take`

    def add(self, item: T, *, audio_bytes: int = 0) -> bool:
        """Keep `item`; True if this is the first time audio had to be dropped since `take`."""
        self._items.append((item, audio_bytes))
        self._audio_bytes += audio_bytes
        first_drop = False
        while self._audio_bytes > self._max_audio_bytes:
            dropped = self._drop_oldest_audio()
            first_drop = first_drop or self.dropped_bytes == 0
            self.dropped_bytes += dropped
        return first_drop

    def _drop_oldest_audio(self) -> int:
        for index, (_item, size) in enumerate(self._items):
            if size:
                del self._items[index]
                self._audio_bytes -= size
                return size
        raise AssertionError("audio bytes counted but no audio held")

    def take(self) -> list[T]:
        """Everything held, oldest first; the hold is empty afterwards."""
        items = [item for item, _size in self._items]
        self._items.clear()
        self._audio_bytes = 0
        self.dropped_bytes = 0
        return items

    @property
    def held_bytes(self) -> int:
        """Audio held."""
        return self._audio_bytes


def dropped_audio_notice(dropped_bytes: int, *, reconnecting: bool) -> str:
    """What the user is told after audio was dropped while there was no connection."""
    return (
        f"{dropped_bytes / MIC_BYTES_PER_SECOND:.1f} s of microphone audio was dropped while "
        f"{'reconnecting' if reconnecting else 'connecting'} (only the last "
        f"{MAX_HELD_AUDIO_BYTES / MIC_BYTES_PER_SECOND:.0f} s are kept)"
    )
