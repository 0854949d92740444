"""The microphone: a sounddevice input callback into a ring, 16 kHz chunks on the loop.

The callback (DESIGN.md rule 1) only copies the block into a preallocated `TimedRing`
with the capture time of its first sample, bumps counters, and wakes the loop at most
once per block. Resampling (when the device refuses 16 kHz), chunking, mute and levels
happen on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from adkvoice.audio import device_errors as msg
from adkvoice.audio.devices import DeviceInfo, as_device, close_stream, open_stream, until_running
from adkvoice.audio.dsp import (
    MODEL_INPUT_RATE,
    SILENCE_DBFS,
    Chunker,
    ResampleQuality,
    StreamResampler,
    int16_to_pcm,
    rms_dbfs,
)
from adkvoice.audio.ring import TimedRing
from adkvoice.errors import AudioDeviceError

_monotonic = time.monotonic
_CLOCK_SLEW = 0.005  # how fast capture stamps may drift later than the sample clock


@dataclass(frozen=True, slots=True)
class CaptureChunk:
    pcm: bytes  # 20 ms of 16 kHz s16le mono (zeros while muted)
    captured_at: float  # monotonic time of its first sample at the microphone
    level_dbfs: float


class Capture:
    """The microphone as 20 ms, 16 kHz s16le chunks with capture timestamps.

    Opens at 16 kHz when the device accepts it, otherwise at its own rate, resampling on
    the loop. Use `async with Capture(...) as mic: async for chunk in mic: ...`.
    While `muted`, chunks keep flowing as silence so timing and the recorder stay aligned.
    """

    def __init__(
        self,
        device: DeviceInfo | str | int | None = None,
        *,
        device_rate: int | None = None,
        block_ms: int = 20,
        buffer_s: float = 2.0,
        max_queued_s: float = 10.0,
        stall_timeout_s: float = 1.5,
        quality: ResampleQuality = "LQ",
    ) -> None:
        self._device_spec = device
        self._forced_rate = device_rate
        self._block_ms = block_ms
        self._buffer_s = buffer_s
        self._stall_timeout_s = stall_timeout_s
        self._quality: ResampleQuality = quality
        self._chunks: collections.deque[CaptureChunk] = collections.deque(
            maxlen=max(1, int(max_queued_s * 50))
        )
        # Capture time = offset + ring position / rate. Callbacks only ever run late, so
        # the offset follows the lower envelope of the per-block stamps, rising at most
        # 0.5 % of elapsed time to track a device clock slower than ours.
        self._offset: float | None = None
        self._ready = asyncio.Event()
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timed: TimedRing | None = None
        self._resampler: StreamResampler | None = None
        self._chunker = Chunker()
        self._wake_pending = False
        self._closed = False
        self._error: AudioDeviceError | None = None
        self.device: DeviceInfo | None = None
        self.sample_rate = 0  # the device rate actually opened
        self.muted = False
        self.level_dbfs = SILENCE_DBFS
        self.chunks_dropped = 0  # the consumer fell behind by more than max_queued_s
        self.device_overflows = 0  # PortAudio input overflows
        self.last_callback_at = 0.0
        self.callbacks = 0
        self._block_s = 0.02

    @property
    def frames_dropped(self) -> int:
        """Frames the capture ring had no room for (the loop stalled)."""
        return 0 if self._timed is None else self._timed.ring.frames_dropped

    async def start(self) -> None:
        """Open the device and return once its first block has arrived."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await asyncio.to_thread(self._open)
        try:
            await until_running(
                lambda: self.callbacks,
                lambda: 0,
                self._label(),
                "input",
                timeout_s=self._stall_timeout_s,
            )
        except BaseException:
            await self.aclose()
            raise

    def _open(self) -> None:
        info = as_device(self._device_spec, "input")
        rate = self._forced_rate or info.choose_rate("input", MODEL_INPUT_RATE)
        self.device, self.sample_rate = info, rate
        self._timed = TimedRing(max(rate, int(rate * self._buffer_s)), rate)
        self._resampler = StreamResampler(rate, MODEL_INPUT_RATE, quality=self._quality)
        self._block_s = (rate * self._block_ms // 1000) / rate
        self.last_callback_at = _monotonic()
        self._stream = open_stream(
            info,
            "input",
            samplerate=rate,
            blocksize=rate * self._block_ms // 1000,
            # Input buffer size adds no delay (callbacks fire per block as data arrives),
            # but room to ride out a busy machine without overflowing.
            latency="high",
            callback=self._callback,
        )

    # Runs on PortAudio's thread: copy, stamp, wake. Nothing else.
    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = _monotonic()
        age = time_info.currentTime - time_info.inputBufferAdcTime
        block_s = self._block_s
        if not block_s <= age < 1.0:  # ADC time missing or implausible: a block's worth
            age = block_s
        timed = self._timed
        if timed is not None:
            timed.write(indata[:, 0], now - age)
        self.last_callback_at = now
        self.callbacks += 1
        if status.input_overflow:
            self.device_overflows += 1
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                self._loop.call_soon_threadsafe(self._on_wake)

    def _on_wake(self) -> None:
        self._wake_pending = False  # before draining: a later block schedules a new wake
        timed, resampler = self._timed, self._resampler
        if timed is None or resampler is None:
            return
        rate = float(self.sample_rate)
        for block in timed.read_blocks(merge_tolerance_s=None):
            offset = block.t - block.pos / rate
            if self._offset is not None:
                offset = min(offset, self._offset + _CLOCK_SLEW * block.samples.size / rate)
            self._offset = offset
            for chunk in self._chunker.feed(resampler.process(block.samples)):
                # Mute per chunk, after the resampler: nothing buffered in it leaks out.
                muted = self.muted
                level = SILENCE_DBFS if muted else rms_dbfs(chunk.samples)
                pcm = bytes(len(chunk.samples) * 2) if muted else int16_to_pcm(chunk.samples)
                self.level_dbfs = level
                at = self._time_at(chunk.start * self.sample_rate / MODEL_INPUT_RATE)
                if len(self._chunks) == self._chunks.maxlen:
                    self.chunks_dropped += 1
                self._chunks.append(CaptureChunk(pcm, at, level))
        if self._chunks:
            self._ready.set()

    def _time_at(self, pos: float) -> float:
        """Monotonic capture time of the sample at ring position `pos`."""
        offset = self._offset if self._offset is not None else _monotonic()
        return offset + pos / self.sample_rate

    def _label(self) -> str:
        return self.device.label("input") if self.device else "the microphone"

    def _check_alive(self) -> None:
        if self._error is not None:
            raise self._error
        stream = self._stream
        if stream is None:
            return
        silent_for = _monotonic() - self.last_callback_at
        if silent_for > self._stall_timeout_s or not stream.active:
            self._error = msg.stalled(self._label(), "input", silent_for)
            raise self._error

    async def read_chunk(self) -> CaptureChunk | None:
        """The next chunk; None once closed and drained. Raises if the device stops."""
        while not self._chunks:
            if self._closed:
                return None
            self._check_alive()
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._stall_timeout_s / 3):
                    await self._ready.wait()
        return self._chunks.popleft()

    def __aiter__(self) -> AsyncIterator[CaptureChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[CaptureChunk]:
        while (chunk := await self.read_chunk()) is not None:
            yield chunk

    def close(self) -> None:
        """Stop the stream (blocks briefly); pending chunks stay readable."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream)
        if self._loop_thread == threading.get_ident():  # asyncio.Event is loop-only
            self._ready.set()

    async def aclose(self) -> None:
        """Stop the stream off the loop; a waiting reader gets None once drained."""
        self._closed = True
        self._ready.set()
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
