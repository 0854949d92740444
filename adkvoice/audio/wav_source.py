"""A WAV file as the microphone (`adkvoice talk --input-wav`), for scripts and CI.

The file is converted to 16 kHz mono and delivered in 20 ms chunks at real time, like a
microphone, then silence follows until the conversation ends (so the model's voice
activity detection sees the end of speech).
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from adkvoice.audio.capture import CaptureChunk
from adkvoice.audio.dsp import MODEL_INPUT_RATE, StreamResampler, rms_dbfs
from adkvoice.errors import ConfigError

CHUNK_SAMPLES = MODEL_INPUT_RATE // 50  # 20 ms


def read_wav_16k(path: Path) -> np.ndarray:
    """The file's audio as 16 kHz mono int16; a clear error for anything unreadable."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise ConfigError(f"--input-wav {path}: not a readable WAV file ({exc})") from None
    if width != 2:
        raise ConfigError(
            f"--input-wav {path}: {8 * width}-bit samples; convert it to 16-bit PCM "
            f"(e.g. sox {path.name} -b 16 out.wav)"
        )
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
    mono = samples.mean(axis=1).astype(np.int16) if channels > 1 else samples[:, 0].copy()
    if rate != MODEL_INPUT_RATE:
        mono = StreamResampler(rate, MODEL_INPUT_RATE, quality="HQ").process(mono, last=True)
    return mono


class WavSource:
    """Yields `CaptureChunk`s from a WAV file at real time, then silence until `stop()`."""

    def __init__(self, path: Path, *, trailing_silence_s: float | None = None) -> None:
        self.path = path
        self._samples = read_wav_16k(path)
        self._stopped = False
        self._trailing_s = trailing_silence_s
        self.finished_at: float | None = None  # monotonic time the file's audio ran out
        self.finished = asyncio.Event()
        self.muted = False

    @property
    def duration_s(self) -> float:
        return len(self._samples) / MODEL_INPUT_RATE

    def stop(self) -> None:
        self._stopped = True

    def __aiter__(self) -> AsyncIterator[CaptureChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[CaptureChunk]:
        start = time.monotonic()
        silence = np.zeros(CHUNK_SAMPLES, dtype=np.int16)
        index = 0
        while not self._stopped:
            offset = index * CHUNK_SAMPLES
            piece = self._samples[offset : offset + CHUNK_SAMPLES]
            if piece.size < CHUNK_SAMPLES:
                if self.finished_at is None:
                    self.finished_at = start + len(self._samples) / MODEL_INPUT_RATE
                    self.finished.set()
                if self._trailing_s is not None and (
                    time.monotonic() - self.finished_at >= self._trailing_s
                ):
                    return
                piece = np.concatenate([piece, silence[: CHUNK_SAMPLES - piece.size]])
            if self.muted:
                piece = silence
            due = start + index * CHUNK_SAMPLES / MODEL_INPUT_RATE
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield CaptureChunk(pcm=piece.tobytes(), captured_at=due, level_dbfs=rms_dbfs(piece))
            index += 1
