"""Energy-based voice activity detection for 16 kHz s16le input (pure, no I/O).

Gemini detects speech on the server; the emulator approximates it with frame energy:
speech starts once `start_ms` of consecutive frames are louder than `threshold_dbfs`
(Gemini's `prefixPaddingMs` plays this role) and ends after `silence_ms` of quieter
frames (`silenceDurationMs`). A short pre-roll is kept so the utterance handed to the
recogniser includes its onset.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

DEFAULT_THRESHOLD_DBFS = -40.0
DEFAULT_START_MS = 100
DEFAULT_SILENCE_MS = 500
# startOfSpeechSensitivity LOW needs a louder voice to count as speech; HIGH (Gemini's
# default) is the default threshold. endOfSpeechSensitivity LOW waits longer before it
# ends a turn; HIGH (the default) ends it after the default silence.
LOW_START_THRESHOLD_DBFS = -32.0
LOW_END_SILENCE_MS = 900
PRE_ROLL_MS = 200
FRAME_MS = 20
_SILENCE_FLOOR_DBFS = -120.0


@dataclass(frozen=True)
class SpeechStarted:
    at_s: float  # stream time of the first loud frame


@dataclass(frozen=True)
class SpeechEnded:
    pcm: bytes  # the utterance including pre-roll, s16le mono
    at_s: float  # stream time when the end was decided
    speech_s: float  # time from the first loud frame to the last loud frame


VadEvent = SpeechStarted | SpeechEnded


def detector_for(
    *,
    prefix_padding_ms: int | None,
    silence_duration_ms: int | None,
    start_sensitivity: str | None,
    end_sensitivity: str | None,
) -> SpeechDetector:
    """A detector with the setup's automaticActivityDetection settings (explicit
    milliseconds win over a sensitivity)."""
    silence = LOW_END_SILENCE_MS if end_sensitivity == "LOW" else DEFAULT_SILENCE_MS
    threshold = LOW_START_THRESHOLD_DBFS if start_sensitivity == "LOW" else DEFAULT_THRESHOLD_DBFS
    return SpeechDetector(
        threshold_dbfs=threshold,
        start_ms=prefix_padding_ms or DEFAULT_START_MS,
        silence_ms=silence_duration_ms or silence,
    )


def frame_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples relative to full scale."""
    import numpy as np  # here: a text-only emulator never loads numpy

    if samples.size == 0:
        return _SILENCE_FLOOR_DBFS
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    if rms <= 0.0:
        return _SILENCE_FLOOR_DBFS
    return max(20.0 * math.log10(rms / 32768.0), _SILENCE_FLOOR_DBFS)


class SpeechDetector:
    """Feed PCM, get `SpeechStarted`/`SpeechEnded` events. Not thread-safe; loop-only."""

    def __init__(
        self,
        *,
        sample_rate: int = 16_000,
        threshold_dbfs: float = DEFAULT_THRESHOLD_DBFS,
        start_ms: int = DEFAULT_START_MS,
        silence_ms: int = DEFAULT_SILENCE_MS,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate = sample_rate
        self.threshold_dbfs = threshold_dbfs
        self._frame_bytes = 2 * sample_rate * FRAME_MS // 1000
        self._start_frames = max(1, math.ceil(start_ms / FRAME_MS))
        self._silence_frames = max(1, math.ceil(silence_ms / FRAME_MS))
        # Room for the loud frames that confirm the start plus PRE_ROLL_MS before them.
        pre_roll = PRE_ROLL_MS // FRAME_MS + self._start_frames
        self._pre_roll: collections.deque[bytes] = collections.deque(maxlen=pre_roll)
        self._pending = bytearray()
        self._frames_seen = 0
        self._loud_run = 0
        self._quiet_run = 0
        self._speech: list[bytes] = []
        self._speech_start_frame = 0
        self._last_loud_frame = 0
        self.in_speech = False

    def _time(self, frames: int) -> float:
        return frames * FRAME_MS / 1000.0

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Consume audio; return the events it completes (in order)."""
        events: list[VadEvent] = []
        self._pending += pcm
        usable = len(self._pending) - len(self._pending) % self._frame_bytes
        if usable == 0:
            return events
        block = bytes(self._pending[:usable])
        del self._pending[:usable]  # small, bounded by one frame: fine here (not an audio callback)
        for start in range(0, usable, self._frame_bytes):
            frame = block[start : start + self._frame_bytes]
            event = self._frame(frame)
            if event is not None:
                events.append(event)
        return events

    def _frame(self, frame: bytes) -> VadEvent | None:
        import numpy as np

        index = self._frames_seen
        self._frames_seen += 1
        loud = frame_dbfs(np.frombuffer(frame, dtype="<i2")) >= self.threshold_dbfs
        if not self.in_speech:
            self._pre_roll.append(frame)
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= self._start_frames:
                self.in_speech = True
                self._speech = list(self._pre_roll)
                self._pre_roll.clear()
                self._speech_start_frame = index - self._loud_run + 1
                self._last_loud_frame = index
                self._quiet_run = 0
                return SpeechStarted(at_s=self._time(self._speech_start_frame))
            return None
        self._speech.append(frame)
        if loud:
            self._quiet_run = 0
            self._last_loud_frame = index
            return None
        self._quiet_run += 1
        if self._quiet_run >= self._silence_frames:
            return self._end()
        return None

    def _end(self) -> SpeechEnded:
        event = SpeechEnded(
            pcm=b"".join(self._speech),
            at_s=self._time(self._frames_seen),
            speech_s=self._time(self._last_loud_frame - self._speech_start_frame + 1),
        )
        self.in_speech = False
        self._speech = []
        self._loud_run = 0
        self._quiet_run = 0
        return event

    def flush(self) -> SpeechEnded | None:
        """End any utterance in progress now (the client sent audioStreamEnd)."""
        self._pending.clear()
        self._loud_run = 0
        self._pre_roll.clear()
        if not self.in_speech:
            return None
        return self._end()
