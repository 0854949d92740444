"""Connections that do not finish their request in time are closed.

uvicorn has no timeout for reading a request: its keep-alive timer only runs between
requests and stops at the first byte. A client that sends half a request, or one byte
every few seconds, would hold a file descriptor for ever, and a thousand of them exhaust
the process's descriptors without ever showing a token.

So every accepted connection is *pending* from the moment it is accepted (and again when
a kept-alive connection starts another request) until its request is complete: for
HTTP, until h11 has the headers and the whole body; for a WebSocket, until the handshake
is parsed and handed to the app. A pending connection is closed when

- it is still pending `deadline_s` after it became pending (trickling bytes do not
  buy time), or
- `cap` connections are pending and one more arrives: the oldest is closed, so a flood
  cannot starve a fresh, fast request such as `/healthz`.

`PendingRequests` and `CloseTally` are the policy (pure: time is passed in);
`ConnectionGuard` runs it on the event loop, and `guarded_protocols` gives uvicorn the
protocol classes that report to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

import h11
from h11._state import MIGHT_SWITCH_PROTOCOL  # public as h11.MIGHT_SWITCH_PROTOCOL, not in __all__
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

log = logging.getLogger("adkvoice.server")

K = TypeVar("K", bound=Hashable)

SUMMARY_EVERY_S = 60.0
SLOW = "slow"  # still pending at its deadline
OVER_CAP = "over_cap"  # the oldest pending connection when one too many arrived
_REASONS = {SLOW: "too slow", OVER_CAP: "oldest of too many"}
# h11's states for a client whose whole request is in. MIGHT_SWITCH_PROTOCOL: a request
# that also offered an upgrade uvicorn does not take (curl --http2 sends `Upgrade: h2c`).
_REQUEST_IN = (h11.DONE, h11.MUST_CLOSE, MIGHT_SWITCH_PROTOCOL)


@dataclass
class PendingRequests(Generic[K]):
    """Connections still sending their request, oldest first (pure: time is passed in)."""

    deadline_s: float
    cap: int
    _since: OrderedDict[K, float] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, key: object) -> bool:
        return key in self._since

    def begin(self, key: K, now: float) -> list[K]:
        """`key` waits for a request. A key already pending keeps its start: more bytes of
        the same request do not move its deadline. Returns the oldest keys to close so
        that at most `cap` stay pending (never `key` itself: it is the newest)."""
        if key not in self._since:
            self._since[key] = now
        evicted: list[K] = []
        while len(self._since) > self.cap:
            oldest, _ = self._since.popitem(last=False)
            evicted.append(oldest)
        return evicted

    def finish(self, key: K) -> None:
        """`key` completed its request, or closed."""
        self._since.pop(key, None)

    def expired(self, now: float) -> list[K]:
        """Remove and return the keys whose deadline has come, oldest first."""
        out: list[K] = []
        # Keys are in the order they began, and `now` never goes back: the oldest first.
        while self._since:
            key, since = next(iter(self._since.items()))
            if now - since < self.deadline_s:
                break
            del self._since[key]
            out.append(key)
        return out

    def next_deadline(self) -> float | None:
        """When the oldest pending key expires; None when nothing is pending."""
        since = next(iter(self._since.values()), None)
        return None if since is None else since + self.deadline_s


@dataclass
class CloseTally:
    """What the guard says about the connections it closed: the first close at once, then
    counts at most once per `every_s`, so a flood is a few lines, not one per connection.
    Never the request itself: a request line or header may carry a token."""

    deadline_s: float
    cap: int
    every_s: float = SUMMARY_EVERY_S
    totals: Counter[str] = field(default_factory=Counter)
    unreported: Counter[str] = field(default_factory=Counter)
    _last_line_at: float | None = None

    def record(self, reason: str, count: int = 1) -> None:
        self.totals[reason] += count
        self.unreported[reason] += count

    def due_at(self) -> float | None:
        """When the next line may be written; None when there is nothing to say."""
        if not self.unreported:
            return None
        return self._last_line_at + self.every_s if self._last_line_at is not None else 0.0

    def line(self, now: float, *, final: bool = False) -> str | None:
        """The line to log now, if one is due (`final`: say what is left, due or not)."""
        due = self.due_at()
        if due is None or (now < due and not final):
            return None
        counts = ", ".join(
            f"{n} {_REASONS.get(reason, reason)}" for reason, n in sorted(self.unreported.items())
        )
        first = self._last_line_at is None
        self._last_line_at = now
        self.unreported.clear()
        if first:
            return (
                f"closed connections that did not finish their request ({counts}; "
                f"deadline {self.deadline_s:g} s, at most {self.cap} at once); "
                f"further closes are counted and logged at most once every {self.every_s:g} s"
            )
        return f"closed connections that did not finish their request: {counts}"


class ConnectionGuard:
    """Runs `PendingRequests` on the event loop; protocols report by transport (the HTTP
    protocol and the WebSocket protocol it upgrades to share the transport)."""

    def __init__(self, deadline_s: float, cap: int, *, logger: logging.Logger = log) -> None:
        self.pending_requests: PendingRequests[asyncio.BaseTransport] = PendingRequests(
            deadline_s, cap
        )
        self.tally = CloseTally(deadline_s, cap)
        self._log = logger
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._summary: asyncio.TimerHandle | None = None

    def pending(self, transport: asyncio.BaseTransport) -> None:
        """The connection waits for (the rest of) a request; a no-op if it already does."""
        loop = asyncio.get_running_loop()
        evicted = self.pending_requests.begin(transport, loop.time())
        self._close(evicted, OVER_CAP)
        self._arm(loop)

    def complete(self, transport: asyncio.BaseTransport) -> None:
        """The request is in. The timer may then fire early; it finds nothing and re-arms."""
        self.pending_requests.finish(transport)

    closed = complete  # connection_lost: forget it

    def stop(self) -> None:
        """The server stopped: no more timers; say what was not said yet."""
        for handle in (self._timer, self._summary):
            if handle is not None:
                handle.cancel()
        self._timer = self._summary = None
        self._say(final=True)

    def _close(self, transports: list[asyncio.BaseTransport], reason: str) -> None:
        if not transports:
            return
        for transport in transports:
            # abort, not close: close would wait to flush, and the point is the descriptor.
            # (uvloop's transports have abort() without being asyncio.WriteTransport.)
            abort = getattr(transport, "abort", None)
            if callable(abort):
                abort()
            else:
                transport.close()
        self.tally.record(reason, len(transports))
        self._say()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        # The oldest key's deadline only moves later, so an armed timer is never late.
        at = self.pending_requests.next_deadline()
        if at is not None and self._timer is None:
            self._timer_at = at
            self._timer = loop.call_at(at, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        # The loop may run a timer a clock tick early; the timer stands for its moment.
        now = max(loop.time(), self._timer_at)
        self._close(self.pending_requests.expired(now), SLOW)
        self._arm(loop)

    def _say(self, *, final: bool = False) -> None:
        loop = asyncio.get_running_loop()
        line = self.tally.line(loop.time(), final=final)
        if line is not None:
            self._log.warning("%s", line)
        due = self.tally.due_at()
        if due is not None and self._summary is None and not final:
            self._summary = loop.call_at(due, self._on_summary)

    def _on_summary(self) -> None:
        self._summary = None
        self._say()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, reporting to `guard` when a request is complete."""

    guard: ClassVar[ConnectionGuard]
    _upgraded = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.guard.pending(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._report()

    def on_response_complete(self) -> None:
        # A kept-alive connection may go on to a pipelined request here.
        super().on_response_complete()
        self._report()

    def send_400_response(self, msg: str) -> None:
        # The request turned out malformed (a bad chunk in its body) after the app had
        # started on it: the app is told the client is gone, or its own response would
        # meet h11 in MUST_CLOSE and log a traceback; once it has begun to answer, the
        # connection is just closed.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.logger.warning(msg)
                self.transport.close()
                return
        super().send_400_response(msg)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # From here the WebSocket protocol reports; h11 never sees the rest.
        self._upgraded = True
        super().handle_websocket_upgrade(event)

    def _report(self) -> None:
        if self._upgraded or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state in _REQUEST_IN:
            self.guard.complete(self.transport)
        elif state is h11.SEND_BODY or self.conn.trailing_data[0]:
            # A request (or part of one) has begun; idle kept-alive connections are left
            # to uvicorn's keep-alive timeout.
            self.guard.pending(self.transport)


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, reporting to `guard` when the handshake reaches the
    app; invalid UTF-8 is one log line, not a traceback per frame."""

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.pending(self.transport)  # already pending since the HTTP request began

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.closed(self.transport)
        super().connection_lost(exc)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        self.guard.complete(self.transport)

    def send_receive_event_to_app(self) -> None:
        # uvicorn closes such a frame with 1007 too, but logs a traceback for each: checked
        # here first (text frames are small JSON; decoding twice costs little).
        if self.curr_msg_data_type == "text" and not self.close_sent:
            try:
                b"".join(self.frames).decode()
            except UnicodeDecodeError:
                self.frames = []
                self.logger.warning("Invalid UTF-8 in a text frame: closing with 1007.")
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        super().send_receive_event_to_app()


def guarded_protocols(
    guard: ConnectionGuard,
) -> tuple[type[GuardedH11Protocol], type[GuardedWebSocketProtocol]]:
    """The classes to give `uvicorn.Config(http=..., ws=...)`, reporting to `guard`.

    uvicorn builds protocols from a class and its own arguments, so each server gets
    subclasses that carry its guard."""

    class Http(GuardedH11Protocol):
        pass

    class WebSocket(GuardedWebSocketProtocol):
        pass

    Http.guard = guard
    WebSocket.guard = guard
    return Http, WebSocket
