"""`adkvoice talk --echo-test`: how much of the speaker the microphone hears, and how much
of that the echo canceller takes out.

Plays a train of chirps through the output device while recording the microphone, runs
the recording through the same `EchoCanceller` that `talk` uses (live, chunk by chunk,
as `talk` does), then measures:

- the speaker-to-microphone delay: the lag that best correlates the microphone with the
  audio as played, on the devices' own timelines (sound leaving the speaker → sound
  entering the microphone), plus the round trip the application sees (handed to the
  output device → delivered by the input device);
- the echo return loss enhancement (ERLE): the echo's energy before and after the
  canceller, over the second half of the probe (the canceller adapts during the first).

The measurement functions are pure and take arrays, for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console

from adkvoice.audio.aec import EchoCanceller, EchoStats, try_canceller
from adkvoice.audio.capture import Capture
from adkvoice.audio.dsp import (
    MODEL_INPUT_RATE,
    MODEL_OUTPUT_RATE,
    Int16Array,
    StreamResampler,
    float_to_int16,
)
from adkvoice.audio.playback import Playback
from adkvoice.audio.ring import TimedBlock

MAX_DELAY_S = 0.7  # search window for the echo (Bluetooth speakers reach ~300 ms)
MIN_CORRELATION = 0.3  # below this the microphone did not hear the chirps
FRAME = MODEL_INPUT_RATE // 100  # 10 ms analysis frames


def chirp_train(
    *,
    rate: int = MODEL_OUTPUT_RATE,
    count: int = 6,
    chirp_s: float = 0.4,
    gap_s: float = 0.1,
    f0: float = 200.0,
    f1: float = 6000.0,
    level: float = 0.3,
) -> Int16Array:
    """Exponential sweeps with short gaps: broadband for the canceller, sharp for the
    correlation (a sweep's autocorrelation has one narrow peak)."""
    t = np.arange(int(chirp_s * rate)) / rate
    k = math.log(f1 / f0)
    phase = 2 * np.pi * f0 * chirp_s / k * (np.exp(t / chirp_s * k) - 1.0)
    fade = np.minimum(1.0, np.minimum(t, chirp_s - t) / 0.005)  # 5 ms ramps: no clicks
    one = level * np.sin(phase) * fade
    gap = np.zeros(int(gap_s * rate))
    return float_to_int16(np.concatenate([np.concatenate([one, gap]) for _ in range(count)]))


def speech_noise(
    seconds: float, *, rate: int = MODEL_OUTPUT_RATE, level: float = 0.3, seed: int = 7
) -> Int16Array:
    """Noise with a speech-like spectrum (80 Hz–7 kHz, falling 3 dB/octave above 300 Hz)
    and a syllable-like envelope: what the canceller meets in a conversation. A sweep
    alone is a poor test of it: each frequency sounds only briefly."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    shape = (f > 80) * (f < 7000) / np.sqrt(np.maximum(f, 300.0) / 300.0)
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    t = np.arange(n) / rate
    envelope = np.clip(
        0.8 * np.sin(2 * np.pi * 3.7 * t) + 0.5 * np.sin(2 * np.pi * 1.3 * t + 1), 0, None
    )
    x *= envelope
    return float_to_int16(level * x / max(float(np.abs(x).max()), 1e-9))


def probe_signal(rate: int = MODEL_OUTPUT_RATE) -> Int16Array:
    """Two chirps (the delay), then 3 s of speech-like noise (the echo reduction)."""
    return np.concatenate([chirp_train(rate=rate, count=2), speech_noise(3.0, rate=rate)])


@dataclass(frozen=True)
class DelayEstimate:
    delay_s: float  # speaker time → microphone capture time, by the devices' timestamps
    correlation: float  # normalized peak: near 1 for a clean echo, ~0 when none was heard
    echo_dbfs: float  # the echo's level at the microphone


def timeline(blocks: list[TimedBlock], rate: int, t0: float, n: int) -> np.ndarray:
    """Stamped blocks laid out on a float timeline of `n` samples starting at `t0`."""
    out = np.zeros(n)
    for block in blocks:
        start = round((block.t - t0) * rate)
        samples = block.samples.astype(np.float64)
        lo, hi = max(0, start), min(n, start + len(samples))
        if hi > lo:
            out[lo:hi] = samples[lo - start : hi - start]
    return out


def estimate_delay(
    mic: np.ndarray, reference: np.ndarray, rate: int = MODEL_INPUT_RATE, *, window_s: float = 0.5
) -> DelayEstimate:
    """The lag (0 … MAX_DELAY_S) at which `reference` best explains `mic`, both on the
    same timeline and rate: the median over 0.5 s windows, so that a drift between the
    two clocks (a few ms over the probe) does not blur it."""
    x = mic.astype(np.float64)
    r = reference.astype(np.float64)
    n = min(len(x), len(r))
    w = int(window_s * rate)
    max_lag = int(MAX_DELAY_S * rate)
    size = 1 << math.ceil(math.log2(w + max_lag + w))
    floor = 1e-3 * float(np.abs(r).max()) if n else 0.0
    lags: list[int] = []
    corrs: list[float] = []
    for start in range(0, n - w + 1, w):
        piece = r[start : start + w]
        if float(np.sqrt(np.mean(piece**2))) <= floor:
            continue
        seg = x[start : start + w + max_lag]
        c = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(piece, size)), size)
        c = c[: max(1, len(seg) - w + 1)]
        lag = int(np.argmax(np.abs(c)))
        denom = float(np.linalg.norm(piece) * np.linalg.norm(seg[lag : lag + w]))
        lags.append(lag)
        corrs.append(abs(float(c[lag])) / denom if denom else 0.0)
    if not lags:
        return DelayEstimate(delay_s=0.0, correlation=0.0, echo_dbfs=-120.0)
    lag = int(np.median(lags))
    active = echo_frames(r[:n], lag, from_share=0.0)
    return DelayEstimate(
        delay_s=lag / rate,
        correlation=float(np.median(corrs)),
        echo_dbfs=_level_dbfs(x[:n], active),
    )


def _level_dbfs(x: np.ndarray, frames: np.ndarray) -> float:
    """RMS level of the 10 ms frames marked in `frames`."""
    n = min(len(x) // FRAME, len(frames))
    picked = x[: n * FRAME].reshape(n, FRAME)[frames[:n]]
    ms = float(np.mean(picked**2)) if picked.size else 0.0
    return 10 * math.log10(ms / 32768.0**2) if ms > 0 else -120.0


def erle_db(raw: np.ndarray, clean: np.ndarray, active: np.ndarray) -> float | None:
    """Echo return loss enhancement over the 10 ms frames marked `active`."""
    n = min(len(raw), len(clean)) // FRAME
    if n == 0:
        return None
    mask = active[:n]
    if not mask.any():
        return None

    def energy(x: np.ndarray) -> float:
        frames = x[: n * FRAME].astype(np.float64).reshape(n, FRAME)[mask]
        return float((frames**2).sum())

    e_in, e_out = energy(raw), energy(clean)
    if e_in <= 0:
        return None
    return 10 * math.log10(e_in / max(e_out, 1.0))


def echo_frames(reference16: np.ndarray, delay_samples: int, *, from_share: float) -> np.ndarray:
    """10 ms frames in which the (delayed) reference sounds, from `from_share` of the
    probe on (the canceller adapts before that)."""
    shifted = np.concatenate([np.zeros(delay_samples), reference16])[: len(reference16)]
    n = len(shifted) // FRAME
    level = np.sqrt((shifted[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1))
    active = level > 0.05 * (level.max() if n else 0.0)
    idx = np.flatnonzero(active)
    if idx.size:
        active[: idx[0] + int(from_share * (idx[-1] - idx[0]))] = False
    return np.asarray(active)


@dataclass
class EchoTestResult:
    delay: DelayEstimate | None = None
    round_trip_s: float | None = None
    erle_db: float | None = None
    canceller: str | None = None  # its name, or why there is none
    canceller_ok: bool = False
    notes: list[str] = field(default_factory=list)
    stats: EchoStats | None = None
    # The audio behind the figures, at 16 kHz on the microphone's timeline.
    mic: np.ndarray | None = field(default=None, repr=False)
    reference: np.ndarray | None = field(default=None, repr=False)
    cleaned: np.ndarray | None = field(default=None, repr=False)

    @property
    def heard(self) -> bool:
        return self.delay is not None and self.delay.correlation >= MIN_CORRELATION

    def lines(self) -> list[str]:
        if self.delay is None:
            return ["Echo test: nothing was recorded."]
        if not self.heard:
            first = (
                "Echo test: the microphone did not hear the speaker (headphones, or a muted "
                f"or distant mic; correlation {self.delay.correlation:.2f}): --no-aec is safe."
            )
        else:
            rt = f", round trip {self.round_trip_s * 1000:.0f} ms" if self.round_trip_s else ""
            first = (
                f"Echo path: {self.delay.delay_s * 1000:.0f} ms from speaker to microphone"
                f"{rt}; echo at {self.delay.echo_dbfs:.0f} dBFS "
                f"(correlation {self.delay.correlation:.2f})."
            )
        if not self.canceller_ok:
            second = (
                f"Echo cancellation unavailable: {self.canceller}; talk mutes the microphone "
                "to the model while the agent speaks."
            )
        elif not self.heard or self.erle_db is None:
            second = f"Echo cancellation: {self.canceller} ready (no echo to reduce)."
        else:
            second = (
                f"Echo cancellation: {self.canceller} reduced the echo by {self.erle_db:.1f} dB."
            )
        return [first, second, *self.notes]


async def measure(
    input_device: str | int | None,
    output_device: str | int | None,
    *,
    probe: Int16Array | None = None,
    lead_in_s: float = 0.3,
    tail_s: float = 0.5,
) -> EchoTestResult:
    """Play `probe` (24 kHz), record and cancel live, and measure. Raises
    `AudioDeviceError` for device problems."""
    probe = probe_signal() if probe is None else probe
    loading = asyncio.create_task(asyncio.to_thread(try_canceller))
    capture = Capture(input_device)
    playback = Playback(output_device, tap=True)
    result = EchoTestResult()
    raw: list[Int16Array] = []
    clean: list[Int16Array] = []
    played: list[TimedBlock] = []
    mic_t0: float | None = None
    input_delay_s = math.inf  # capture → delivered on the loop, lower envelope
    try:
        await capture.start()
        await playback.start()
        loaded = await loading
        canceller = loaded if isinstance(loaded, EchoCanceller) else None
        result.canceller = canceller.name if canceller is not None else str(loaded)
        result.canceller_ok = canceller is not None
        result.stats = canceller.stats if canceller is not None else None
        loop = asyncio.get_running_loop()
        play_at = loop.time() + lead_in_s
        stop_at: float | None = None
        queued = False
        while stop_at is None or loop.time() < stop_at:
            chunk = await capture.read_chunk()
            if chunk is None:
                break
            chunk_s = len(chunk.pcm) / 2 / MODEL_INPUT_RATE
            input_delay_s = min(input_delay_s, time.monotonic() - chunk.captured_at - chunk_s)
            samples = np.frombuffer(chunk.pcm, dtype="<i2").astype(np.int16)
            blocks = playback.read_played()
            played.extend(blocks)
            if mic_t0 is None:
                mic_t0 = chunk.captured_at
            raw.append(samples)
            if canceller is not None:
                canceller.add_played(blocks, playback.sample_rate)
                try:
                    clean.append(canceller.process(samples, chunk.captured_at))
                except Exception as exc:  # report it; the delay is still worth knowing
                    result.notes.append(f"The echo canceller failed: {type(exc).__name__}.")
                    result.canceller_ok, canceller = False, None
            if not queued and loop.time() >= play_at:
                playback.enqueue(probe.tobytes(), MODEL_OUTPUT_RATE)
                playback.end_reply()
                queued = True
            if queued and stop_at is None and not playback.playing:
                stop_at = loop.time() + playback.latency_s + tail_s
        played.extend(playback.read_played())
        output_delay_s = playback.latency_s
        start = playback.last_reply_start
        if start is not None:
            output_delay_s = start.speaker_at - start.callback_at
    finally:
        if not loading.done():
            with contextlib.suppress(Exception):
                await loading
        with contextlib.suppress(Exception):
            await playback.aclose()
        with contextlib.suppress(Exception):
            await capture.aclose()
    if not raw or mic_t0 is None:
        return result
    mic = np.concatenate(raw)
    reference = _reference_16k(played, playback.sample_rate, mic_t0, len(mic))
    result.mic, result.reference = mic, reference
    result.cleaned = np.concatenate(clean) if clean else None
    result.delay = estimate_delay(mic, reference)
    if math.isfinite(input_delay_s):
        result.round_trip_s = output_delay_s + result.delay.delay_s + max(0.0, input_delay_s)
    if clean and result.canceller_ok and result.heard:
        lag = round(result.delay.delay_s * MODEL_INPUT_RATE)
        active = echo_frames(reference, lag, from_share=0.5)
        result.erle_db = erle_db(mic, np.concatenate(clean), active)
    return result


def _reference_16k(blocks: list[TimedBlock], rate: int, t0: float, n: int) -> np.ndarray:
    """The played audio on the microphone's timeline, at 16 kHz."""
    if not blocks:
        return np.zeros(n)
    length = math.ceil(n * rate / MODEL_INPUT_RATE) + rate // 10
    line = timeline(blocks, rate, t0, length)
    if rate != MODEL_INPUT_RATE:
        resampler = StreamResampler(rate, MODEL_INPUT_RATE, quality="HQ")
        as16 = float_to_int16(np.clip(line / 32768.0, -1.0, 1.0))
        line = np.concatenate([resampler.process(as16), resampler.flush()]).astype(np.float64)
    out = np.zeros(n)
    out[: min(n, len(line))] = line[:n]
    return out


async def run_echo_test(
    input_device: str | int | None, output_device: str | int | None, console: Console
) -> int:
    """`adkvoice talk --echo-test`: print the echo path and the canceller's reduction."""
    console.print(
        "Echo test: chirps and noise through the speaker for 4 s, at a moderate volume…",
        style="dim",
    )
    result = await measure(input_device, output_device)
    for line in result.lines():
        console.print(line, highlight=False, soft_wrap=True)
    return 0
