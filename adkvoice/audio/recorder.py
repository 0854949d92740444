"""`--record DIR`: a stereo WAV (mic left, agent right, time-aligned) and a JSONL event log.

Both files stay valid if the process dies: the WAV header's sizes are rewritten after every
flush (every `flush_interval_s`, 0.5 s by default), so a killed process leaves a file that
any reader opens with at most the last interval missing, and every JSONL line is flushed
as it is written. `close()` writes what is left.

Alignment: each channel is placed by the monotonic time of its first sample (capture time
for the mic, speaker time for agent audio), relative to `t0`. Within a continuous stream
samples simply follow each other; a jump in time (a pause between replies, a dropped
block) is filled with silence. Audio arriving for a time already written is appended where
the channel is (never overwrites), so late data shifts rather than vanishes.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import numpy as np

from adkvoice.audio.dsp import Int16Array, StreamResampler, pcm_to_int16
from adkvoice.events import Event, ImageSent, to_json_dict

WAV_RATE = 24_000
_HEADER_BYTES = 44
_MAX_CHUNK = 0xFFFFFFFF


def wav_header(data_bytes: int, rate: int, channels: int = 2) -> bytes:
    """A canonical 44-byte PCM s16le WAV header for `data_bytes` of sample data."""
    block = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        min(_MAX_CHUNK, 36 + data_bytes),
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        rate,
        rate * block,
        block,
        16,
        b"data",
        min(_MAX_CHUNK, data_bytes),
    )


class _Track:
    """One channel: resamples to the WAV rate and places samples by time."""

    def __init__(self, wav_rate: int, t0: float, gap_tolerance_s: float) -> None:
        self.wav_rate = wav_rate
        self.t0 = t0
        self.gap_tolerance_s = gap_tolerance_s
        self.cursor = 0  # absolute WAV frame where the next sample goes
        self._committed = 0  # frames of this channel already in the file
        self._pending: list[Int16Array] = []
        self._pending_len = 0
        self._resampler: StreamResampler | None = None
        self._expected_t: float | None = None  # where a continuous next input would start

    def add(self, samples: Int16Array, t: float, rate: int) -> None:
        if samples.size == 0:
            return
        resampler = self._resampler
        continuous = (
            resampler is not None
            and resampler.in_rate == rate
            and self._expected_t is not None
            and abs(t - self._expected_t) <= self.gap_tolerance_s
        )
        if not continuous:
            self.finish_stream()
            target = round((t - self.t0) * self.wav_rate)
            if target > self.cursor:
                self._append(np.zeros(target - self.cursor, dtype=np.int16))
            if resampler is None or resampler.in_rate != rate:
                resampler = StreamResampler(rate, self.wav_rate, quality="HQ")
                self._resampler = resampler
        assert resampler is not None
        self._append(resampler.process(samples))
        self._expected_t = t + samples.size / rate

    def finish_stream(self) -> None:
        """Emit the resampler's tail: the continuous stream has ended."""
        if self._resampler is not None:
            self._append(self._resampler.flush())
        self._expected_t = None

    def _append(self, samples: Int16Array) -> None:
        if samples.size:
            self._pending.append(samples)
            self._pending_len += samples.size
            self.cursor += samples.size

    def take(self, n: int) -> Int16Array:
        """The next `n` frames for the file, zero-padded where this channel has none yet."""
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while self._pending and filled < n:
            head = self._pending[0]
            k = min(n - filled, head.size)
            out[filled : filled + k] = head[:k]
            filled += k
            if k == head.size:
                self._pending.pop(0)
            else:
                self._pending[0] = head[k:]
        self._pending_len -= filled
        self._committed += n
        # Silence was committed past this channel's audio: it continues after it.
        self.cursor = max(self.cursor, self._committed)
        return out


