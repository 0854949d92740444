"""`FrameSender`: grab frames from a source at `fps`, skip the unchanged ones, JPEG-encode
the rest off the event loop and hand them to `send(jpeg, mime)`.

Grabbing, the thumbnail test and encoding run in one worker thread that the sender
owns (sources such as the screen keep per-thread handles); the event loop only waits,
sends and counts. `stats` is what an on-screen indicator shows: frames sent, frames
skipped as unchanged, bytes sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .codec import EncodedFrame, grey_thumbnail, prepare
from .policy import ChangeDetector, FrameGate, FramePolicy, Pacer
from .sources import FrameSource, read_image

SendImage = Callable[[bytes, str], Awaitable[None]]


@dataclass(frozen=True)
class FrameStats:
    grabbed: int = 0  # frames taken from the source
    sent: int = 0
    skipped: int = 0  # grabbed but not sent: the same picture as the last one sent
    bytes_sent: int = 0
    last_size: tuple[int, int] | None = None  # width, height of the last frame sent
    last_sent_at: float | None = None  # the clock's time of the last send
    ended: bool = False  # the source ended (a video file, an image shown once)


@dataclass(frozen=True)
class _Unchanged:
    pass


_UNCHANGED = _Unchanged()


class FrameSender:
    """Shows `source` to the model through `send` as `policy` says, until `stop()` or the
    source ends. `set_speaking` feeds the `while-speaking` gate; `on_update` (optional)
    is called with the new stats after every frame grabbed."""

    def __init__(
        self,
        source: FrameSource,
        send: SendImage,
        policy: FramePolicy | None = None,
        *,
        on_update: Callable[[FrameStats], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.policy = policy or FramePolicy()
        self._send = send
        self._on_update = on_update
        self._clock = clock
        self._pacer = Pacer(self.policy.fps)
        self._gate = FrameGate(self.policy.mode, hold_s=self.policy.speaking_hold_s)
        threshold = self.policy.change_threshold
        self._detector = None if threshold is None else ChangeDetector(threshold)
        self._stats = FrameStats()
        self._stopped = False
        self._wake = asyncio.Event()

    @property
    def stats(self) -> FrameStats:
        return self._stats

    def set_speaking(self, speaking: bool) -> None:
        """The user started (True) or stopped (False) speaking: opens or closes the
        `while-speaking` gate (it stays open `speaking_hold_s` after)."""
        self._gate.set_speaking(speaking, self._clock())
        self._wake.set()

    def resend(self) -> None:
        """Send the next frame even if unchanged (e.g. the model's context was lost)."""
        if self._detector is not None:
            self._detector.reset()
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short by stop(), set_speaking() or resend()."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))

    async def run(self) -> None:
        """The loop; returns when stopped or when the source has ended. The source is
        closed on the way out. An error from the source or from `send` propagates."""
        loop = asyncio.get_running_loop()
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adkvoice-frames")
        try:
            while not self._stopped:
                now = self._clock()
                if not self._gate.is_open(now):
                    await self._pause(self._pacer.interval)
                    continue
                delay = self._pacer.delay(now)
                if delay > 0:
                    await self._pause(delay)
                    continue
                self._pacer.tick(now)
                result = await loop.run_in_executor(worker, self._process)
                if result is None:
                    self._update(ended=True)
                    return
                if isinstance(result, _Unchanged):
                    self._update(grabbed=self._stats.grabbed + 1, skipped=self._stats.skipped + 1)
                    continue
                frame, thumbnail = result
                await self._send(frame.data, frame.mime_type)
                if self._detector is not None:
                    self._detector.accept(thumbnail)
                self._update(
                    grabbed=self._stats.grabbed + 1,
                    sent=self._stats.sent + 1,
                    bytes_sent=self._stats.bytes_sent + len(frame.data),
                    last_size=(frame.width, frame.height),
                    last_sent_at=self._clock(),
                )
        finally:
            try:
                await asyncio.shield(loop.run_in_executor(worker, self.source.close))
            finally:
                worker.shutdown(wait=False)

    def _process(self) -> tuple[EncodedFrame, np.ndarray] | _Unchanged | None:
        """In the worker thread: grab, test, encode."""
        frame = self.source.grab()
        if frame is None:
            return None
        thumbnail = grey_thumbnail(frame)
        if self._detector is not None and not self._detector.changed(thumbnail):
            return _UNCHANGED
        encoded = prepare(frame, max_side=self.policy.max_side, quality=self.policy.quality)
        return encoded, thumbnail

    def _update(self, **changes: object) -> None:
        self._stats = replace(self._stats, **changes)  # type: ignore[arg-type]
        if self._on_update is not None:
            self._on_update(self._stats)


async def encode_image_file(path: str | Path, policy: FramePolicy | None = None) -> EncodedFrame:
    """An image file scaled to fit and JPEG-encoded (in a thread), for a one-off send:
    `frame = await encode_image_file(p); await backend.send_image(frame.data, frame.mime_type)`.
    """
    policy = policy or FramePolicy()

    def work() -> EncodedFrame:
        return prepare(read_image(Path(path)), max_side=policy.max_side, quality=policy.quality)

    return await asyncio.to_thread(work)
