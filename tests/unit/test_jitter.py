"""The adaptive jitter buffer (pure policy) and the ring's fades, on synthetic schedules.

The schedule tests drive the real `Playback` (a fake sounddevice, a fake clock, the
output callback run every 10 ms) so the policy, the glue and the ring are tested together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from adkvoice.audio import playback as playback_module
from adkvoice.audio.dsp import int16_to_pcm
from adkvoice.audio.jitter import JitterBuffer, PrebufferPolicy
from adkvoice.audio.playback import Playback
from adkvoice.audio.ring import AdaptivePrebuffer, Int16Ring
from tests.unit.test_audio import OK, block_time, fake_sd  # noqa: F401  (fixture)

RATE = 24_000
BLOCK = 240  # 10 ms
Schedule = list[tuple[float, int]]  # (arrival, seconds after the reply's first chunk; frames)


# ---- schedules ---------------------------------------------------------------------------


def steady(seconds: float, chunk_ms: int = 80, noise_ms: float = 2.0, seed: int = 0) -> Schedule:
    """Real time, `chunk_ms` chunks, each up to `noise_ms` late (scheduling noise)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 1000 // chunk_ms)
    frames = RATE * chunk_ms // 1000
    return [
        (k * chunk_ms / 1000 + (rng.uniform(0, noise_ms) / 1000 if k else 0.0), frames)
        for k in range(n)
    ]