_IMAGE_SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class Recorder:
    """Records a conversation into `<directory>/<stem>.wav` and `<stem>.jsonl`; the
    images the model was shown go into `<stem>-image-0001.jpg`, … beside them, each named
    in its `image_sent` line (`"file"`)."""

    def __init__(
        self,
        directory: Path,
        *,
        stem: str | None = None,
        wav_rate: int = WAV_RATE,
        t0: float | None = None,
        flush_interval_s: float = 0.5,
        commit_lag_s: float = 0.5,
        gap_tolerance_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stem = stem or "adkvoice-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.wav_path = directory / f"{stem}.wav"
        self.events_path = directory / f"{stem}.jsonl"
        self.directory = directory
        self.stem = stem
        self.images_written = 0
        self.wav_rate = wav_rate
        self.clock = clock
        self.t0 = clock() if t0 is None else t0
        self.flush_interval_s = flush_interval_s
        self.commit_lag_s = commit_lag_s
        self.frames_written = 0
        self._mic = _Track(wav_rate, self.t0, gap_tolerance_s)
        self._agent = _Track(wav_rate, self.t0, gap_tolerance_s)
        self._last_flush = self.t0
        self._closed = False
        self._wav: IO[bytes] = self.wav_path.open("wb")
        self._wav.write(wav_header(0, wav_rate))
        self._wav.flush()
        self._events: IO[str] = self.events_path.open("w", encoding="utf-8")
        self._write_line(
            {
                "type": "recording",
                "t": round(self.t0, 6),
                "wav": self.wav_path.name,
                "wav_rate": wav_rate,
                "channels": ["mic", "agent"],
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )

    # ---- input -----------------------------------------------------------------------

    def add_mic(self, pcm: bytes | Int16Array, t: float, sample_rate: int = 16_000) -> None:
        """Mic audio whose first sample was captured at monotonic time `t`."""
        self._add(self._mic, pcm, t, sample_rate)

    def add_agent(self, pcm: bytes | Int16Array, t: float, sample_rate: int = 24_000) -> None:
        """Agent audio whose first sample left the speaker at monotonic time `t`."""
        self._add(self._agent, pcm, t, sample_rate)

    def handle(self, event: Event) -> None:
        """A conversation event, as a JSON line with its offset into the recording."""
        if self._closed:
            return
        line = to_json_dict(event)
        line["offset_s"] = round(event.at - self.t0, 6)
        if isinstance(event, ImageSent):
            line["file"] = self._write_image(event)
        self._write_line(line)

    def _write_image(self, event: ImageSent) -> str:
        """The image as its own file; its name, relative to the log."""
        self.images_written += 1
        suffix = _IMAGE_SUFFIX.get(event.mime_type, ".bin")
        name = f"{self.stem}-image-{self.images_written:04d}{suffix}"
        (self.directory / name).write_bytes(event.data)
        return name

    def _add(self, track: _Track, pcm: bytes | Int16Array, t: float, rate: int) -> None:
        if self._closed:
            return
        samples = pcm if isinstance(pcm, np.ndarray) else pcm_to_int16(pcm)
        track.add(samples, t, rate)
        if self.clock() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def _write_line(self, obj: dict[str, object]) -> None:
        self._events.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._events.flush()

    # ---- output ----------------------------------------------------------------------

    def flush(self, *, now: float | None = None) -> None:
        """Write audio up to `commit_lag_s` before `now`, then rewrite the header sizes."""
        if self._closed:
            return
        now = self.clock() if now is None else now
        self._last_flush = now
        horizon = round((now - self.commit_lag_s - self.t0) * self.wav_rate)
        self._commit(horizon)

    def _commit(self, horizon: int) -> None:
        n = horizon - self.frames_written
        if n > 0:
            frames = np.empty((n, 2), dtype="<i2")
            frames[:, 0] = self._mic.take(n)
            frames[:, 1] = self._agent.take(n)
            self._wav.seek(0, 2)
            self._wav.write(frames.tobytes())
            self.frames_written += n
        self._wav.seek(0)
        self._wav.write(wav_header(self.frames_written * 4, self.wav_rate))
        self._wav.flush()

    def close(self) -> None:
        """Write everything buffered and finalize both files."""
        if self._closed:
            return
        self._mic.finish_stream()
        self._agent.finish_stream()
        self._commit(max(self._mic.cursor, self._agent.cursor, self.frames_written))
        self._closed = True
        self._wav.close()
        self._events.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
