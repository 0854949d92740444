"""Signal helpers for the real-device tests and benchmarks."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").copy()


def best_alignment(signal: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Lag of `reference` inside `signal` and the normalized correlation at that lag."""
    x = signal.astype(np.float64)
    r = reference.astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(x) + len(r))))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(r, n)), n)[: len(x)]
    lag = int(np.argmax(corr))
    segment = x[lag : lag + len(r)]
    if len(segment) < len(r):
        return lag, 0.0
    denom = float(np.linalg.norm(segment) * np.linalg.norm(r))
    return lag, float(np.dot(segment, r) / denom) if denom else 0.0


def segments_found(
    signal: np.ndarray, reference: np.ndarray, *, segment: int, min_corr: float
) -> float:
    """The share of `reference`'s non-silent segments found in `signal` with `min_corr`.

    Robust to a glitch (a device underflow or overflow on a loaded machine shifts the rest
    of a recording, which ruins one global alignment but only one segment here).
    """
    found = total = 0
    for start in range(0, len(reference) - segment + 1, segment):
        piece = reference[start : start + segment]
        if np.abs(piece).max() < 500:
            continue
        total += 1
        _, corr = best_alignment(signal, piece)
        found += corr >= min_corr
    return found / total if total else 0.0


def voiced(
    seconds: float, rate: int, *, f0: float = 200.0, level: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A synthetic voice: harmonics of a wandering pitch under a syllable-like envelope
    (bursts of ~150–300 ms with dips), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = np.zeros(n)
    for k in range(1, 30):
        if k * f0 * 1.1 > rate / 2 * 0.9:
            break
        formant = np.exp(-(((k * f0 - 700) / 500) ** 2)) + 0.5 * np.exp(
            -(((k * f0 - 1800) / 700) ** 2)
        )
        x += (0.2 / k + formant) * np.sin(k * phase + rng.uniform(0, 6))
    syllables = np.clip(np.sin(2 * np.pi * 3.3 * t + rng.uniform(0, 6)), 0, None) ** 0.7
    x *= syllables * (0.6 + 0.4 * np.sin(2 * np.pi * 0.4 * t + 1))
    x += 0.02 * rng.standard_normal(n) * syllables  # breath
    return (level * 32767 * x / np.abs(x).max()).astype(np.int16)


def room_echo(
    far: np.ndarray,
    rate: int,
    *,
    delay_s: float,
    gain: float = 0.25,
    tail_s: float = 0.15,
    seed: int = 1,
) -> np.ndarray:
    """`far` as a microphone hears it from a speaker: a direct path after `delay_s`, then a
    decaying diffuse tail (its energy ~30 % of the direct path's), as float samples."""
    rng = np.random.default_rng(seed)
    d = int(delay_s * rate)
    n_tail = int(tail_s * rate)
    h = np.zeros(d + n_tail + 1)
    h[d] = gain
    decay = np.exp(-np.arange(n_tail) / (0.03 * rate))
    tail = rng.standard_normal(n_tail) * decay
    tail *= gain * np.sqrt(0.3 / float(np.sum(tail**2)))
    h[d + 1 :] = tail
    return np.convolve(far.astype(np.float64), h)[: len(far)]
