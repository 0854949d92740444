"""Per-connection limits and error bookkeeping (pure: time is passed in)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from adkvoice.server.options import ServeOptions
from adkvoice.wire.base import ErrorCode


@dataclass
class TokenBucket:
    """Audio rate limit: `rate` bytes/s refill, `capacity` bytes of burst, starts full."""

    rate: float
    capacity: float
    tokens: float = -1.0
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def refill(self) -> None:
        """Full again at once (typed turns: the agent finished answering)."""
        self.tokens = self.capacity

    def take(self, amount: int, now: float) -> bool:
        """Spend `amount` if available; False (and nothing spent) if it would overdraw."""
        if self.updated is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if amount <= self.tokens:
            self.tokens -= amount
            return True
        return False


@dataclass
class ErrorTally:
    """Counts a connection's errors by kind and logs each kind once, not per chunk."""

    logger: logging.Logger
    label: str  # "session 1234" — who the log lines are about
    counts: Counter[str] = field(default_factory=Counter)
    _last_notified: dict[str, float] = field(default_factory=dict)

    def record(self, code: str, message: str, *, level: int = logging.WARNING) -> int:
        """Count one error; log it if it is the first of its kind. Returns the new count."""
        self.counts[code] += 1
        if self.counts[code] == 1:
            self.logger.log(
                level, "%s: %s (%s); repeats are counted, not logged", self.label, message, code
            )
        return self.counts[code]

    def should_notify(self, code: str, now: float, every_s: float) -> bool:
        """Throttle what the peer is told about a repeating error to once per `every_s`."""
        last = self._last_notified.get(code)
        if last is not None and now - last < every_s:
            return False
        self._last_notified[code] = now
        return True

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return ", ".join(f"{code} x{n}" for code, n in sorted(self.counts.items()))


class Refusal(NamedTuple):
    code: ErrorCode
    message: str


class InputRates:
    """The audio and typed-turn rate limits of one session, whichever route carries it
    (the WebSocket, or POST /send for an /events stream). Each refusal is counted in the
    tally and logged once; telling the peer is the route's business."""

    def __init__(self, options: ServeOptions, tally: ErrorTally) -> None:
        self._options = options
        self._tally = tally
        self._audio = TokenBucket(
            rate=options.audio_bytes_per_s, capacity=options.audio_burst_bytes
        )
        # Typed turns: a client that waits for each answer is never limited (the bucket
        # refills at every answer); one that floods gets the burst, then the rate.
        self._turns = TokenBucket(
            rate=options.text_turns_per_minute / 60, capacity=float(options.text_turn_burst)
        )
        self._images = TokenBucket(rate=options.images_per_s, capacity=float(options.image_burst))

    def answered(self) -> None:
        self._turns.refill()

    def text_turn(self, now: float) -> Refusal | None:
        if self._turns.take(1, now):
            return None
        self._tally.record("text_rate_exceeded", "typed turns arrive faster than allowed")
        per_minute = f"{self._options.text_turns_per_minute:g}"
        return Refusal(
            "text_rate_exceeded",
            f"too many messages: at most {per_minute} a minute; this one was dropped. "
            "Wait a moment and send it again",
        )

    def audio(self, size: int, now: float) -> Refusal | None:
        if self._audio.take(size, now):
            return None
        self._tally.record("audio_rate_exceeded", "audio arrives faster than real time")
        return Refusal(
            "audio_rate_exceeded",
            "audio is arriving faster than real time; the excess was dropped. "
            "Send 16 kHz audio as it is captured",
        )

    def image(self, now: float) -> Refusal | None:
        if self._images.take(1, now):
            return None
        self._tally.record("image_rate_exceeded", "images arrive faster than allowed")
        return Refusal(
            "image_rate_exceeded",
            f"too many images: at most {self._options.images_per_s:g} a second; this one "
            "was dropped",
        )
