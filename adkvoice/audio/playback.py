"""The speaker: agent audio through a preallocated ring and an adaptive jitter buffer.

The output callback (DESIGN.md rule 1) only runs `ring.read_into(out)` (a short fade and
zeros on underrun, counted), stamps times and bumps counters. Everything else (resampling
when the device refuses 24 kHz, the backlog beyond the ring, the jitter buffer's policy,
`audio/jitter.py`) runs on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from adkvoice.audio import device_errors as msg
from adkvoice.audio.devices import DeviceInfo, as_device, close_stream, open_stream, until_running
from adkvoice.audio.dsp import (
    MODEL_OUTPUT_RATE,
    Int16Array,
    ResampleQuality,
    StreamResampler,
    pcm_to_int16,
)
from adkvoice.audio.jitter import JitterBuffer, PrebufferPolicy
from adkvoice.audio.ring import Int16Ring, TimedBlock, TimedRing

_monotonic = time.monotonic
FADE_MS = 4  # an underrun fades out (and the audio back in) over this long


@dataclass(frozen=True, slots=True)
class ReplyStart:
    callback_at: float  # monotonic time the reply's first sample was handed to the device
    speaker_at: float  # and when it should leave the speaker (plus the device's latency)


class Playback:
    """Agent audio to the speaker through a preallocated ring with an adaptive jitter buffer.

    Loop side: `enqueue()` each chunk, `end_reply()` at the end of a turn, `flush()` on
    barge-in. The callback only runs `ring.read_into(out)`, so a flush takes effect at
    the next device block (`block_ms`, 10 ms by default); what the device already holds
    (`device_buffer_s`, 30 ms asked, ~38 ms measured on PulseAudio) still plays out.
    A smaller device buffer underflows (clicks) on a loaded machine. With `tap=True` the
    audio as actually played is kept with speaker timestamps (recorder, echo reference).

    The jitter buffer (`prebuffer`, a `JitterBuffer` unless given) sees every chunk's
    arrival and says how long to hold each reply's first audio; it starts at 10 ms and
    grows only with the lateness it sees and with underruns.
    """

    def __init__(
        self,
        device: DeviceInfo | str | int | None = None,
        *,
        device_rate: int | None = None,
        block_ms: int = 10,
        device_buffer_s: float = 0.03,
        buffer_s: float = 20.0,
        prebuffer: PrebufferPolicy | None = None,
        tap: bool = False,
        quality: ResampleQuality = "LQ",
        on_reply_start: Callable[[ReplyStart], None] | None = None,
        stall_timeout_s: float = 1.5,
    ) -> None:
        self._device_spec = device
        self._forced_rate = device_rate
        self._block_ms = block_ms
        self._device_buffer_s = device_buffer_s
        self._buffer_s = buffer_s
        self._quality: ResampleQuality = quality
        self._want_tap = tap
        self._stall_timeout_s = stall_timeout_s
        self.prebuffer: PrebufferPolicy = prebuffer or JitterBuffer()
        self.on_reply_start = on_reply_start
        self._ring = Int16Ring(1)
        self._tap: TimedRing | None = None
        self._resamplers: dict[int, StreamResampler] = {}
        self._backlog: collections.deque[Int16Array] = collections.deque()
        self._pump_handle: asyncio.TimerHandle | None = None
        self._end_pending = False
        self._stream: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._seen_underruns = 0
        self._seen_played = 0
        self._flush_seen = 0
        self._dac_offset = 0.0
        self._reply_at = (0.0, 0.0)
        self.device: DeviceInfo | None = None
        self.sample_rate = 0
        self.latency_s = 0.0
        self.device_underflows = 0
        self.last_callback_at = 0.0
        self.callbacks = 0
        self.last_reply_start: ReplyStart | None = None
        self.flush_requested_at = 0.0
        self.flush_applied_at = 0.0  # stamped by the callback that applied the flush

    async def start(self) -> None:
        """Open the device and return once it runs steadily (start-up underflows over)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await asyncio.to_thread(self._open)
        try:
            await until_running(
                lambda: self.callbacks,
                lambda: self.device_underflows,
                self._label(),
                "output",
                timeout_s=self._stall_timeout_s,
                settle_s=0.1,
            )
        except BaseException:
            await self.aclose()
            raise

    def _open(self) -> None:
        info = as_device(self._device_spec, "output")
        rate = self._forced_rate or info.choose_rate("output", MODEL_OUTPUT_RATE)
        self.device, self.sample_rate = info, rate
        self._ring = Int16Ring(int(rate * self._buffer_s), fade_frames=rate * FADE_MS // 1000)
        self._set_thresholds()
        if self._want_tap:
            self._tap = TimedRing(rate * 10, rate)
        self.last_callback_at = _monotonic()
        self._stream = open_stream(
            info,
            "output",
            samplerate=rate,
            blocksize=rate * self._block_ms // 1000,
            latency=self._device_buffer_s,
            callback=self._callback,
        )
        self.latency_s = float(self._stream.latency)
        self._dac_offset = self.latency_s

    # Runs on PortAudio's thread: fill the buffer from the ring, stamp, count.
    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = _monotonic()
        ring = self._ring
        starts = ring.starts
        out = outdata[:, 0]
        n = ring.read_into(out)
        self.last_callback_at = now
        self.callbacks += 1
        if status.output_underflow:
            self.device_underflows += 1
        dac = time_info.outputBufferDacTime - time_info.currentTime
        if 0.0 < dac < 1.0:
            self._dac_offset = dac
        if ring.flushes_applied != self._flush_seen:
            self._flush_seen = ring.flushes_applied
            self.flush_applied_at = now
        if ring.starts != starts and self._loop is not None:
            self._reply_at = (now, now + self._dac_offset)
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._report_reply_start)
        if n and self._tap is not None:
            self._tap.write(out[:n], now + self._dac_offset)

    def _report_reply_start(self) -> None:
        start = ReplyStart(*self._reply_at)
        self.last_reply_start = start
        if self.on_reply_start is not None:
            self.on_reply_start(start)

    # ---- loop side -----------------------------------------------------------------------

    def enqueue(self, pcm: bytes, sample_rate: int = MODEL_OUTPUT_RATE) -> None:
        """Queue agent audio (s16le mono); resampled to the device rate when needed."""
        if not self.sample_rate:
            raise RuntimeError("Playback.enqueue() before start()")
        self._check_alive()
        samples = pcm_to_int16(pcm)
        if sample_rate != self.sample_rate:
            resampler = self._resamplers.get(sample_rate)
            if resampler is None:
                resampler = StreamResampler(sample_rate, self.sample_rate, quality=self._quality)
                self._resamplers[sample_rate] = resampler
            samples = resampler.process(samples)
        self._end_pending = False
        self.prebuffer.on_chunk(_monotonic(), len(pcm) / 2 / sample_rate)
        self._update_policy()  # before the audio is visible to the callback
        self._push(samples)

    def end_reply(self) -> None:
        """The turn is complete: play what is queued even if under the prebuffer."""
        self.prebuffer.on_reply_end()
        for resampler in self._resamplers.values():
            tail = resampler.flush()
            if tail.size:
                self._push(tail)
        if self._backlog:
            self._end_pending = True
        else:
            self._ring.mark_end()

    def flush(self) -> None:
        """Drop all queued agent audio; silence from the next device block on."""
        self.flush_requested_at = _monotonic()
        self.prebuffer.on_reply_end()
        self._backlog.clear()
        self._end_pending = False
        for resampler in self._resamplers.values():
            resampler.reset()
        self._ring.clear()

    @property
    def playing(self) -> bool:
        """Agent audio is queued or being played."""
        ring = self._ring
        return (
            bool(self._backlog) or ring.available > 0 or (ring.running and not ring.flush_pending)
        )

    @property
    def underruns(self) -> int:
        return self._ring.underruns

    @property
    def queued_s(self) -> float:
        queued = self._ring.available + sum(len(b) for b in self._backlog)
        return queued / self.sample_rate if self.sample_rate else 0.0

    @property
    def ring(self) -> Int16Ring:
        return self._ring

    def read_played(self) -> list[TimedBlock]:
        """Audio as played since the last call, at `sample_rate`, stamped with speaker time."""
        return [] if self._tap is None else self._tap.read_blocks()

    async def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything queued has left the speaker; False on timeout."""
        deadline = _monotonic() + timeout_s
        while self.playing:
            self._check_alive()
            if _monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        # The device still holds up to its latency of audio: stopping now would cut it.
        await asyncio.sleep(min(1.0, self.latency_s + 0.05))
        return True

    def _push(self, samples: Int16Array) -> None:
        if self._backlog:
            self._backlog.append(samples)
        else:
            written = self._ring.write(samples)
            if written < len(samples):
                self._backlog.append(samples[written:].copy())
        if self._backlog:
            self._schedule_pump()

    def _schedule_pump(self) -> None:
        if self._pump_handle is None and self._loop is not None:
            self._pump_handle = self._loop.call_later(0.05, self._pump)

    def _pump(self) -> None:
        self._pump_handle = None
        while self._backlog:
            head = self._backlog[0]
            written = self._ring.write(head)
            if written < len(head):
                self._backlog[0] = head[written:]
                break
            self._backlog.popleft()
        if self._backlog:
            self._schedule_pump()
        elif self._end_pending:
            self._end_pending = False
            self._ring.mark_end()
        self._update_policy()

    def _update_policy(self) -> None:
        ring = self._ring
        new_underruns = ring.underruns - self._seen_underruns
        self._seen_underruns = ring.underruns
        played = ring.frames_played - self._seen_played
        self._seen_played = ring.frames_played
        if new_underruns:
            self.prebuffer.on_underrun(new_underruns)
        elif played and self.sample_rate:
            self.prebuffer.on_played(played / self.sample_rate)
        self._set_thresholds()

    def _set_thresholds(self) -> None:
        ring, rate = self._ring, self.sample_rate
        ring.start_hold = self.prebuffer.hold_frames(rate)
        ring.start_threshold = self.prebuffer.start_frames(rate)

    def _label(self) -> str:
        return self.device.label("output") if self.device else "the speaker"

    def _check_alive(self) -> None:
        stream = self._stream
        if stream is None:
            return
        silent_for = _monotonic() - self.last_callback_at
        if silent_for > self._stall_timeout_s or not stream.active:
            raise msg.stalled(self._label(), "output", silent_for)

    def _cancel_pump(self) -> None:
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None

    def close(self) -> None:
        """Stop the stream at once (blocks briefly); call `drain()` first to finish a reply."""
        if self._loop_thread == threading.get_ident():  # timer handles are loop-only
            self._cancel_pump()
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream)

    async def aclose(self) -> None:
        self._cancel_pump()  # on the loop: timer handles are not thread-safe
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
