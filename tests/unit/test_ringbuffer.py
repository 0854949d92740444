"""The SPSC int16 rings and the adaptive prebuffer policy (pure, no devices)."""

from __future__ import annotations

import collections
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from adkvoice.audio.ring import AdaptivePrebuffer, Int16Ring, TimedRing


def ramp(start: int, n: int) -> np.ndarray:
    return (np.arange(start, start + n) % 30000).astype(np.int16)


def test_write_read_wraps_around_exactly() -> None:
    ring = Int16Ring(8)
    out = np.empty(8, dtype=np.int16)
    assert ring.write(ramp(0, 6)) == 6
    assert ring.read(out[:5]) == 5
    assert list(out[:5]) == [0, 1, 2, 3, 4]
    assert ring.write(ramp(6, 7)) == 7  # wraps: 2 free at the end, 5 at the start
    assert ring.available == 8
    assert ring.read(out) == 8
    assert list(out) == list(range(5, 13))
    assert (ring.frames_written, ring.frames_read, ring.available) == (13, 13, 0)


def test_write_reports_what_fits_and_counts_overflow() -> None:
    ring = Int16Ring(10)
    assert ring.write(ramp(0, 7)) == 7
    assert ring.write(ramp(7, 7)) == 3
    assert ring.write(ramp(0, 1)) == 0
    assert (ring.overflows, ring.frames_dropped) == (2, 5)
    out = np.empty(10, dtype=np.int16)
    assert ring.read(out) == 10
    assert list(out) == list(range(10))


def test_read_into_zero_fills_when_short() -> None:
    ring = Int16Ring(16)
    ring.write(ramp(1, 3))
    out = np.full(5, 7, dtype=np.int16)
    assert ring.read_into(out) == 3
    assert list(out) == [1, 2, 3, 0, 0]
    out.fill(7)
    assert ring.read_into(out) == 0  # idle: silence, nothing counted
    assert list(out) == [0] * 5
    assert ring.underruns == 0


def test_gap_inside_a_reply_is_an_underrun_end_of_reply_is_not() -> None:
    ring = Int16Ring(64)
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(0, 6))
    ring.read_into(out)
    ring.read_into(out)  # dry after 2 of 4
    ring.write(ramp(6, 4))  # the same reply continues: that was a gap
    ring.read_into(out)
    assert (ring.underruns, ring.starts) == (1, 1)
    ring.mark_end()
    ring.read_into(out)  # dry exactly at the end mark: not an underrun
    ring.write(ramp(0, 8))  # next reply
    ring.read_into(out)
    assert (ring.underruns, ring.starts) == (1, 2)


def test_end_mark_arriving_after_the_ring_ran_dry_is_not_an_underrun() -> None:
    ring = Int16Ring(64)
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(0, 6))
    ring.read_into(out)
    ring.read_into(out)  # dry before the turn-complete event arrived
    ring.mark_end()
    ring.write(ramp(0, 4))
    ring.read_into(out)
    assert (ring.underruns, ring.starts) == (0, 2)


def test_clear_is_applied_by_the_consumer_and_keeps_later_audio() -> None:
    ring = Int16Ring(32)
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(0, 12))
    ring.read_into(out)
    ring.clear()
    assert ring.flush_pending
    assert ring.available == 0  # the producer already sees it gone
    assert ring.frames_read == 4  # but the consumer's position is untouched until it reads
    ring.write(ramp(100, 4))  # the next reply, written before the callback ran
    assert ring.available == 4
    assert ring.read_into(out) == 4
    assert list(out) == [100, 101, 102, 103]
    assert ring.flushes_applied == 1
    assert not ring.flush_pending
    assert ring.underruns == 0


def test_flush_mid_reply_is_not_an_underrun() -> None:
    ring = Int16Ring(32)
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(0, 12))
    ring.read_into(out)
    ring.clear()
    assert ring.read_into(out) == 0
    assert list(out) == [0, 0, 0, 0]
    ring.write(ramp(0, 12))
    ring.read_into(out)
    assert (ring.underruns, ring.starts) == (0, 2)


def test_prebuffer_holds_until_threshold() -> None:
    ring = Int16Ring(64)
    ring.start_threshold = 10
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(1, 6))
    assert ring.read_into(out) == 0  # held
    ring.write(ramp(7, 6))
    assert ring.read_into(out) == 4  # 12 >= 10: plays
    assert list(out) == [1, 2, 3, 4]
    assert ring.running


def test_short_reply_plays_once_marked_complete() -> None:
    ring = Int16Ring(64)
    ring.start_threshold = 1000
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(1, 3))
    assert ring.read_into(out) == 0
    ring.mark_end()
    assert ring.read_into(out) == 3
    assert ring.underruns == 0


def test_hold_never_exceeds_the_threshold_duration() -> None:
    ring = Int16Ring(64)
    ring.start_threshold = 8
    out = np.empty(4, dtype=np.int16)
    ring.write(ramp(1, 3))  # the producer never marks the end
    assert ring.read_into(out) == 0
    assert ring.read_into(out) == 0
    assert ring.read_into(out) == 3  # waited 8 frames: play what there is


def test_reset_empties_at_once() -> None:
    ring = Int16Ring(16)
    ring.write(ramp(0, 10))
    ring.clear()
    ring.reset()
    assert ring.available == 0
    assert not ring.flush_pending


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Int16Ring(0)


