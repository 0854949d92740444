"""The echo canceller wrapper: timeline alignment with a recording fake engine, then the
real WebRTC AEC3 (livekit, when installed) on a synthetic room echo."""

from __future__ import annotations

import numpy as np
import pytest

from adkvoice.audio.aec import (
    EchoCanceller,
    EchoCoupling,
    EchoEngine,
    EchoUnavailable,
    load_engine,
    try_canceller,
)
from adkvoice.audio.dsp import EnergyVad, Int16Array
from adkvoice.audio.echo_test import erle_db, estimate_delay
from adkvoice.audio.ring import TimedBlock
from tests.audio.signals import room_echo, voiced

MIC_RATE = 16_000
REF_RATE = 24_000
CHUNK = 320  # 20 ms at 16 kHz
T0 = 1000.0  # a monotonic time far from zero


class RecordingEngine:
    """Returns the microphone unchanged and keeps every far-end frame it was given."""

    name = "recording"
    output_delay_s = 0.0

    def __init__(self) -> None:
        self.render: list[tuple[Int16Array, int]] = []
        self.captured = 0

    def analyze_render(self, frame: Int16Array, sample_rate: int) -> None:
        self.render.append((frame.copy(), sample_rate))

    def process_capture(self, frame: Int16Array) -> Int16Array:
        self.captured += 1
        return frame.copy()


def ramp(n: int) -> Int16Array:
    """Samples that say where they are: value = position + 1 (never zero)."""
    return (np.arange(n) % 30_000 + 1).astype(np.int16)


def test_recording_engine_is_an_engine() -> None:
    engine: EchoEngine = RecordingEngine()
    assert engine.name == "recording"


def test_reference_is_paired_with_the_microphone_by_timestamps() -> None:
    engine = RecordingEngine()
    ec = EchoCanceller(engine, lead_s=0.01)
    ref = ramp(REF_RATE)  # 1 s played from T0 on, in 10 ms device blocks
    for i in range(0, 12_000, 240):
        ec.add_reference(ref[i : i + 240], T0 + i / REF_RATE, REF_RATE, pos=i)
    mic = np.zeros(CHUNK, dtype=np.int16)
    out = ec.process(mic, T0 + 0.1)  # captured 100 ms after the reply started
    assert out.shape == (CHUNK,)
    assert out.dtype == np.int16
    assert engine.captured == 2  # two 10 ms frames
    (first, rate1), (second, rate2) = engine.render
    assert rate1 == rate2 == REF_RATE
    assert len(first) == len(second) == 240
    # The frame captured at T0+0.1 gets the reference played at T0+0.1+lead.
    start = round(0.11 * REF_RATE)
    np.testing.assert_array_equal(first, ref[start : start + 240])
    np.testing.assert_array_equal(second, ref[start + 240 : start + 480])


def test_capture_jitter_does_not_tear_the_reference() -> None:
    engine = RecordingEngine()
    ec = EchoCanceller(engine)
    ref = ramp(2 * REF_RATE)
    ec.add_played([TimedBlock(0, T0, ref)], REF_RATE)
    rng = np.random.default_rng(3)
    for k in range(50):
        jitter = rng.uniform(-0.003, 0.003)
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.02 * k + jitter)
    fed = np.concatenate([frame for frame, _ in engine.render])
    start = int(fed[0]) - 1
    np.testing.assert_array_equal(fed, ref[start : start + len(fed)])  # contiguous
    assert ec.stats.realigned == 0


def test_gaps_are_silence_and_late_blocks_are_counted() -> None:
    engine = RecordingEngine()
    ec = EchoCanceller(engine, lead_s=0.0)
    tone = ramp(2400)  # 100 ms, then nothing, then 100 ms more from T0+0.3
    ec.add_reference(tone, T0, REF_RATE, pos=0)
    ec.add_reference(tone, T0 + 0.3, REF_RATE, pos=2400)  # same position: a real gap
    for k in range(25):
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.02 * k)
    fed = np.concatenate([frame for frame, _ in engine.render])
    assert fed[:2400].all()
    assert not fed[2400:7200].any()
    assert fed[7200:9600].all()
    assert ec.stats.reference_gaps == 1  # a pause of 200 ms, placed by its stamp
    ec.add_reference(ramp(240), T0 + 0.2, REF_RATE)  # arrives after its time was used
    assert ec.stats.late_reference_s == pytest.approx(0.01)


