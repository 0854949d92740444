"""The load generators of serve_bench: one class per transport `adkvoice serve` hosts,
the script every session says, the timestamps carried inside the audio, and the TCP proxy
that counts bytes on the wire.

- `LoadSession`: a WebSocket session, for three protocols:
  - ``ext``: adkvoice.v1 at `/ws/{id}` (subprotocol adkvoice.v1): binary 16 kHz PCM up,
    binary 24 kHz PCM down, JSON control frames;
  - ``seeds``: the ADK WS sample at `/ws/{id}?is_audio=true`: base64 JSON both ways;
  - ``bidi``: ADK's bidi-demo at `/ws/{user_id}/{session_id}`: binary 16 kHz PCM up,
    one ADK Event JSON per text frame down (`content.parts[].inlineData.data`, base64url
    24 kHz PCM; `turnComplete`).
- `SseLoadSession` (``sse``): the WS sample's SSE version: `GET /events/{id}?is_audio=true`
  (a text/event-stream of the seeds' JSON), and one `POST /send/{id}` per chunk on one
  keep-alive connection, written on the real-time schedule without waiting for the answer
  to the one before (HTTP/1.1 pipelining: the answers are read in order by another task,
  so a slow server shows as added latency and POST round trips, not as a late generator).
  Raw asyncio streams, so the generator stays cheap.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SUBPROTOCOL = "adkvoice.v1"
INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
CONNECT_TIMEOUT_S = 30.0

# ----------------------------------------------------------------------------- timestamps
# Up: 80 samples of 0/1 (a 16-bit marker, then 64 bits of monotonic ns) at the start of
# each 16 kHz chunk: about -95 dBFS, so the emulator's energy VAD does not hear it.
# Down: the first 12 bytes of each 24 kHz reply chunk are b"ADKV" + monotonic ns.
_UP_MARK = np.unpackbits(np.frombuffer(b"\xa5\xc3", dtype=np.uint8)).astype("<i2")
UP_STAMP_SAMPLES = 16 + 64
DOWN_MAGIC = b"ADKV"
DOWN_STAMP_BYTES = len(DOWN_MAGIC) + 8


def stamp_up(pcm: bytes, now_ns: int) -> bytes:
    bits = np.unpackbits(np.frombuffer(struct.pack(">Q", now_ns), dtype=np.uint8))
    stamp = np.concatenate([_UP_MARK, bits.astype("<i2")]).tobytes()
    return stamp + pcm[len(stamp) :]


def read_up_stamp(pcm: bytes) -> int | None:
    if len(pcm) < 2 * UP_STAMP_SAMPLES:
        return None
    samples = np.frombuffer(pcm[: 2 * UP_STAMP_SAMPLES], dtype="<i2")
    if not np.array_equal(samples[:16], _UP_MARK) or samples[16:].max(initial=0) > 1:
        return None
    return int(struct.unpack(">Q", np.packbits(samples[16:].astype(np.uint8)).tobytes())[0])


def stamp_down(pcm: bytes, now_ns: int) -> bytes:
    return DOWN_MAGIC + struct.pack("<Q", now_ns) + pcm[DOWN_STAMP_BYTES:]


def read_down_stamp(pcm: bytes) -> int | None:
    if len(pcm) < DOWN_STAMP_BYTES or pcm[:4] != DOWN_MAGIC:
        return None
    return int(struct.unpack("<Q", pcm[4:DOWN_STAMP_BYTES])[0])


# ----------------------------------------------------------------------------- the script


@dataclass
class Script:
    """What every session says, cycle after cycle: speech, then silence."""

    chunks: list[bytes]  # 16 kHz s16le, chunk_ms each
    speech_chunks: int  # the first this many are speech
    chunk_s: float

    @property
    def cycle_s(self) -> float:
        return len(self.chunks) * self.chunk_s


NOISE_RMS = 33  # about -60 dBFS: a quiet room through a real microphone, under the VAD's -40


async def make_script(chunk_ms: int, silence_s: float) -> Script:
    """espeak-ng speech (trimmed to where it is loud), then silence; all with a little
    noise, as a real microphone has (digital zeros would flatter permessage-deflate)."""
    from adkvoice.emulator.speech import make_tts, resample

    pcm24 = await make_tts("auto").synthesize("hello there, this is a benchmark")
    voice = np.frombuffer(resample(pcm24, OUTPUT_RATE, INPUT_RATE), dtype="<i2")
    loud = np.flatnonzero(np.abs(voice) > 1000)
    if loud.size:
        voice = voice[loud[0] : loud[-1] + 1]
    size = INPUT_RATE * chunk_ms // 1000  # samples per chunk
    speech_chunks = math.ceil(voice.size / size)
    total = size * (speech_chunks + math.ceil(silence_s * 1000 / chunk_ms))
    rng = np.random.default_rng(7)
    signal = rng.normal(0, NOISE_RMS, total)
    signal[: voice.size] += voice
    pcm = np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()
    chunks = [pcm[i : i + 2 * size] for i in range(0, len(pcm), 2 * size)]
    return Script(chunks, speech_chunks, chunk_ms / 1000)


# --------------------------------------------------------------------------- the sessions

PROTOCOLS = ("ext", "seeds", "sse", "bidi")
BIDI_USER = "bench"
MAX_UNANSWERED_S = 5.0  # sse: POSTs in flight (in seconds of audio) before a session gives up
_TO_STANDARD_B64 = bytes.maketrans(b"-_", b"+/")


@dataclass
class SessionResult:
    down: list[tuple[int, float]] = field(default_factory=list)  # (emulator send ns, ms)
    late_ms: list[float] = field(default_factory=list)  # how late each chunk went out
    response_ms: list[float] = field(default_factory=list)  # speech end → first reply audio
    post_ms: list[tuple[int, float]] = field(default_factory=list)  # sse: (sent ns, round trip)
    post_answer_bytes: int = 0  # sse: the answers' heads and bodies
    turns: int = 0
    sent_audio_s: float = 0.0
    reply_audio_s: float = 0.0
    errors: list[str] = field(default_factory=list)


class _Talker:
    """What every session does the same way: the real-time send schedule and the audio
    that comes back. Subclasses connect, send one chunk and decode frames."""

    def __init__(self, script: Script, phase: int) -> None:
        self.script = script
        self.phase = phase
        self.result = SessionResult()
        self._speech_end_ns: int | None = None

    async def _send(self, pcm: bytes) -> bool:
        raise NotImplementedError

    async def talk(self, t0: float, duration_s: float) -> None:
        """Send audio on a real-time schedule from monotonic time t0 for duration_s."""
        script = self.script
        count = int(duration_s / script.chunk_s)
        last_speech = script.speech_chunks - 1
        for k in range(count):
            target = t0 + k * script.chunk_s
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            index = (k + self.phase) % len(script.chunks)
            now = time.monotonic_ns()
            self.result.late_ms.append(max(0.0, now / 1e9 - target) * 1000)
            if not await self._send(stamp_up(script.chunks[index], now)):
                return
            self.result.sent_audio_s += script.chunk_s
            if index == last_speech:
                self._speech_end_ns = now

    def _on_audio(self, pcm: bytes, now: int) -> None:
        self.result.reply_audio_s += len(pcm) / 2 / OUTPUT_RATE
        sent = read_down_stamp(pcm)
        if sent is not None:
            self.result.down.append((sent, (now - sent) / 1e6))
        if self._speech_end_ns is not None:
            self.result.response_ms.append((now - self._speech_end_ns) / 1e6)
            self._speech_end_ns = None

    def _on_seeds(self, obj: dict[str, Any], now: int) -> None:
        """A seeds (or adkvoice.v1 control) message."""
        if obj.get("mime_type") == "audio/pcm":
            self._on_audio(base64.b64decode(obj["data"]), now)
        elif obj.get("turn_complete") is True or obj.get("type") == "turn_complete":
            self.result.turns += 1
        elif obj.get("type") == "error":
            self.result.errors.append(f"error frame: {obj.get('code')}")

    def _on_adk_event(self, obj: dict[str, Any], now: int) -> None:
        """One ADK Event (bidi-demo): camelCase keys, bytes as base64url."""
        for part in (obj.get("content") or {}).get("parts") or []:
            inline = part.get("inlineData") or {}
            data = inline.get("data")
            if data and str(inline.get("mimeType", "audio/pcm")).startswith("audio/"):
                raw = data.encode("ascii").translate(_TO_STANDARD_B64)
                self._on_audio(base64.b64decode(raw + b"=" * (-len(raw) % 4)), now)
        if obj.get("turnComplete") is True:
            self.result.turns += 1
        if obj.get("errorCode"):
            self.result.errors.append(f"error event: {obj.get('errorCode')}")


class LoadSession(_Talker):
    """A WebSocket session: ``ext`` (adkvoice.v1), ``seeds`` or ``bidi`` (bidi-demo).
    `extended=True` without a protocol is ``ext``, as before there were more."""

    def __init__(
        self,
        url: str,
        *,
        extended: bool = False,
        deflate: bool,
        script: Script,
        phase: int,
        protocol: str | None = None,
    ) -> None:
        super().__init__(script, phase)
        self.url = url
        self.protocol = protocol or ("ext" if extended else "seeds")
        self.extended = self.protocol == "ext"
        self.deflate = deflate
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(
            self.url,
            subprotocols=[SUBPROTOCOL] if self.extended else None,  # type: ignore[list-item]
            compression="deflate" if self.deflate else None,
            open_timeout=CONNECT_TIMEOUT_S,
            close_timeout=2,
            ping_interval=None,
            max_size=2**22,
        )
        if self.extended:
            hello = json.loads(await self._ws.recv())
            if hello.get("type") != "hello":
                self.result.errors.append(f"no hello: {hello}")
        self._reader = asyncio.create_task(self._receive())

    async def _send(self, pcm: bytes) -> bool:
        if self.protocol == "seeds":
            data = base64.b64encode(pcm).decode("ascii")
            frame: str | bytes = json.dumps({"mime_type": "audio/pcm", "data": data})
        else:
            frame = pcm  # adkvoice.v1 and bidi-demo: a binary frame of raw PCM
        try:
            await self._ws.send(frame)
        except Exception as exc:
            self.result.errors.append(f"send failed: {type(exc).__name__}")
            return False
        return True

    async def _receive(self) -> None:
        from websockets.exceptions import ConnectionClosed

        on_text = self._on_adk_event if self.protocol == "bidi" else self._on_seeds
        try:
            async for frame in self._ws:
                now = time.monotonic_ns()
                if isinstance(frame, bytes):
                    self._on_audio(frame, now)
                else:
                    on_text(json.loads(frame), now)
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code != 1000:
                self.result.errors.append(f"closed {closed.rcvd.code} {closed.rcvd.reason}")

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """An HTTP/1.1 response's status and headers (names in lower case; "" is the size of
    the head in bytes)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head[:-4].split("\r\n")
    headers = {"": str(len(head))}  # "": the head's size in bytes
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


