"""Preallocated single-producer/single-consumer int16 rings, and the playback prebuffer policy.

One side of every ring is an audio callback (DESIGN.md rule 1), so the hot paths never
allocate buffers, never block and take no locks. Safety comes from ownership instead: the
producer alone advances `_write_pos`, the consumer alone advances `_read_pos`, and both are
plain ints whose assignment is atomic under the GIL. Positions count frames since creation,
so `write_pos - read_pos` is the fill level without a wrap-around ambiguity.

Flush (barge-in) is a request, not an action: `clear()` records the write position it wants
dropped and bumps a generation counter; the consumer applies it at its next read. The
producer therefore never touches `_read_pos` while a callback may be reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]


class Int16Ring:
    """A mono int16 ring for one producer thread and one consumer thread.

    Playback: the loop writes (`write`), the output callback reads (`read_into`).
    Capture: the input callback writes, the loop reads (`read`).

    Playback extras, all consumer-side and allocation-free:
    - `start_threshold` (frames, set by the producer): after a flush, the end of a reply or
      an underrun, output stays silent until this much is buffered (the prebuffer), the
      producer has marked the end of the reply (`mark_end`, so a short reply still plays),
      or it has waited `start_hold` frames since audio arrived (the playout delay; -1, the
      default, waits as long as the threshold itself, so a producer that never marks the
      end costs at most one prebuffer of delay).
    - `fade_frames` (constructor): running dry mid-reply ramps from the last sample played
      down to zero, and resuming after it ramps the audio up, over this many frames, so
      an underrun is a short silence and never a click (0: a plain zero-fill).
    - `underruns`: gaps inside a reply. A dry ring is only an underrun if more audio of the
      same reply follows; running dry at the end of a reply (before `mark_end` arrives) is
      not one. The count is therefore taken when playback resumes after the gap.
    - `starts`: replies that began playing (not resumptions after an underrun).
    """

    def __init__(self, capacity: int, *, fade_frames: int = 0) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._buf: Int16Array = np.zeros(capacity, dtype=np.int16)
        self._capacity = capacity
        fade = max(0, fade_frames)
        steps = np.arange(1, fade + 1, dtype=np.float32) / np.float32(max(1, fade))
        self._fade_down = (1.0 - steps).astype(np.float32)  # (K-1)/K … 0
        self._fade_up = (steps - steps[:1]).astype(np.float32) if fade else steps  # 0 … (K-1)/K
        self._fade_tmp = np.zeros(fade, dtype=np.float32)
        # producer-owned
        self._write_pos = 0
        self._flush_to = 0
        self._flush_gen = 0
        self._end_pos = -1  # write position at the last `mark_end`, -1 if none
        self.start_threshold = 0
        self.start_hold = -1
        self.overflows = 0  # writes that did not fit entirely
        self.frames_dropped = 0  # frames those writes lost
        # consumer-owned
        self._read_pos = 0
        self._applied_gen = 0
        self._running = False  # consumer is playing (not holding for the prebuffer)
        self._gap_pending = False  # ran dry mid-reply; an underrun if the reply resumes
        self._held = 0  # frames of silence output while holding with audio buffered
        self._last = 0  # the last sample played, where a fade-out after running dry starts
        self._fade_from = 0
        self._fade_left = 0  # frames of that fade-out still to output
        self.underruns = 0
        self.starts = 0
        self.flushes_applied = 0
        self.frames_played = 0  # real audio handed to the device (flushed audio excluded)

    # ---- shared views ----------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def available(self) -> int:
        """Frames buffered and not yet read, with a pending flush already taken off."""
        start = self._read_pos
        if self._flush_gen != self._applied_gen:
            start = max(start, self._flush_to)
        return max(0, self._write_pos - start)

    @property
    def frames_written(self) -> int:
        return self._write_pos

    @property
    def frames_read(self) -> int:
        return self._read_pos

    @property
    def running(self) -> bool:
        """The consumer is playing buffered audio (False while holding or dry)."""
        return self._running

    @property
    def flush_pending(self) -> bool:
        return self._flush_gen != self._applied_gen

    # ---- producer --------------------------------------------------------------------

    def write(self, samples: Int16Array) -> int:
        """Copy as many samples as fit; returns how many. Never allocates buffers.

        Free space is computed from the consumer's real read position (not a pending
        flush), so a reader still copying flushed audio is never overwritten under it.
        """
        n_in = len(samples)
        free = self._capacity - (self._write_pos - self._read_pos)
        n = n_in if n_in <= free else free
        if n < n_in:
            self.overflows += 1
            self.frames_dropped += n_in - n
        if n <= 0:
            return 0
        start = self._write_pos % self._capacity
        first = min(n, self._capacity - start)
        self._buf[start : start + first] = samples[:first]
        if n > first:
            self._buf[: n - first] = samples[first:n]
        self._write_pos += n  # publish only after the copy
        return n

    def clear(self) -> None:
        """Drop everything written so far; the consumer applies it at its next read."""
        self._flush_to = self._write_pos
        self._flush_gen += 1  # published after `_flush_to`

    def mark_end(self) -> None:
        """The reply written so far is complete: play it even below the prebuffer, and
        running dry after it is not an underrun."""
        self._end_pos = self._write_pos

    # ---- consumer --------------------------------------------------------------------

    def _apply_flush(self) -> None:
        gen = self._flush_gen
        if gen != self._applied_gen:
            self._read_pos = max(self._read_pos, self._flush_to)
            self._applied_gen = gen
            self._running = False
            self._gap_pending = False
            self._held = 0
            self._fade_left = 0
            self.flushes_applied += 1

    def _copy_out(self, out: Int16Array, n: int) -> None:
        start = self._read_pos % self._capacity
        first = min(n, self._capacity - start)
        out[:first] = self._buf[start : start + first]
        if n > first:
            out[first:n] = self._buf[: n - first]
        self._read_pos += n

    def read(self, out: Int16Array) -> int:
        """Copy up to `len(out)` buffered frames into `out`; returns how many (capture side)."""
        self._apply_flush()
        n = min(len(out), self._write_pos - self._read_pos)
        if n > 0:
            self._copy_out(out, n)
        return n

    def read_into(self, out: Int16Array) -> int:
        """Fill `out` for an output callback; returns the frames of real audio in it.

        Zero-fills whatever the ring cannot supply, holds (all zeros) until the prebuffer
        is met, and keeps the underrun and reply-start counts.
        """
        self._apply_flush()
        avail = self._write_pos - self._read_pos
        resumed = False
        if not self._running:
            if avail <= 0:
                self._held = 0
                out.fill(0)
                self._fade_out(out, 0)
                return 0
            threshold = self.start_threshold
            hold = self.start_hold if self.start_hold >= 0 else threshold
            ended = self._end_pos >= 0 and self._end_pos >= self._write_pos
            if avail < threshold and not ended and self._held < hold:
                self._held += len(out)
                out.fill(0)
                self._fade_out(out, 0)
                return 0
            self._running = True
            self._held = 0
            self._fade_left = 0
            # After a gap: the same reply resuming is an underrun; an end mark placed at
            # the point where the ring ran dry means this is the next reply.
            if self._gap_pending and self._end_pos != self._read_pos:
                self.underruns += 1
                resumed = True
            else:
                self.starts += 1
            self._gap_pending = False
        n = min(len(out), avail)
        self._copy_out(out, n)
        self.frames_played += n
        fade = len(self._fade_tmp)
        if resumed and fade:
            m = min(n, fade)
            np.multiply(out[:m], self._fade_up[:m], out=self._fade_tmp[:m])
            out[:m] = self._fade_tmp[:m]
        if n < len(out):
            out[n:] = 0
            self._running = False
            # Dry before the producer marked the end: a gap, unless no more audio comes.
            # (Only the end mark of this reply counts: an earlier reply's is behind us.)
            self._gap_pending = self._read_pos != self._end_pos
            if self._gap_pending and fade:
                self._fade_from = int(out[n - 1]) if n else self._last
                self._fade_left = fade
                self._fade_out(out, n)
        elif n:
            self._last = int(out[n - 1])
        return n

    def _fade_out(self, out: Int16Array, start: int) -> None:
        """Continue the ramp from the last sample played down to zero into `out[start:]`."""
        left = self._fade_left
        if left <= 0:
            return
        m = min(len(out) - start, left)
        i = len(self._fade_tmp) - left
        np.multiply(self._fade_down[i : i + m], self._fade_from, out=self._fade_tmp[:m])
        out[start : start + m] = self._fade_tmp[:m]
        self._fade_left = left - m

    def reset(self) -> None:
        """Empty the ring at once. Only when no consumer can be running (stream stopped)."""
        self._read_pos = self._write_pos
        self._applied_gen = self._flush_gen
        self._running = False
        self._gap_pending = False
        self._held = 0
        self._fade_left = 0


@dataclass(frozen=True, slots=True)
class TimedBlock:
    pos: int  # ring position (frames since creation) of the first sample
    t: float  # monotonic time of the first sample
    samples: Int16Array


class TimedRing:
    """An `Int16Ring` whose producer stamps each write with the time of its first sample.

    The input callback stamps capture times, the output callback stamps when played audio
    reaches the speaker; the loop reads the audio back as time-stamped blocks (for chunk
    timestamps, the recorder and echo reference). Stamps live in preallocated arrays
    published by a sequence counter after the samples, so the producer never allocates.
    """

    def __init__(self, capacity: int, sample_rate: int, *, slots: int = 1024) -> None:
        self.ring = Int16Ring(capacity)
        self.sample_rate = sample_rate
        self._slots = slots
        self._pos = np.zeros(slots, dtype=np.int64)
        self._t = np.zeros(slots, dtype=np.float64)
        self._n = np.zeros(slots, dtype=np.int64)
        self._seq = 0  # producer-owned
        self._read_seq = 0  # consumer-owned
        self.lost_stamps = 0

    def write(self, samples: Int16Array, t: float) -> int:
        """Producer: copy `samples` whose first sample was at monotonic time `t`."""
        pos = self.ring.frames_written
        n = self.ring.write(samples)
        if n:
            i = self._seq % self._slots
            self._pos[i] = pos
            self._t[i] = t
            self._n[i] = n
            self._seq += 1  # publish after the stamp
        return n

    def read_blocks(self, *, merge_tolerance_s: float | None = 0.005) -> list[TimedBlock]:
        """Consumer: everything written since the last call.

        Writes that continue each other (in position, and in time within the tolerance) are
        merged into one block; `merge_tolerance_s=None` keeps every write's own stamp.
        """
        seq = self._seq
        if seq - self._read_seq > self._slots:
            self.lost_stamps += seq - self._read_seq - self._slots
            self._read_seq = seq - self._slots
        blocks: list[TimedBlock] = []
        rate = float(self.sample_rate)
        for s in range(self._read_seq, seq):
            i = s % self._slots
            pos, t, n = int(self._pos[i]), float(self._t[i]), int(self._n[i])
            done = self.ring.frames_read
            if done > pos:  # its start was read while stamps were lost
                skip = min(n, done - pos)
                pos, t, n = pos + skip, t + skip / rate, n - skip
            elif done < pos:  # unstamped audio before it: drop it
                self.ring.read(np.empty(pos - done, dtype=np.int16))
            if n <= 0:
                continue
            buf = np.empty(n, dtype=np.int16)
            got = self.ring.read(buf)
            if got <= 0:
                continue
            buf = buf[:got]
            if blocks and merge_tolerance_s is not None:
                last = blocks[-1]
                end_pos = last.pos + len(last.samples)
                expected_t = last.t + len(last.samples) / rate
                if pos == end_pos and abs(t - expected_t) <= merge_tolerance_s:
                    blocks[-1] = TimedBlock(last.pos, last.t, np.concatenate([last.samples, buf]))
                    continue
            blocks.append(TimedBlock(pos, t, buf))
        self._read_seq = seq
        return blocks


class AdaptivePrebuffer:
    """How much agent audio to buffer before playing a reply (pure policy, loop-side).

    The policy before `adkvoice.audio.jitter.JitterBuffer` (which `Playback` uses by
    default): a fixed 100 ms start prebuffer raised only by underruns. Kept for comparison
    (`bench/talk_bench.py --policy fixed`).

    Realtime models deliver ~100 ms frames with occasional 150–180 ms gaps; starting
    playback on the first frame clicks at every gap. Start small for latency (a source
    faster than real time starts at once; one sending 80 ms frames at real-time pace waits
    for its second frame), raise the target after each underrun, and decay slowly (after
    `steady_after_s` without one) so a session that saw gaps keeps absorbing them.
    """

    def __init__(
        self,
        *,
        start_ms: float = 100.0,
        min_ms: float = 60.0,
        max_ms: float = 300.0,
        raise_ms: float = 60.0,
        steady_after_s: float = 20.0,
        decay_ms_per_s: float = 1.0,
    ) -> None:
        if not 0 <= min_ms <= start_ms <= max_ms:
            raise ValueError("need 0 <= min_ms <= start_ms <= max_ms")
        self.min_ms = min_ms
        self.max_ms = max_ms
        self.raise_ms = raise_ms
        self.steady_after_s = steady_after_s
        self.decay_ms_per_s = decay_ms_per_s
        self._target_ms = start_ms
        self._steady_s = 0.0
        self.underruns = 0

    @property
    def target_ms(self) -> float:
        return self._target_ms

    def target_frames(self, sample_rate: int) -> int:
        return round(self._target_ms * sample_rate / 1000.0)

    def hold_frames(self, sample_rate: int) -> int:
        return self.target_frames(sample_rate)

    def start_frames(self, sample_rate: int) -> int:
        return self.target_frames(sample_rate)

    def on_chunk(self, at: float, seconds: float) -> None:
        """Arrival times do not matter to this policy."""

    def on_reply_end(self) -> None:
        """Nor do reply boundaries."""

    def on_underrun(self, count: int = 1) -> None:
        """A reply starved `count` times: buffer more from now on."""
        if count <= 0:
            return
        self.underruns += count
        self._target_ms = min(self.max_ms, self._target_ms + self.raise_ms * count)
        self._steady_s = 0.0

    def on_played(self, seconds: float) -> None:
        """`seconds` of reply audio played without an underrun."""
        if seconds <= 0:
            return
        steady_before = self._steady_s
        self._steady_s += seconds
        decaying_s = self._steady_s - max(steady_before, self.steady_after_s)
        if decaying_s > 0:
            self._target_ms = max(self.min_ms, self._target_ms - self.decay_ms_per_s * decaying_s)