def test_continuing_blocks_absorb_timestamp_jitter() -> None:
    engine = RecordingEngine()
    ec = EchoCanceller(engine, lead_s=0.0)
    ref = ramp(4800)
    for i in range(0, 4800, 240):  # stamps off by up to ±2 ms, positions continuous
        ec.add_reference(
            ref[i : i + 240], T0 + i / REF_RATE + (0.002 if i % 480 else -0.002), REF_RATE, pos=i
        )
    for k in range(10):
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.02 * k)
    fed = np.concatenate([frame for frame, _ in engine.render])
    start = int(fed[0]) - 1
    np.testing.assert_array_equal(fed[: 4800 - start], ref[start:])
    assert ec.stats.reference_gaps == 0


def test_an_earlier_stamp_never_overwrites_queued_reference() -> None:
    """The device's latency estimate drops by 30 ms mid-reply: the audio still plays in
    order, so the next block goes after the previous one, not over it."""
    engine = RecordingEngine()
    ec = EchoCanceller(engine, lead_s=0.0)
    ref = ramp(4800)
    ec.add_reference(ref[:2400], T0, REF_RATE, pos=0)
    ec.add_reference(ref[2400:], T0 + 0.1 - 0.03, REF_RATE, pos=2400)
    for k in range(10):
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.02 * k)
    fed = np.concatenate([frame for frame, _ in engine.render])
    np.testing.assert_array_equal(fed, ref)
    assert ec.stats.reference_gaps == 0


def test_microphone_realigns_only_when_idle_or_far_off() -> None:
    engine = RecordingEngine()
    ec = EchoCanceller(engine, lead_s=0.0)
    ec.add_reference(ramp(REF_RATE), T0, REF_RATE, pos=0)  # 1 s of sound
    for k in range(10):
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.02 * k)
    ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.2 + 0.03)  # stamps jump 30 ms
    assert ec.stats.realigned == 0  # a jump under sound would cost re-adaptation
    ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 0.24 + 0.2)  # 200 ms: lost chunks
    assert ec.stats.realigned == 1
    for k in range(60):  # after the sound ends, small disagreements realign for free
        ec.process(np.zeros(CHUNK, dtype=np.int16), T0 + 1.5 + 0.02 * k)
    assert ec.stats.realigned == 2


def test_chunks_must_be_whole_frames() -> None:
    ec = EchoCanceller(RecordingEngine())
    with pytest.raises(ValueError, match="multiple of 160"):
        ec.process(np.zeros(100, dtype=np.int16), T0)
    assert len(ec.process(np.zeros(0, dtype=np.int16), T0)) == 0