class SseLoadSession(_Talker):
    """``sse``: the WS sample's SSE version. `GET /events/{id}?is_audio=true` on one
    connection, `POST /send/{id}` per chunk on another (keep-alive, pipelined)."""

    def __init__(self, base_url: str, session_id: str, *, script: Script, phase: int) -> None:
        super().__init__(script, phase)
        hostport = base_url.removeprefix("http://").rstrip("/")
        host, port = hostport.rsplit(":", 1)
        self._addr = (host, int(port))
        self._session_id = session_id
        self._post_head = (
            f"POST /send/{session_id} HTTP/1.1\r\nHost: {hostport}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._get = (
            f"GET /events/{session_id}?is_audio=true HTTP/1.1\r\nHost: {hostport}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        ).encode()
        self._max_unanswered = max(1, int(MAX_UNANSWERED_S / script.chunk_s))
        self._pending: collections.deque[int] = collections.deque()  # POST send times (ns)
        self._closing = False
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._post: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection(*self._addr)
        self._writers.append(writer)
        writer.write(self._get)
        # serve starts the agent before it answers: a 200 means POSTs are taken.
        status, headers = await _read_head(reader)
        if status != 200:
            length = int(headers.get("content-length", "0") or 0)
            body = await reader.readexactly(length) if length else b""
            raise RuntimeError(f"/events answered {status} {body[:120]!r}")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        post_reader, self._post = await asyncio.open_connection(*self._addr)
        self._writers.append(self._post)
        self._tasks = [
            asyncio.create_task(self._receive(reader, chunked)),
            asyncio.create_task(self._read_answers(post_reader)),
        ]

    async def _send(self, pcm: bytes) -> bool:
        assert self._post is not None
        if self._tasks[1].done():
            self.result.errors.append("the POST connection closed")
            return False
        if len(self._pending) >= self._max_unanswered:
            self.result.errors.append(f"{len(self._pending)} POSTs unanswered")
            return False
        data = base64.b64encode(pcm).decode("ascii")
        body = json.dumps({"mime_type": "audio/pcm", "data": data}).encode()
        self._pending.append(time.monotonic_ns())
        self._post.write(self._post_head + b"%d\r\n\r\n" % len(body) + body)
        try:
            await self._post.drain()
        except (ConnectionError, OSError) as exc:
            self.result.errors.append(f"POST failed: {type(exc).__name__}")
            return False
        return True

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        """The answers to the pipelined POSTs, in order: round trip, status."""
        try:
            while True:
                status, headers = await _read_head(reader)
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                now = time.monotonic_ns()
                self.result.post_answer_bytes += int(headers[""]) + len(body)
                if self._pending:
                    sent = self._pending.popleft()
                    self.result.post_ms.append((sent, (now - sent) / 1e6))
                if status != 200:
                    self.result.errors.append(f"POST answered {status} {body[:80]!r}")
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            if not self._closing:
                self.result.errors.append(f"POST connection: {type(exc).__name__}")

    async def _receive(self, reader: asyncio.StreamReader, chunked: bool) -> None:
        """The event stream: `data: <json>` blocks, each ended by a blank line."""
        buffer = b""
        try:
            while True:
                if chunked:
                    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    data = (await reader.readexactly(size + 2))[:-2]
                else:
                    data = await reader.read(65536)
                    if not data:
                        break
                now = time.monotonic_ns()
                buffer += data
                while (end := buffer.find(b"\n\n")) >= 0:
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    payload = b"\n".join(
                        line[5:].removeprefix(b" ")
                        for line in block.split(b"\n")
                        if line.startswith(b"data:")
                    )
                    if payload:
                        self._on_seeds(json.loads(payload), now)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError) as exc:
            if not self._closing:
                self.result.errors.append(f"event stream: {type(exc).__name__}")
            return
        if not self._closing:
            self.result.errors.append("the event stream ended")

    async def close(self) -> None:
        self._closing = True
        for writer in self._writers:
            with contextlib.suppress(Exception):
                writer.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


