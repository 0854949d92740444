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
