"""The pure parts of `--echo-test`: the probe, the delay and ERLE measurements, the report."""

from __future__ import annotations

import numpy as np
import pytest

from adkvoice.audio.echo_test import (
    MIN_CORRELATION,
    DelayEstimate,
    EchoTestResult,
    echo_frames,
    erle_db,
    estimate_delay,
    probe_signal,
)

RATE = 16_000


def probe16() -> np.ndarray:
    return probe_signal(rate=RATE).astype(np.float64)


def test_probe_is_short_and_never_clips() -> None:
    probe = probe_signal()
    assert 3.5 < len(probe) / 24_000 < 4.5
    assert np.abs(probe).max() < 0.5 * 32767


@pytest.mark.parametrize("delay_ms", [0, 35, 240])
def test_delay_is_found_through_a_room(delay_ms: int) -> None:
    ref = probe16()
    d = delay_ms * RATE // 1000
    mic = 0.3 * np.concatenate([np.zeros(d), ref])[: len(ref)]
    mic += np.random.default_rng(0).standard_normal(len(mic)) * 30  # room noise
    found = estimate_delay(mic, ref)
    assert found.delay_s == pytest.approx(delay_ms / 1000, abs=0.0005)
    assert found.correlation > 0.9
    assert -30 < found.echo_dbfs < -10


def test_delay_survives_clock_drift() -> None:
    """Two devices' clocks differ by 0.1 %: the echo slides from 80 to 76 ms."""
    ref = probe16()
    t = np.arange(len(ref)) * 1.001 - 0.08 * RATE
    mic = np.interp(t, np.arange(len(ref)), ref, left=0.0, right=0.0)
    found = estimate_delay(mic, ref)
    assert 0.076 <= found.delay_s <= 0.080
    assert found.correlation > MIN_CORRELATION


def test_no_echo_is_not_mistaken_for_one() -> None:
    ref = probe16()
    mic = np.random.default_rng(1).standard_normal(len(ref)) * 300
    assert estimate_delay(mic, ref).correlation < MIN_CORRELATION
    assert estimate_delay(np.zeros(len(ref)), ref).correlation == 0.0


def test_erle_over_the_echo_frames() -> None:
    ref = probe16()
    raw = 0.3 * ref
    clean = raw * 0.01  # 40 dB less
    active = echo_frames(ref, 0, from_share=0.5)
    assert active.any()
    assert not active[: len(active) // 3].any()  # the canceller's adaptation is skipped
    erle = erle_db(raw, clean, active)
    assert erle == pytest.approx(40.0, abs=0.01)
    assert erle_db(raw, clean, np.zeros_like(active)) is None


def test_report_lines() -> None:
    heard = EchoTestResult(
        delay=DelayEstimate(0.083, 0.8, -21.0),
        round_trip_s=0.16,
        erle_db=38.24,
        canceller="WebRTC AEC3 (livekit)",
        canceller_ok=True,
    )
    assert heard.lines() == [
        "Echo path: 83 ms from speaker to microphone, round trip 160 ms; echo at -21 dBFS "
        "(correlation 0.80).",
        "Echo cancellation: WebRTC AEC3 (livekit) reduced the echo by 38.2 dB.",
    ]
    silent = EchoTestResult(
        delay=DelayEstimate(0.3, 0.05, -90.0),
        canceller="no echo canceller installed (pip install 'livekit>=1.2,<2')",
    )
    first, second = silent.lines()
    assert "did not hear the speaker" in first
    assert "--no-aec is safe" in first
    assert second.startswith("Echo cancellation unavailable: no echo canceller installed")
    assert "mutes the microphone" in second