def test_missing_engine_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    real = importlib.import_module

    def no_livekit(name: str, package: str | None = None) -> object:
        if name.startswith("livekit"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", no_livekit)
    with pytest.raises(EchoUnavailable, match=r"pip install 'livekit>=1\.2,<2'"):
        load_engine()
    assert "pip install 'livekit" in str(try_canceller())


def test_echo_coupling_learns_the_echo_path() -> None:
    def level(db: float) -> float:  # mean square of a frame at `db` dBFS
        return 10 ** (db / 10) * 32768.0**2

    rng = np.random.default_rng(4)
    through_room, headphones = EchoCoupling(), EchoCoupling()
    assert through_room.expected_echo_dbfs == -120.0  # nothing played yet
    for k in range(400):  # 4 s of speech-like reference with pauses
        ref_db = -20.0 + rng.uniform(-6, 6) if (k // 25) % 4 else -90.0
        user = level(-25.0) if 200 <= k < 260 else 0.0  # the user talks for 0.6 s
        echo = level(ref_db - 12.0)  # the room: 12 dB down
        through_room.feed(echo + user + level(-70), level(ref_db))
        headphones.feed(user + level(-70), level(ref_db))
        if k == 50:  # half a second in: not learnt, so no voice counts as over the echo
            assert through_room.gain_db is None
            assert through_room.expected_echo_dbfs > -20.0
    assert through_room.gain_db is not None
    assert -16.0 < through_room.gain_db < -10.0  # the user talking does not skew it
    assert headphones.gain_db is not None
    assert headphones.gain_db < -40.0
    assert headphones.expected_echo_dbfs < through_room.expected_echo_dbfs - 25.0


# ---- the real engine -------------------------------------------------------------------

# Measured with this scene (delay 80 ms, echo tail, voiced far end): 25–42 dB per second
# after the first; the threshold leaves room for other engine builds.
MIN_ERLE_DB = 20.0


def _run_scene(
    delay_s: float, *, user_at: float | None = None
) -> tuple[EchoCanceller, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Play 8 s of a synthetic voice, hear it through a room with optional user speech,
    and clean it chunk by chunk as `talk` does (the reference ~60 ms ahead, as a tap)."""
    pytest.importorskip("livekit.rtc")
    import soxr

    far = voiced(8.0, REF_RATE, f0=120, seed=1)
    echo = room_echo(soxr.resample(far, REF_RATE, MIC_RATE), MIC_RATE, delay_s=delay_s)
    user = np.zeros_like(echo)
    if user_at is not None:
        start = int(user_at * MIC_RATE)
        user[start : start + 2 * MIC_RATE] = voiced(2.0, MIC_RATE, f0=220, level=0.25, seed=5)
    noise = np.random.default_rng(2).standard_normal(len(echo)) * 5
    mic = np.clip(echo + user + noise, -32768, 32767).astype(np.int16)
    ec = EchoCanceller(load_engine())
    out = np.zeros_like(mic)
    fed = 0
    for i in range(len(mic) // CHUNK):
        while fed < len(far) and fed / REF_RATE < i * 0.02 + 0.06:
            ec.add_reference(far[fed : fed + 240], T0 + fed / REF_RATE, REF_RATE, pos=fed)
            fed += 240
        out[i * CHUNK : (i + 1) * CHUNK] = ec.process(
            mic[i * CHUNK : (i + 1) * CHUNK], T0 + i * 0.02
        )
    return ec, mic, out, echo, user


def _vad_starts(x: np.ndarray) -> list[float]:
    vad = EnergyVad()
    return [
        i * 0.02
        for i in range(len(x) // CHUNK)
        if vad.feed(x[i * CHUNK : (i + 1) * CHUNK]) == "speech_start"
    ]


@pytest.mark.parametrize("delay_s", [0.04, 0.12])
def test_real_canceller_removes_a_room_echo(delay_s: float) -> None:
    ec, mic, out, echo, _ = _run_scene(delay_s)
    assert len(out) == len(mic)
    frames = np.zeros(len(mic) // 160, dtype=bool)
    frames[100:700] = True  # 1–7 s: after the first second of adaptation
    erle = erle_db(echo, out.astype(np.float64), frames)
    assert erle is not None
    assert erle > MIN_ERLE_DB, f"ERLE {erle:.1f} dB"
    assert _vad_starts(mic)  # the raw echo would read as the user speaking...
    assert _vad_starts(out) == []  # ...the cleaned microphone does not
    assert ec.stats.erle_db is not None
    assert ec.stats.erle_db > MIN_ERLE_DB
    assert ec.stats.late_reference_s == 0
    assert ec.stats.realigned == 0


def test_real_canceller_keeps_the_user_talking_over_the_echo() -> None:
    _, _, out, _, user = _run_scene(0.08, user_at=5.0)
    starts = _vad_starts(out)
    assert len(starts) == 1, starts
    assert 5.0 <= starts[0] < 5.6, starts  # barge-in still works
    lag = round(0.008 * MIC_RATE)
    kept = out[5 * MIC_RATE + lag : 7 * MIC_RATE + lag].astype(np.float64)
    said = user[5 * MIC_RATE : 7 * MIC_RATE]
    corr = float(np.dot(kept, said) / (np.linalg.norm(kept) * np.linalg.norm(said)))
    assert corr > 0.4, f"the user's voice is mangled during double talk (corr {corr:.2f})"


def test_real_canceller_output_lags_by_its_stated_delay() -> None:
    pytest.importorskip("livekit.rtc")
    ec = EchoCanceller(load_engine())
    speech = voiced(1.5, MIC_RATE, f0=180, seed=9)
    out = np.concatenate(
        [ec.process(speech[i : i + CHUNK], T0 + i / MIC_RATE) for i in range(0, 24_000, CHUNK)]
    )
    assert len(out) == 24_000
    found = estimate_delay(out.astype(np.float64), speech[:24_000].astype(np.float64))
    assert found.delay_s == pytest.approx(ec.output_delay_s, abs=2 / MIC_RATE)  # HPF phase
    # No far end: the voice passes at its level; the high-pass filter that comes with
    # AEC3 turns the phase of its lowest harmonics (measured correlation 0.83, 1.00 without).
    assert found.correlation > 0.75
    lag = round(ec.output_delay_s * MIC_RATE)
    level = 10 * np.log10(
        float(np.sum(out[4000 + lag : 20_000 + lag].astype(np.float64) ** 2))
        / float(np.sum(speech[4000:20_000].astype(np.float64) ** 2))
    )
    assert abs(level) < 1.0
