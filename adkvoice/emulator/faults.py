"""Fault injection: make the emulator fail the way real connections do, on demand.

Reply faults are queued on the controller and consumed by the next model turn that starts
on any connection (one-shot) or by every turn (``sticky=True``):

- ``close-1011``: close with 1011 "Internal error encountered." after the first chunk
  (any close code can be given).
- ``drop``: abort the TCP connection after the first chunk, with no close frame.
- ``delay``: hold the reply back `seconds` before its first chunk.
- ``slow``: hold back every chunk of the reply `seconds` (a slow or congested server).
- ``malformed``: send a frame that is not JSON before the first chunk.
- ``silent``: the model never answers the turn (after a handoff, ADK's new connection
  for the agent handed to stays silent: see `handoff`).
- ``go-away``: after the turn completes, send goAway and close when `seconds` run out;
  with ``send_handle`` a fresh resumption handle goes out right before the goAway.

A turn takes its faults when it starts, so in a turn with a tool call the reply faults
(close, drop, slow) act on the answer that follows the tool response.

The ``*_now`` coroutines act at once on every live connection. Rules can trigger the same
faults by text (``fault = "drop"`` in a rules file), so out-of-process tests can use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .rules import FaultName, Rule

INTERNAL_ERROR = "Internal error encountered."
# What a rule's fault lasts when it gives no `seconds`.
DEFAULT_SECONDS: dict[FaultName, float] = {"delay": 3.0, "slow": 0.5, "go-away": 1.0}


@dataclass(frozen=True)
class Fault:
    kind: FaultName
    seconds: float = 0.0  # delay length, slow delay per chunk, or goAway time left
    code: int = 1011  # close code for close-1011
    reason: str = INTERNAL_ERROR
    send_handle: bool = False  # go-away: a fresh resumption handle first

    @classmethod
    def from_rule(cls, rule: Rule) -> Fault:
        assert rule.fault is not None
        seconds = DEFAULT_SECONDS.get(rule.fault, 0.0) if rule.seconds is None else rule.seconds
        return cls(rule.fault, seconds=seconds, send_handle=rule.send_handle)


def seconds_of(faults: list[Fault], kind: FaultName) -> float:
    """Total seconds of the faults of one kind (several may be queued)."""
    return sum(f.seconds for f in faults if f.kind == kind)


class FaultTarget(Protocol):
    """What the controller needs from a connected session."""

    async def go_away(self, time_left_s: float, *, send_handle: bool) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None: ...


class FaultController:
    def __init__(self) -> None:
        self._one_shot: list[Fault] = []
        self._sticky: list[Fault] = []
        self._live: list[FaultTarget] = []
        # Gemini documents `{resumable: false}` updates while it generates or runs tools;
        # ADK then forgets its handle. Off by default; tests can switch it on.
        self.mid_turn_resumption_updates = False

    # Reply faults ---------------------------------------------------------------------
    def inject(self, fault: Fault, *, sticky: bool = False) -> None:
        (self._sticky if sticky else self._one_shot).append(fault)

    def close_mid_reply(
        self, code: int = 1011, reason: str = INTERNAL_ERROR, *, sticky: bool = False
    ) -> None:
        self.inject(Fault("close-1011", code=code, reason=reason), sticky=sticky)

    def drop_mid_reply(self, *, sticky: bool = False) -> None:
        self.inject(Fault("drop"), sticky=sticky)

    def delay_next_reply(self, seconds: float, *, sticky: bool = False) -> None:
        self.inject(Fault("delay", seconds=seconds), sticky=sticky)

    def slow_replies(self, seconds_per_chunk: float, *, sticky: bool = False) -> None:
        """Hold back every chunk of the next reply (or of every reply, when sticky)."""
        self.inject(Fault("slow", seconds=seconds_per_chunk), sticky=sticky)

    def malformed_next_reply(self, *, sticky: bool = False) -> None:
        self.inject(Fault("malformed"), sticky=sticky)

    def go_away_after_reply(
        self, time_left_s: float = 1.0, *, send_handle: bool = False, sticky: bool = False
    ) -> None:
        self.inject(Fault("go-away", seconds=time_left_s, send_handle=send_handle), sticky=sticky)

    def silent_next_reply(self, *, sticky: bool = False) -> None:
        """The next turn (on any connection) is never answered."""
        self.inject(Fault("silent"), sticky=sticky)

    def clear(self) -> None:
        self._one_shot.clear()
        self._sticky.clear()

    @property
    def pending(self) -> tuple[Fault, ...]:
        return (*self._one_shot, *self._sticky)

    def take_for_turn(self) -> list[Fault]:
        """Faults for the turn that starts now: all one-shots (consumed) plus the sticky ones."""
        taken = [*self._one_shot, *self._sticky]
        self._one_shot.clear()
        return taken

    # Immediate faults on live connections -------------------------------------------------
    def register(self, conn: FaultTarget) -> None:
        self._live.append(conn)

    def unregister(self, conn: FaultTarget) -> None:
        if conn in self._live:
            self._live.remove(conn)

    @property
    def live_connections(self) -> int:
        return len(self._live)

    async def go_away_now(self, time_left_s: float = 1.0, *, send_handle: bool = True) -> int:
        """Send goAway on every live connection; with `send_handle`, a fresh handle first."""
        conns = list(self._live)
        for conn in conns:
            await conn.go_away(time_left_s, send_handle=send_handle)
        return len(conns)

    async def close_now(self, code: int = 1011, reason: str = INTERNAL_ERROR) -> int:
        conns = list(self._live)
        for conn in conns:
            await conn.close(code, reason)
        return len(conns)

    def drop_now(self) -> int:
        conns = list(self._live)
        for conn in conns:
            conn.abort()
        return len(conns)