Session = LoadSession | SseLoadSession


def new_session(
    protocol: str, base_url: str, session_id: str, *, deflate: bool, script: Script, phase: int
) -> Session:
    """A session of `protocol` (see PROTOCOLS) against the server at http://HOST:PORT."""
    if protocol == "sse":
        return SseLoadSession(base_url, session_id, script=script, phase=phase)
    ws = base_url.replace("http://", "ws://")
    path = f"/ws/{BIDI_USER}/{session_id}" if protocol == "bidi" else f"/ws/{session_id}"
    query = "" if protocol == "bidi" else "?is_audio=true"
    return LoadSession(
        ws + path + query, protocol=protocol, deflate=deflate, script=script, phase=phase
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


# ---------------------------------------------------------------------- bytes on the wire


@dataclass
class Counter:
    up: int = 0
    down: int = 0


@contextlib.asynccontextmanager
async def counting_proxy(target_port: int) -> AsyncIterator[tuple[int, Counter]]:
    """A TCP proxy on 127.0.0.1 that counts the bytes each way."""
    counter = Counter()
    tasks: set[asyncio.Task[None]] = set()

    async def pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]
    ) -> None:
        try:
            while data := await reader.read(65536):
                count(len(data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)

        def add_up(n: int) -> None:
            counter.up += n

        def add_down(n: int) -> None:
            counter.down += n

        for task in (
            asyncio.create_task(pump(reader, up_writer, add_up)),
            asyncio.create_task(pump(up_reader, writer, add_down)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    proxy = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = int(proxy.sockets[0].getsockname()[1])
    try:
        yield port, counter
    finally:
        proxy.close()
        for task in list(tasks):
            task.cancel()
        await proxy.wait_closed()