def test_read_and_write_do_not_allocate_buffers() -> None:
    ring = Int16Ring(48_000)
    block = np.ones(480, dtype=np.int16)
    out = np.empty(480, dtype=np.int16)
    for _ in range(10):  # warm up
        ring.write(block)
        ring.read_into(out)
    tracemalloc.start()
    try:
        for _ in range(2_000):  # wraps the ring many times
            ring.write(block)
            ring.read_into(out)
            ring.clear()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000  # a few small view objects at most, never a block-sized buffer


def test_threaded_producer_and_consumer_see_every_sample_in_order() -> None:
    ring = Int16Ring(1000)
    total = 200_000
    received: list[np.ndarray] = []

    def produce() -> None:
        sent = 0
        while sent < total:
            n = min(173, total - sent)
            sent += ring.write(ramp(sent, n))

    def consume() -> None:
        got = 0
        out = np.empty(97, dtype=np.int16)
        while got < total:
            n = ring.read(out)
            if n:
                received.append(out[:n].copy())
                got += n

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert np.array_equal(np.concatenate(received), ramp(0, total))


class RingModel(RuleBasedStateMachine):
    """The ring behaves like a bounded FIFO (a deque) under any sequence of operations.

    A flush frees its space only once the consumer has applied it at its next read (the
    producer never reuses memory a callback may still be copying), which `held` models.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ring = Int16Ring(37)
        self.model: collections.deque[int] = collections.deque()
        self.held = 0  # flushed frames whose space the consumer has not reclaimed yet
        self.next_value = 0

    @rule(n=st.integers(0, 60))
    def write(self, n: int) -> None:
        data = ramp(self.next_value, n)
        self.next_value += n
        written = self.ring.write(data)
        assert written == min(n, 37 - len(self.model) - self.held)
        self.model.extend(int(v) for v in data[:written])

    @rule(n=st.integers(0, 60))
    def read_into(self, n: int) -> None:
        out = np.full(n, -1, dtype=np.int16)
        got = self.ring.read_into(out)
        self.held = 0
        expect = [self.model.popleft() for _ in range(min(n, len(self.model)))]
        assert got == len(expect)
        assert list(out[:got]) == expect
        assert not out[got:].any()

    @rule()
    def clear(self) -> None:
        self.ring.clear()
        self.held += len(self.model)
        self.model.clear()

    @invariant()
    def available_matches(self) -> None:
        assert self.ring.available == len(self.model)


TestRingModel = RingModel.TestCase
TestRingModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_timed_ring_stamps_map_back_to_sample_times(sizes: list[int]) -> None:
    rate = 1000
    timed = TimedRing(10_000, rate)
    pos = 0
    for n in sizes:
        timed.write(ramp(pos, n), 5.0 + pos / rate)  # contiguous: merged into one block
        pos += n
    blocks = timed.read_blocks()
    assert len(blocks) == 1
    assert blocks[0].t == pytest.approx(5.0)
    assert np.array_equal(blocks[0].samples, ramp(0, pos))
    assert timed.read_blocks() == []


def test_timed_ring_keeps_time_jumps_as_separate_blocks() -> None:
    timed = TimedRing(1000, 100)
    timed.write(ramp(0, 10), 1.0)
    timed.write(ramp(10, 10), 1.1)  # contiguous
    timed.write(ramp(20, 10), 3.0)  # a pause between replies
    blocks = timed.read_blocks()
    assert [(b.pos, b.t, len(b.samples)) for b in blocks] == [(0, 1.0, 20), (20, 3.0, 10)]


def test_timed_ring_survives_lost_stamps() -> None:
    timed = TimedRing(1000, 100, slots=4)
    for i in range(6):
        timed.write(ramp(i * 10, 10), float(i))
    blocks = timed.read_blocks()
    assert timed.lost_stamps == 2
    assert blocks[0].pos == 20  # unstamped audio before the oldest stamp is dropped
    assert sum(len(b.samples) for b in blocks) == 40


def test_prebuffer_policy_defaults() -> None:
    policy = AdaptivePrebuffer()
    assert policy.target_ms == 100
    assert (policy.min_ms, policy.max_ms) == (60, 300)


def test_prebuffer_policy_starts_small_raises_and_decays() -> None:
    policy = AdaptivePrebuffer(
        start_ms=80, min_ms=60, max_ms=300, raise_ms=60, steady_after_s=10, decay_ms_per_s=2
    )
    assert policy.target_ms == 80
    assert policy.target_frames(24_000) == 1920
    policy.on_underrun()
    assert policy.target_ms == 140
    policy.on_underrun(5)
    assert policy.target_ms == 300  # capped
    policy.on_played(9.0)
    assert policy.target_ms == 300  # not steady for long enough yet
    policy.on_played(11.0)  # 10 s past the steady mark at 2 ms/s
    assert policy.target_ms == pytest.approx(280)
    policy.on_played(1000.0)
    assert policy.target_ms == 60  # floor
    policy.on_underrun()
    policy.on_played(5.0)
    assert policy.target_ms == 120  # steadiness restarts after an underrun


def test_prebuffer_policy_validates_bounds() -> None:
    with pytest.raises(ValueError, match="min_ms"):
        AdaptivePrebuffer(start_ms=10, min_ms=60)
