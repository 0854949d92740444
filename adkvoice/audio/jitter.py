"""The speaker's adaptive jitter buffer: how long to hold an answer's first audio (pure).

`Playback` calls a policy on the loop and hands the output callback two integers it
derives (`Int16Ring.start_hold`, `start_threshold`); nothing here reads a clock or
touches audio, so every decision is tested on synthetic arrival schedules.

Lateness. Within one reply, chunk k arrives at `at_k` with `before_k` seconds of audio
ahead of it. On an exact real-time schedule `at_k - before_k` is the same for every
chunk; a chunk's lateness is how far it is behind the earliest such schedule seen in the
reply. Holding a reply's first audio for D before playing covers every chunk up to D
late, whatever the chunk size, so D (the target) is what the policy learns:

- the second-latest arrival over a sliding window (`window_s`, by arrival time), plus a
  small margin: a late arrival seen twice is covered, a single one is forgiven;
- grows at once when the window says so, and by `raise_ms` on every underrun;
- shrinks slowly (`decay_ms_per_s` per second of audio played without an underrun);
- bounded by `min_ms` and `max_ms`.

The ring counts the hold in device blocks from the first callback that sees the audio,
so a hold of D covers D to D + one block (10 ms) of lateness; the 10 ms floor keeps the
voice-to-voice time adkvoice adds at steady real time near 55 ms, of which ~38 ms is
the output device's own buffer.

A reply already ahead of real time (a source faster than real time) starts as soon as it
holds the target plus a typical chunk (`start_frames`).
"""

from __future__ import annotations

import collections
import heapq
from typing import Protocol


class PrebufferPolicy(Protocol):
    """What `Playback` asks of a prebuffer policy (loop side only)."""

    @property
    def target_ms(self) -> float: ...

    def hold_frames(self, sample_rate: int) -> int:
        """The longest a reply (or a reply resuming after an underrun) is held silent."""
        ...

    def start_frames(self, sample_rate: int) -> int:
        """Buffered audio that starts playing at once, without waiting out the hold."""
        ...

    def on_chunk(self, at: float, seconds: float) -> None:
        """`seconds` of reply audio arrived at monotonic time `at`."""
        ...

    def on_reply_end(self) -> None:
        """The reply ended or was flushed: the next chunk starts a new schedule."""
        ...

    def on_underrun(self, count: int = 1) -> None: ...

    def on_played(self, seconds: float) -> None:
        """`seconds` of reply audio played without an underrun."""
        ...


class JitterBuffer:
    """An adaptive playout delay learnt from how late chunks arrive (see the module doc)."""

    def __init__(
        self,
        *,
        min_ms: float = 10.0,
        max_ms: float = 300.0,
        start_ms: float | None = None,
        margin_ms: float = 5.0,
        window_s: float = 30.0,
        raise_ms: float = 40.0,
        decay_ms_per_s: float = 2.0,
        pause_s: float = 1.0,
        chunk_ms: float = 100.0,
    ) -> None:
        start = min_ms if start_ms is None else start_ms
        if not 0 <= min_ms <= start <= max_ms:
            raise ValueError("need 0 <= min_ms <= start_ms <= max_ms")
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.margin_ms = margin_ms
        self.window_s = window_s
        self.raise_ms = raise_ms
        self.decay_ms_per_s = decay_ms_per_s
        self.pause_s = pause_s
        self._target_ms = start
        self._chunk_ms = chunk_ms  # the typical chunk until one is seen
        # (arrival time, lateness ms, chunk ms) over the window
        self._late: collections.deque[tuple[float, float, float]] = collections.deque()
        self._anchor: float | None = None  # earliest `at - before` of this reply
        self._before = 0.0  # seconds of this reply's audio arrived so far
        self.underruns = 0
        self.chunks = 0

    # ---- what Playback reads -----------------------------------------------------------

    @property
    def target_ms(self) -> float:
        return self._target_ms

    @property
    def jitter_ms(self) -> float:
        """The lateness the window says to cover (0 with fewer than two late arrivals)."""
        lates = heapq.nlargest(2, (late for _, late, _ in self._late))
        return lates[1] if len(lates) > 1 else 0.0

    @property
    def chunk_ms(self) -> float:
        """The largest chunk in the window: how much a real-time source has buffered."""
        return max((size for _, _, size in self._late), default=self._chunk_ms)

    def target_frames(self, sample_rate: int) -> int:
        return round(self._target_ms * sample_rate / 1000.0)

    def hold_frames(self, sample_rate: int) -> int:
        return self.target_frames(sample_rate)

    def start_frames(self, sample_rate: int) -> int:
        return round((self._target_ms + self.chunk_ms) * sample_rate / 1000.0)

    # ---- observations --------------------------------------------------------------------

    def on_chunk(self, at: float, seconds: float) -> None:
        if seconds <= 0:
            return
        self.chunks += 1
        schedule = at - self._before
        if self._anchor is None or schedule - self._anchor > self.pause_s:
            late = 0.0  # a new reply, or a pause in one: a new schedule, not jitter
            self._anchor = schedule
            self._before = 0.0
            schedule = at
        elif schedule < self._anchor:
            late = 0.0  # ahead of every chunk so far: the schedule moves earlier
            self._anchor = schedule
        else:
            late = (schedule - self._anchor) * 1000.0
        self._before += seconds
        self._late.append((at, late, seconds * 1000.0))
        while self._late and self._late[0][0] < at - self.window_s:
            self._late.popleft()
        want = self._want()
        if want > self._target_ms:
            self._target_ms = want

    def on_reply_end(self) -> None:
        self._anchor = None
        self._before = 0.0

    def on_underrun(self, count: int = 1) -> None:
        if count <= 0:
            return
        self.underruns += count
        self._target_ms = min(self.max_ms, self._target_ms + self.raise_ms * count)

    def on_played(self, seconds: float) -> None:
        if seconds <= 0:
            return
        want = self._want()
        if want < self._target_ms:
            self._target_ms = max(want, self._target_ms - self.decay_ms_per_s * seconds)

    def _want(self) -> float:
        jitter = self.jitter_ms
        want = jitter + self.margin_ms if jitter > 0 else self.min_ms
        return min(self.max_ms, max(self.min_ms, want))