def bursty(seconds: float, seed: int = 0, every: int = 6) -> Schedule:
    """100 ms frames at real time on average, but about one in `every` comes 50–80 ms
    late (a 150–180 ms gap) and the next one on time (the burst that catches up)."""
    rng = np.random.default_rng(seed)
    out: Schedule = []
    late_before = True
    for k in range(int(seconds * 10)):
        late = not late_before and rng.integers(every) == 0
        out.append((k * 0.1 + (rng.uniform(0.05, 0.08) if late else 0.0), RATE // 10))
        late_before = late
    return out


@dataclass
class Run:
    waits: list[float] = field(default_factory=list)  # first chunk → first sample out
    underruns: list[int] = field(default_factory=list)  # per reply
    targets: list[float] = field(default_factory=list)  # after each reply
    played: list[np.ndarray] = field(default_factory=list)


async def simulate(
    monkeypatch: pytest.MonkeyPatch,
    policy: PrebufferPolicy,
    replies: list[Schedule],
    *,
    pause_s: float = 0.5,
    keep_audio: bool = False,
) -> Run:
    """Each reply's chunks reach `Playback.enqueue` at their times, `end_reply` follows the
    last; the output callback runs every 10 ms (3 ms out of phase with the replies)."""
    pb = Playback("pulse", prebuffer=policy)
    await pb.start()
    clock = [1000.0]
    monkeypatch.setattr(playback_module, "_monotonic", lambda: clock[0])
    run = Run()
    tick = 1000.003
    chunk = int16_to_pcm(np.full(RATE, 1000, dtype=np.int16))
    for schedule in replies:
        t0 = tick + pause_s
        events = [(t0 + at, frames) for at, frames in schedule]
        end_at = events[-1][0] + 0.001
        u0, starts0 = pb.underruns, pb.ring.starts
        waited = False
        while pb.ring.starts == starts0 or pb.playing or events or end_at > 0:
            while events and events[0][0] <= tick:
                at, frames = events.pop(0)
                clock[0] = at
                pb.enqueue(chunk[: frames * 2])
            if 0 < end_at <= tick and not events:
                clock[0] = end_at
                pb.end_reply()
                end_at = -1.0
            clock[0] = tick
            out = np.zeros((BLOCK, 1), dtype=np.int16)
            pb._callback(out, BLOCK, block_time(), OK)
            if keep_audio:
                run.played.append(out[:, 0].copy())
            if not waited and pb.ring.starts != starts0:
                run.waits.append(tick - t0)
                waited = True
            tick += BLOCK / RATE
        run.underruns.append(pb.underruns - u0)
        run.targets.append(policy.target_ms)
    pb.close()
    return run


# ---- the policy on schedules -----------------------------------------------------------------


@pytest.mark.usefixtures("fake_sd")
async def test_steady_real_time_plays_after_the_minimum_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = JitterBuffer()
    run = await simulate(monkeypatch, policy, [steady(3, seed=s) for s in range(5)])
    assert run.underruns == [0] * 5
    assert run.targets == [10.0] * 5  # 2 ms of noise + 5 ms margin: under the floor
    # The hold (10 ms) plus the wait for the next callback; the old policy waits for the
    # second 80 ms chunk.
    assert max(run.waits) <= 0.021
    old = await simulate(monkeypatch, AdaptivePrebuffer(), [steady(3, seed=s) for s in range(3)])
    assert min(old.waits) >= 0.08


@pytest.mark.usefixtures("fake_sd")
async def test_bursty_delivery_adapts_then_never_underruns(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = JitterBuffer()
    run = await simulate(monkeypatch, policy, [bursty(4, seed=s) for s in range(6)])
    assert sum(run.underruns) <= 2  # the first gaps, before anything was learnt
    assert run.underruns[1:] == [0] * 5
    assert 80 <= policy.target_ms <= 130  # covers the 80 ms late frames, not much more
    assert 0.08 <= run.waits[-1] <= 0.14


@pytest.mark.usefixtures("fake_sd")
async def test_a_single_late_frame_is_not_chased(monkeypatch: pytest.MonkeyPatch) -> None:
    late = steady(3, seed=1)
    late[10] = (late[10][0] + 0.15, late[10][1])  # one frame 150 ms late
    replies = [steady(3), late, *(steady(3, seed=s) for s in range(2, 12))]
    policy = JitterBuffer()
    run = await simulate(monkeypatch, policy, replies)
    assert run.underruns[1] == 1  # that one could not be foreseen
    assert sum(run.underruns) == 1
    assert 40 < run.targets[1] <= 50  # raised by the underrun (not to 150 ms), then decaying
    assert run.targets[-1] < run.targets[5] < run.targets[1]  # and shrinking slowly back
    assert run.targets[-1] == pytest.approx(10, abs=1)


@pytest.mark.usefixtures("fake_sd")
async def test_a_source_ahead_of_real_time_starts_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    burst: Schedule = [(0.0, 1920)] * 20  # the emulator at full speed: 1.6 s at once
    run = await simulate(monkeypatch, JitterBuffer(), [burst, burst])
    assert run.waits == [pytest.approx(0.0, abs=0.011)] * 2
    assert run.underruns == [0, 0]


@pytest.mark.usefixtures("fake_sd")
async def test_an_underrun_fades_out_and_back_in(monkeypatch: pytest.MonkeyPatch) -> None:
    gap: Schedule = [(0.0, 2400), (0.3, 2400)]  # 100 ms, then 200 ms of nothing
    run = await simulate(monkeypatch, JitterBuffer(), [gap], keep_audio=True)
    assert run.underruns == [1]
    audio = np.concatenate(run.played).astype(np.int32)
    sounding = np.flatnonzero(audio)
    audio = audio[sounding[0] : sounding[-1] + 1]  # the reply starts and ends on a step
    assert np.abs(np.diff(audio)).max() <= 1000 // (RATE * playback_module.FADE_MS // 1000) + 1
    assert np.count_nonzero(audio == 1000) > 4000


# ---- the policy alone ----------------------------------------------------------------------


def test_lateness_is_measured_against_the_earliest_schedule() -> None:
    policy = JitterBuffer(min_ms=0, margin_ms=0)
    for at in (0.0, 0.1, 0.25, 0.3):  # 100 ms chunks; the third 50 ms late
        policy.on_chunk(at, 0.1)
    assert policy.jitter_ms == 0  # one late arrival is forgiven
    policy.on_chunk(0.45, 0.1)  # 50 ms late again
    assert policy.jitter_ms == pytest.approx(50)
    assert policy.target_ms == pytest.approx(50)
    policy.on_chunk(0.48, 0.1)  # early: the schedule moves, nothing is late
    assert policy.jitter_ms == pytest.approx(50)


def test_reply_ends_and_pauses_start_a_new_schedule() -> None:
    policy = JitterBuffer()
    policy.on_chunk(0.0, 0.1)
    policy.on_reply_end()
    policy.on_chunk(5.0, 0.1)  # the next reply: not 4.9 s late
    policy.on_chunk(9.0, 0.1)  # a pause inside a reply: not jitter either
    policy.on_chunk(9.1, 0.1)
    assert policy.jitter_ms == 0
    assert policy.target_ms == 10


def test_the_window_forgets_and_the_target_shrinks_slowly() -> None:
    policy = JitterBuffer(window_s=10, decay_ms_per_s=2)
    for at in (0.0, 0.18, 0.2, 0.38, 0.4):  # two frames 80 ms late
        policy.on_chunk(at, 0.1)
    assert policy.target_ms == pytest.approx(85)
    policy.on_played(10.0)
    assert policy.target_ms == pytest.approx(85)  # still in the window
    t = 0.5
    while t < 12:  # on time from now on, until the late frames leave the window
        policy.on_chunk(t, 0.1)
        t += 0.1
    policy.on_played(10.0)
    assert policy.target_ms == pytest.approx(65)
    policy.on_played(100.0)
    assert policy.target_ms == 10


def test_underruns_raise_the_target_up_to_the_cap() -> None:
    policy = JitterBuffer(raise_ms=40, max_ms=300)
    policy.on_underrun()
    assert policy.target_ms == 50
    assert policy.underruns == 1
    policy.on_underrun(10)
    assert policy.target_ms == 300
    policy.on_underrun(0)
    assert policy.underruns == 11


def test_frames_from_the_target_and_the_chunk_size() -> None:
    policy = JitterBuffer()
    assert policy.hold_frames(RATE) == 240
    assert policy.start_frames(RATE) == 240 + 2400  # plus a 100 ms chunk until one is seen
    policy.on_chunk(0.0, 0.04)
    assert policy.start_frames(RATE) == 240 + 960


def test_policy_validates_bounds() -> None:
    with pytest.raises(ValueError, match="min_ms"):
        JitterBuffer(min_ms=50, start_ms=20)
    assert JitterBuffer(min_ms=30).target_ms == 30


def test_the_old_policy_holds_as_long_as_its_threshold() -> None:
    old = AdaptivePrebuffer()
    old.on_chunk(0.0, 0.1)
    old.on_reply_end()
    assert old.hold_frames(RATE) == old.start_frames(RATE) == 2400


# ---- the ring's fades ------------------------------------------------------------------------


def test_running_dry_mid_reply_ramps_down_and_back_up() -> None:
    ring = Int16Ring(64, fade_frames=8)
    out = np.empty(16, dtype=np.int16)
    ring.write(np.full(20, 1000, dtype=np.int16))
    assert ring.read_into(out) == 16
    assert ring.read_into(out) == 4
    assert list(out[:4]) == [1000] * 4
    assert list(out[4:12]) == [875, 750, 625, 500, 375, 250, 125, 0]
    assert not out[12:].any()
    ring.write(np.full(20, 1000, dtype=np.int16))
    assert ring.read_into(out) == 16
    assert ring.underruns == 1
    assert list(out[:8]) == [0, 125, 250, 375, 500, 625, 750, 875]
    assert (out[8:] == 1000).all()


def test_a_fade_continues_into_the_next_block() -> None:
    ring = Int16Ring(64, fade_frames=8)
    out = np.empty(4, dtype=np.int16)
    ring.write(np.full(4, -800, dtype=np.int16))
    assert ring.read_into(out) == 4  # dry exactly at the end of a block
    assert ring.read_into(out) == 0
    assert list(out) == [-700, -600, -500, -400]
    assert ring.read_into(out) == 0
    assert list(out) == [-300, -200, -100, 0]
    assert ring.read_into(out) == 0
    assert not out.any()


def test_the_end_of_a_reply_and_a_flush_do_not_fade() -> None:
    ring = Int16Ring(64, fade_frames=8)
    out = np.empty(16, dtype=np.int16)
    ring.write(np.full(4, 1000, dtype=np.int16))
    ring.mark_end()
    assert ring.read_into(out) == 4
    assert not out[4:].any()
    ring.write(np.full(40, 1000, dtype=np.int16))
    ring.read_into(out)
    ring.clear()
    assert ring.read_into(out) == 0
    assert not out.any()  # silent from the very next block


def test_the_hold_is_separate_from_the_start_threshold() -> None:
    ring = Int16Ring(64)
    ring.start_threshold, ring.start_hold = 30, 8
    out = np.empty(4, dtype=np.int16)
    ring.write(np.full(10, 1, dtype=np.int16))
    assert ring.read_into(out) == 0
    assert ring.read_into(out) == 0
    assert ring.read_into(out) == 4  # held 8 frames, though under the threshold
    ring.clear()
    ring.read_into(out)
    ring.write(np.full(30, 1, dtype=np.int16))
    assert ring.read_into(out) == 4  # the threshold met: at once
