"""Microphone audio from a client, coalesced into 40 ms chunks before it goes to the model.

Browsers send small frames (an AudioWorklet's 128 samples: 8 ms of 16 kHz PCM, up to 125
a second), and every `backend.send_audio` call costs a pydantic message, base64, JSON and
a WebSocket frame to the model. `Coalescer` (pure: no I/O, no clock) joins small frames
into chunks of at least `CHUNK_BYTES`; `AudioUplink` (one per session) sends what is
ready and bounds the delay:

- a sample waits at most `MAX_HOLD_S` (40 ms) after it arrived: a timer flushes what is
  held when the client pauses or sends too slowly to fill a chunk in time;
- frames of 40 ms or more go straight through, not copied, when nothing is held;
- the routes call `flush()` before anything that must follow the audio in order (a typed
  turn, an image, the end of input) and when the session closes.

`ADKVOICE_UPLINK_COALESCE=off` in serve's environment sends every frame as it comes (for
measuring what coalescing saves; see bench/serve_bench.py --no-coalesce).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from adkvoice.errors import BackendError

SAMPLE_BYTES = 2  # 16-bit mono
CHUNK_BYTES = 1280  # 40 ms of 16 kHz s16le mono
MAX_HOLD_S = 0.040  # the most a sample waits here before it is sent
COALESCE_ENV = "ADKVOICE_UPLINK_COALESCE"


def coalescing_on() -> bool:
    """Whether serve coalesces (on unless the measuring switch says off)."""
    return os.environ.get(COALESCE_ENV, "on").strip().lower() not in {"off", "0", "false", "no"}


class Coalescer:
    """Joins PCM frames into chunks of at least `target_bytes`, cut only between samples.

    `add` returns the chunk that is ready (everything held, up to the last whole sample)
    or None; `flush` returns what is held. Bytes come out in the order they went in, none
    lost: a lone odd byte waits for the byte that completes its sample (or for `flush`).
    With `target_bytes=0` every frame of whole samples goes straight through.
    """

    def __init__(self, target_bytes: int = CHUNK_BYTES) -> None:
        self.target_bytes = target_bytes
        self._held = bytearray()

    @property
    def held_bytes(self) -> int:
        return len(self._held)

    def add(self, pcm: bytes) -> bytes | None:
        if not self._held and len(pcm) >= self.target_bytes and len(pcm) % SAMPLE_BYTES == 0:
            return pcm  # big enough and whole samples: no copy
        self._held += pcm
        whole = len(self._held) - len(self._held) % SAMPLE_BYTES
        if whole < self.target_bytes or whole == 0:
            return None
        chunk = bytes(self._held[:whole])
        del self._held[:whole]
        return chunk

    def flush(self) -> bytes:
        held = bytes(self._held)
        self._held.clear()
        return held


class AudioUplink:
    """One session's audio on its way to the backend: `add` each received frame (it sends
    a chunk when one is ready and never waits for more audio), `flush` before anything that
    must come after the audio, `close` when the session ends (held audio is flushed).

    Sends are serialized and each takes its bytes from the coalescer only when it runs,
    so a flush by the timer and a chunk from `add` never overtake each other."""

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        *,
        target_bytes: int = CHUNK_BYTES,
        max_hold_s: float = MAX_HOLD_S,
    ) -> None:
        self._send = send
        self._coalescer = Coalescer(target_bytes)
        self._max_hold_s = max_hold_s
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timed_flushes: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    def for_serve(cls, send: Callable[[bytes], Awaitable[None]]) -> AudioUplink:
        """serve's uplink: 40 ms chunks, or every frame as it comes when switched off."""
        return cls(send, target_bytes=CHUNK_BYTES if coalescing_on() else 0)

    @property
    def held_bytes(self) -> int:
        return self._coalescer.held_bytes

    async def add(self, pcm: bytes) -> None:
        """Hold `pcm` or send it with what is held. BackendError is the caller's."""
        if self._closed:
            return
        async with self._lock:
            chunk = self._coalescer.add(pcm)
            self._arm_timer(restart=chunk is not None)
            if chunk is not None:
                await self._send(chunk)

    async def flush(self) -> None:
        """Send what is held now. BackendError is the caller's."""
        self._cancel_timer()
        async with self._lock:
            held = self._coalescer.flush()
            if held:
                await self._send(held)

    async def close(self) -> None:
        """Send what is held (an agent that failed loses it) and stop the timer."""
        if self._closed:
            return
        try:
            await self._flush_quietly()
        finally:
            self._closed = True
            self._cancel_timer()
            for task in self._timed_flushes:
                task.cancel()

    def _arm_timer(self, *, restart: bool) -> None:
        """The deadline belongs to the oldest held byte: kept while audio accumulates,
        started again when a chunk went out and a byte stayed behind."""
        if restart or not self._coalescer.held_bytes:
            self._cancel_timer()
        if self._coalescer.held_bytes and self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._max_hold_s, self._on_deadline)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_deadline(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self._flush_quietly())
        self._timed_flushes.add(task)
        task.add_done_callback(self._timed_flushes.discard)

    async def _flush_quietly(self) -> None:
        # An agent that failed loses the audio: whoever reads its events reports it.
        with contextlib.suppress(BackendError):
            await self.flush()
