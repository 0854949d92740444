"""PCM conversion, streaming resampling, chunking, levels and the barge-in voice detector."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adkvoice.audio.dsp import (
    SILENCE_DBFS,
    Chunker,
    EnergyVad,
    StreamResampler,
    float_to_int16,
    int16_to_pcm,
    pcm_to_int16,
    rms_dbfs,
)

RATE = 16_000
FRAME = 320
rng = np.random.default_rng(1234)


def tone(freq: float, seconds: float, rate: int, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return float_to_int16(level * np.sin(2 * np.pi * freq * t))


def peak_hz(samples: np.ndarray, rate: int) -> float:
    x = samples.astype(np.float64) * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / samples.size)


def frames(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i : i + FRAME] for i in range(0, samples.size - FRAME + 1, FRAME)]


# ---- conversion and levels -------------------------------------------------------------


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_pcm_round_trip(values: list[int]) -> None:
    samples = np.array(values, dtype=np.int16)
    pcm = int16_to_pcm(samples)
    assert len(pcm) == 2 * len(values)
    assert np.array_equal(pcm_to_int16(pcm), samples)


def test_pcm_is_little_endian() -> None:
    assert list(pcm_to_int16(b"\x01\x00\xff\x7f\x00\x80")) == [1, 32767, -32768]


def test_odd_byte_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        pcm_to_int16(b"\x00\x00\x00")


def test_rms_dbfs() -> None:
    assert rms_dbfs(tone(1000, 0.1, RATE, level=1.0)) == pytest.approx(-3.01, abs=0.05)
    assert rms_dbfs(tone(1000, 0.1, RATE, level=0.1)) == pytest.approx(-23.01, abs=0.05)
    assert rms_dbfs(np.zeros(320, dtype=np.int16)) == SILENCE_DBFS
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == SILENCE_DBFS


# ---- resampling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "block"),
    [(48_000, 16_000, 960), (44_100, 16_000, 441), (24_000, 48_000, 480), (16_000, 24_000, 320)],
)
def test_streaming_resampler_keeps_length_and_frequency(
    in_rate: int, out_rate: int, block: int
) -> None:
    source = tone(1000, 1.0, in_rate)
    resampler = StreamResampler(in_rate, out_rate)
    parts = [resampler.process(source[i : i + block]) for i in range(0, source.size, block)]
    parts.append(resampler.flush())
    out = np.concatenate(parts)
    assert out.dtype == np.int16
    assert abs(out.size - out_rate) <= 1  # one second in, one second out
    assert peak_hz(out[out_rate // 10 : -out_rate // 10], out_rate) == pytest.approx(1000, abs=3)
    assert rms_dbfs(out[out_rate // 10 : -out_rate // 10]) == pytest.approx(-9.03, abs=0.2)


def test_resampler_output_is_time_aligned_with_its_input() -> None:
    rate_in, rate_out = 48_000, 16_000
    source = np.zeros(rate_in, dtype=np.int16)
    source[24_000:24_480] = tone(1000, 0.01, rate_in)  # a 10 ms burst at 0.5 s
    resampler = StreamResampler(rate_in, rate_out, quality="HQ")
    out = np.concatenate([resampler.process(source), resampler.flush()])
    onset = int(np.argmax(np.abs(out) > 1000))
    assert abs(onset / rate_out - 0.5) < 0.002


def test_resampler_passthrough_and_reset() -> None:
    same = StreamResampler(24_000, 24_000)
    data = tone(440, 0.02, 24_000)
    assert same.passthrough
    assert same.process(data) is data
    assert same.flush().size == 0
    down = StreamResampler(48_000, 16_000)
    down.process(tone(440, 0.1, 48_000))
    down.reset()  # forget the old reply: nothing of it comes out later
    assert down.flush().size == 0


def test_resampler_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16_000)


# ---- chunking --------------------------------------------------------------------------


@given(st.lists(st.integers(0, 1000), max_size=40))
def test_chunker_cuts_any_blocks_into_exact_chunks(sizes: list[int]) -> None:
    chunker = Chunker(320)
    stream = np.arange(sum(sizes), dtype=np.int64).astype(np.int16)
    chunks = []
    pos = 0
    for n in sizes:
        chunks.extend(chunker.feed(stream[pos : pos + n]))
        pos += n
    assert len(chunks) == pos // 320
    assert chunker.pending == pos % 320
    for i, chunk in enumerate(chunks):
        assert chunk.start == i * 320
        assert chunk.samples.size == 320
        assert np.array_equal(chunk.samples, stream[i * 320 : (i + 1) * 320])
    assert chunker.next_start == pos


def test_chunker_boundaries() -> None:
    chunker = Chunker(4)
    assert chunker.feed(np.arange(3, dtype=np.int16)) == []
    first = chunker.feed(np.arange(3, 9, dtype=np.int16))
    assert [list(c.samples) for c in first] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert chunker.pending == 1
    chunker.reset()
    assert chunker.pending == 0
    assert chunker.feed(np.arange(4, dtype=np.int16))[0].start == 12  # stream index moves on


def test_chunks_do_not_share_memory() -> None:
    chunker = Chunker(4)
    a = chunker.feed(np.ones(4, dtype=np.int16))[0]
    chunker.feed(np.zeros(4, dtype=np.int16))
    assert list(a.samples) == [1, 1, 1, 1]


# ---- voice detection -------------------------------------------------------------------


def speech_like(seconds: float, level: float = 0.3) -> np.ndarray:
    """Voiced syllables: a 140 Hz harmonic source, 4 Hz syllable envelope, short pauses."""
    t = np.arange(int(seconds * RATE)) / RATE
    source = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return float_to_int16(level * source / 3 * envelope)


def noise(seconds: float, dbfs: float) -> np.ndarray:
    x = rng.standard_normal(int(seconds * RATE))
    return float_to_int16(x * 10 ** (dbfs / 20))


def run_vad(vad: EnergyVad, samples: np.ndarray) -> list[tuple[float, str]]:
    events: list[tuple[float, str]] = []
    for i, frame in enumerate(frames(samples)):
        event = vad.feed(frame)
        if event is not None:
            events.append((round(i * FRAME / RATE, 3), event))
    return events


def test_vad_detects_speech_and_its_end() -> None:
    audio = np.concatenate([noise(1.0, -60), speech_like(1.5), noise(1.5, -60)])
    events = run_vad(EnergyVad(), audio)
    assert [e for _, e in events] == ["speech_start", "speech_end"]
    start, end = events[0][0], events[1][0]
    assert 1.0 < start <= 1.35  # within min_speech + a syllable onset
    assert 2.5 <= end <= 3.0  # after the hangover


def test_vad_detects_speech_over_steady_noise() -> None:
    audio = np.concatenate([noise(2.0, -40), speech_like(1.0) + noise(1.0, -40)])
    events = run_vad(EnergyVad(), audio)
    assert events
    assert events[0][1] == "speech_start"
    assert events[0][0] > 2.0


def test_vad_ignores_steady_noise() -> None:
    for dbfs in (-50.0, -30.0, -20.0):
        assert run_vad(EnergyVad(), noise(4.0, dbfs)) == []


def test_vad_ignores_clicks_and_typing() -> None:
    audio = noise(3.0, -60)
    for start in range(RATE // 2, audio.size - 200, int(0.15 * RATE)):  # ~7 keys a second
        audio[start : start + 80] = 20000  # a 5 ms click
    assert run_vad(EnergyVad(), audio) == []


def test_vad_single_loud_burst_shorter_than_min_speech_is_ignored() -> None:
    audio = np.concatenate([noise(1.0, -60), tone(300, 0.1, RATE), noise(1.0, -60)])
    assert run_vad(EnergyVad(min_speech_ms=160), audio) == []
    audio = np.concatenate([noise(1.0, -60), tone(300, 0.3, RATE), noise(1.0, -60)])
    assert [e for _, e in run_vad(EnergyVad(min_speech_ms=160), audio)] == [
        "speech_start",
        "speech_end",
    ]


def test_vad_quiet_speech_below_the_absolute_floor_is_ignored() -> None:
    assert run_vad(EnergyVad(min_dbfs=-45), speech_like(2.0, level=0.002)) == []


def test_vad_reports_level() -> None:
    vad = EnergyVad()
    vad.feed(tone(440, 0.02, RATE, level=0.1))
    assert vad.level_dbfs == pytest.approx(-23, abs=0.5)
    assert vad.feed(np.zeros(0, dtype=np.int16)) is None
