"""Acoustic echo cancellation: the microphone with the agent's own voice taken out.

The engine is WebRTC's AEC3, through the audio processing module of the `livekit` package
(a dependency of adkvoice; without it talk falls back to half duplex). It was chosen over
`aec-audio-processing` (same AEC3, similar echo reduction and CPU) because livekit ships
wheels for Linux, macOS and Windows while that one is a source-only package that needs
meson, swig and a C++ compiler to install. `bench/aec_bench.py` has the figures.

`EchoCanceller` is pure loop-side code (never run it in an audio callback): it is fed
the audio as actually played (`Playback.read_played()` blocks, stamped with the time they
leave the speaker) and the microphone's 16 kHz chunks (stamped with the time they were
captured), lines the two up on one timeline, and hands them to the engine in 10 ms frames,
the reference a little ahead of the microphone (`lead_s`) so that an echo never arrives
before its reference. The engine finds the remaining delay (the acoustic path and what
the devices do not report) itself, up to about half a second. The reference is fed at the
playback device's own rate: the engine resamples it, so no resampler delay holds it back.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from adkvoice.audio.dsp import MODEL_INPUT_RATE, MODEL_OUTPUT_RATE, Int16Array
from adkvoice.audio.ring import TimedBlock

FRAME_S = 0.01  # the engine works on 10 ms frames
INSTALL_HINT = "pip install 'livekit>=1.2,<2'"


class EchoUnavailable(Exception):
    """No echo canceller can run here; the message says why and what to install."""


class EchoEngine(Protocol):
    """One echo canceller instance working on 10 ms frames."""

    name: str
    output_delay_s: float  # the cleaned audio lags the microphone by this much

    def analyze_render(self, frame: Int16Array, sample_rate: int) -> None:
        """Far end: 10 ms of what the speaker played, at `sample_rate`."""

    def process_capture(self, frame: Int16Array) -> Int16Array:
        """Near end: 10 ms of microphone at the capture rate; returns it cleaned."""


class WebRtcAec:
    """WebRTC AEC3 from `livekit.rtc.AudioProcessingModule` (echo cancellation and a
    high-pass filter; noise suppression and gain control stay off: the model does better
    with the user's voice untouched)."""

    name = "WebRTC AEC3 (livekit)"
    output_delay_s = 0.008  # measured: the module's output lags its input by 128 samples

    def __init__(self, capture_rate: int = MODEL_INPUT_RATE) -> None:
        try:
            rtc: Any = importlib.import_module("livekit.rtc")
        except ImportError:
            raise EchoUnavailable(f"no echo canceller installed ({INSTALL_HINT})") from None
        except Exception as exc:  # a broken native library: OSError, protobuf mismatch...
            raise EchoUnavailable(f"the echo canceller failed to load ({exc})") from None
        try:
            self._apm = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        except Exception as exc:
            raise EchoUnavailable(f"the echo canceller failed to start ({exc})") from None
        self._rtc = rtc
        self.capture_rate = capture_rate
        self._capture, self._capture_view = self._frame(capture_rate)
        self._render: dict[int, tuple[Any, Int16Array]] = {}

    def _frame(self, rate: int) -> tuple[Any, Int16Array]:
        """A reusable 10 ms frame and a writable int16 view of its buffer."""
        n = round(rate * FRAME_S)
        frame = self._rtc.AudioFrame(bytearray(2 * n), rate, 1, n)
        view: Int16Array = np.frombuffer(frame.data, dtype=np.int16)
        return frame, view

    def analyze_render(self, frame: Int16Array, sample_rate: int) -> None:
        slot = self._render.get(sample_rate)
        if slot is None:
            slot = self._render[sample_rate] = self._frame(sample_rate)
        buf, view = slot
        view[:] = frame
        self._apm.process_reverse_stream(buf)

    def process_capture(self, frame: Int16Array) -> Int16Array:
        self._capture_view[:] = frame
        self._apm.process_stream(self._capture)
        return self._capture_view.copy()


def load_engine(capture_rate: int = MODEL_INPUT_RATE) -> EchoEngine:
    """The echo canceller engine; raises `EchoUnavailable` with a one-line reason.

    Importing it takes ~0.25 s (a native library): call it off the loop
    (`await asyncio.to_thread(load_engine)`).
    """
    return WebRtcAec(capture_rate)


@dataclass
class EchoStats:
    frames: int = 0  # 10 ms microphone frames processed
    cpu_s: float = 0.0  # thread CPU time spent in the engine and the alignment
    late_reference_s: float = 0.0  # reference that arrived after its microphone frame
    realigned: int = 0  # times the microphone was re-anchored on the timeline
    reference_gaps: int = 0  # playback resumed after a gap (an underrun, a pause)
    echo_in: float = 0.0  # decaying energy of the microphone while the reference plays
    echo_out: float = 0.0  # and of the cleaned microphone at the same frames

    @property
    def erle_db(self) -> float | None:
        """Echo return loss enhancement over the recent frames that had a reference
        (None before there was any). Includes any near-end speech, so it reads low while
        the user talks over the agent."""
        if self.echo_in <= 0.0:
            return None
        return 10.0 * math.log10(self.echo_in / max(self.echo_out, 1e-9))


class EchoCanceller:
    """Cleans 16 kHz microphone chunks of the speaker's echo, on the loop.

    Feed `add_played(blocks, rate)` with everything `Playback.read_played()` returns,
    *before* `process(samples, captured_at)` for each microphone chunk (a multiple of
    10 ms). `process` returns the cleaned chunk, of the same length; its first sample is
    `output_delay_s` older than `captured_at`. Errors from the engine propagate: the caller
    falls back to half duplex.
    """

    def __init__(
        self,
        engine: EchoEngine,
        *,
        capture_rate: int = MODEL_INPUT_RATE,
        lead_s: float = 0.01,
        history_s: float = 2.0,
        block_tolerance_s: float = 0.005,
        idle_realign_s: float = 0.01,
        max_drift_s: float = 0.08,
        erle_window_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.capture_rate = capture_rate
        self.lead_s = lead_s
        self.history_s = history_s
        self.block_tolerance_s = block_tolerance_s
        self.idle_realign_s = idle_realign_s
        self.max_drift_s = max_drift_s
        self._erle_decay = math.exp(-FRAME_S / erle_window_s)
        self._capture_frame = round(capture_rate * FRAME_S)
        self.stats = EchoStats()
        self.coupling = EchoCoupling()
        self.ref_rate = 0
        self._ring: Int16Array = np.zeros(0, dtype=np.int16)
        self._end = 0  # timeline index (at ref_rate) one past the last known sample
        self._read: int | None = None  # next timeline index to hand to the engine
        self._next_block: tuple[int, int] | None = None  # (tap position, index) continuing
        self._ref_frame = 0
        self._mic_anchored = False
        self._audio_end = 0  # timeline index one past the last sound in the reference

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def output_delay_s(self) -> float:
        return self.engine.output_delay_s

    # ---- far end ----------------------------------------------------------------------

    def _set_rate(self, rate: int) -> None:
        self.ref_rate = rate
        self._ring = np.zeros(max(1, round(rate * self.history_s)), dtype=np.int16)
        self._ref_frame = round(rate * FRAME_S)
        self._end = 0
        self._read = None
        self._next_block = None
        self._mic_anchored = False
        self._audio_end = 0

    def add_played(self, blocks: Iterable[TimedBlock], sample_rate: int) -> None:
        """Audio as played (from `Playback.read_played()`), stamped with speaker time."""
        for block in blocks:
            self.add_reference(block.samples, block.t, sample_rate, pos=block.pos)

    def add_reference(
        self, samples: Int16Array, t: float, sample_rate: int, *, pos: int | None = None
    ) -> None:
        """Far-end samples whose first one left the speaker at monotonic time `t`.

        Blocks that continue the previous one (the same tap position, a timestamp at most
        `block_tolerance_s` later) are laid end to end, so timestamp jitter never tears the
        reference; a later one is a real gap (an underrun is a whole device block).
        """
        if sample_rate != self.ref_rate:
            self._set_rate(sample_rate)
        n = len(samples)
        if n == 0:
            return
        index = round(t * sample_rate)
        tolerance = self.block_tolerance_s * sample_rate
        follow = self._next_block
        if follow is not None and pos == follow[0]:
            # Sound cannot leave the speaker before the sound queued ahead of it: a stamp
            # earlier than the continuation is the device's latency estimate moving, not
            # the audio. A later one beyond the tolerance is a real gap (an underrun).
            if index - follow[1] <= tolerance:
                index = follow[1]
            else:
                self.stats.reference_gaps += 1
        self._next_block = None if pos is None else (pos + n, index + n)
        self._write(index, samples)
        if np.any(samples):
            self._audio_end = max(self._audio_end, index + n)

    def _write(self, index: int, samples: Int16Array) -> None:
        cap = len(self._ring)
        if self._read is None:
            self._read = index
            self._end = index
        read = self._read
        end = index + len(samples)
        if end <= read:
            self.stats.late_reference_s += len(samples) / self.ref_rate
            return
        if index < read:
            self.stats.late_reference_s += (read - index) / self.ref_rate
            samples = samples[read - index :]
            index = read
        if len(samples) > cap:  # more than the history at once: keep the newest
            samples = samples[-cap:]
            index = end - cap
        if index > self._end:
            self._zero(self._end, index)
        self._put(index, samples)
        self._end = max(self._end, end)
        if self._end - read > cap:  # the microphone fell behind by more than the history
            self._read = self._end - cap

    def _zero(self, start: int, stop: int) -> None:
        cap = len(self._ring)
        start = max(start, stop - cap)
        if stop <= start:
            return
        a, b = start % cap, stop % cap
        if a < b:
            self._ring[a:b] = 0
        else:
            self._ring[a:] = 0
            self._ring[:b] = 0

    def _put(self, index: int, samples: Int16Array) -> None:
        cap = len(self._ring)
        a = index % cap
        first = min(len(samples), cap - a)
        self._ring[a : a + first] = samples[:first]
        if first < len(samples):
            self._ring[: len(samples) - first] = samples[first:]

    def _take(self, index: int, n: int) -> Int16Array:
        """n reference samples from `index` on: zeros where nothing was played."""
        cap = len(self._ring)
        if index + n > self._end:  # nothing played there (yet): silence, from now on
            self._zero(self._end, index + n)
            self._end = index + n
        out = np.zeros(n, dtype=np.int16)
        lo = max(index, self._end - cap)  # older than the history: silence
        m = index + n - lo
        if m <= 0:
            return out
        a = lo % cap
        first = min(m, cap - a)
        out[lo - index : lo - index + first] = self._ring[a : a + first]
        if first < m:
            out[lo - index + first :] = self._ring[: m - first]
        return out

    # ---- near end ---------------------------------------------------------------------

    def process(self, samples: Int16Array, captured_at: float) -> Int16Array:
        """Clean one microphone chunk (16 kHz, a multiple of 10 ms) captured at `captured_at`."""
        started = time.thread_time()
        n = self._capture_frame
        if len(samples) % n:
            raise ValueError(f"microphone chunks must be a multiple of {n} samples")
        out = np.empty(len(samples), dtype=np.int16)
        stats = self.stats
        decay = self._erle_decay
        for k in range(0, len(samples), n):
            mic = samples[k : k + n]
            ref = self._reference_for(captured_at + k / self.capture_rate)
            self.engine.analyze_render(ref, self.ref_rate)
            clean = self.engine.process_capture(mic)
            out[k : k + n] = clean
            stats.frames += 1
            mic_e, ref_e = _energy(mic), _energy(ref)
            if ref_e > 0.0:
                stats.echo_in = stats.echo_in * decay + mic_e
                stats.echo_out = stats.echo_out * decay + _energy(clean)
            self.coupling.feed(mic_e / len(mic), ref_e / len(ref))
        stats.cpu_s += time.thread_time() - started
        return out

    @property
    def expected_echo_dbfs(self) -> float:
        """How loud the echo of what just played can be at the microphone (dBFS)."""
        return self.coupling.expected_echo_dbfs

    def _reference_for(self, t: float) -> Int16Array:
        """The 10 ms of reference to pair with the microphone frame captured at `t`.

        The microphone is one continuous stream, so its frames take consecutive stretches
        of the timeline; the capture timestamps only re-anchor it when they disagree by
        more than `idle_realign_s` while nothing plays (free), or by more than
        `max_drift_s` at any time (lost chunks, a restarted device). A jump of the
        reference under a converged canceller costs it seconds of re-adaptation.
        """
        if not self.ref_rate:
            # Nothing played yet: silence at the model's output rate keeps the engine in
            # its full-duplex configuration (its output delay changes when a far end
            # first appears).
            self._set_rate(MODEL_OUTPUT_RATE)
        rate = self.ref_rate
        index = round((t + self.lead_s) * rate)
        read = self._read
        if read is not None and self._mic_anchored:
            drift = abs(index - read)
            idle = self._audio_end < min(index, read) - round(0.3 * rate)
            limit = self.idle_realign_s if idle else self.max_drift_s
            if drift <= limit * rate:
                index = read
            else:
                self.stats.realigned += 1
        self._mic_anchored = True
        frame = self._take(index, self._ref_frame)
        self._read = index + self._ref_frame
        return frame


class EchoCoupling:
    """How loud the speaker is at the microphone (the echo path's gain, in dB), from
    10 ms frame energies: a double-talk guard beside the canceller.

    AEC3 holds a near-end voice back while it plays audio and has not learnt the echo
    path, or that there is none (headphones, until its transparent mode engages after
    several seconds). A microphone clearly louder than the echo this path can produce is
    then the user. The gain is a low percentile of mic/reference energy ratios over
    windows long enough to cover the echo delay: the user talking only raises the ratio;
    pauses in the agent's speech are averaged out by the windows. Until `learn_s` of
    reference has played it is unknown, taken as `unknown_db` (louder than any echo).
    """

    def __init__(
        self,
        *,
        mic_window: int = 30,  # 300 ms
        ref_window: int = 50,  # 500 ms: the mic window plus up to 200 ms of echo delay
        min_ref_dbfs: float = -45.0,
        learn_s: float = 1.0,
        history_s: float = 3.0,
        percentile: float = 20.0,
        unknown_db: float = 10.0,
    ) -> None:
        self.unknown_db = unknown_db
        self._mic = np.zeros(mic_window)
        self._ref = np.zeros(ref_window)
        self._i = 0
        self._mic_sum = 0.0
        self._ref_sum = 0.0
        self._min_ref = 10 ** (min_ref_dbfs / 10) * 32768.0**2
        self._ratios = np.zeros(round(history_s / FRAME_S))
        self._n = 0
        self._learn = round(learn_s / FRAME_S)
        self._percentile = percentile
        self.gain_db: float | None = None

    def feed(self, mic_ms: float, ref_ms: float) -> None:
        """One 10 ms frame: mean-square levels of the microphone and of its reference."""
        i = self._i
        mic_slot, ref_slot = i % len(self._mic), i % len(self._ref)
        self._mic_sum += mic_ms - self._mic[mic_slot]
        self._ref_sum += ref_ms - self._ref[ref_slot]
        self._mic[mic_slot] = mic_ms
        self._ref[ref_slot] = ref_ms
        self._i = i + 1
        if ref_slot == len(self._ref) - 1:  # re-sum now and then: no float drift
            self._mic_sum, self._ref_sum = float(self._mic.sum()), float(self._ref.sum())
        ref_mean = self._ref_sum / len(self._ref)
        if self._i < len(self._ref) or ref_mean < self._min_ref:
            return
        mic_mean = max(0.0, self._mic_sum / len(self._mic))
        self._ratios[self._n % len(self._ratios)] = mic_mean / ref_mean
        self._n += 1
        if self._n >= self._learn and self._n % 10 == 0:  # every 100 ms of reference
            filled = self._ratios[: min(self._n, len(self._ratios))]
            k = int(len(filled) * self._percentile / 100)
            ratio = max(float(np.partition(filled, k)[k]), 1e-12)
            self.gain_db = 10 * math.log10(ratio)

    @property
    def expected_echo_dbfs(self) -> float:
        """The loudest recent reference frame through the echo path (dBFS)."""
        window = self._ref[: min(self._i, len(self._ref))]
        peak = float(window.max()) if window.size else 0.0
        if peak <= 0.0:
            return -120.0
        gain = self.unknown_db if self.gain_db is None else self.gain_db
        return 10 * math.log10(peak / 32768.0**2) + gain


def _energy(frame: Int16Array) -> float:
    x = frame.astype(np.float64)
    return float(np.dot(x, x))


def try_canceller() -> EchoCanceller | str:
    """A ready echo canceller, or the one-line reason there is none (blocking: call it
    with `asyncio.to_thread`)."""
    try:
        return EchoCanceller(load_engine())
    except EchoUnavailable as exc:
        return str(exc)
