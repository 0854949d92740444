"""A seeded fuzz of every route of a real `adkvoice serve` process, while a good session
keeps talking to it.

About 4,000 hostile or broken inputs: malformed HTTP, every route with every method,
odd query strings, headers and bodies (integers over Python's 4,300-digit limit, deep
nesting, bytes that are not UTF-8), WebSocket handshakes with bad options and frames of
every wrong shape, and clients that leave mid-reply. Each must end with a 4xx or a
1007/1008/1009 close (or be answered), never a 5xx, a 1011 or a traceback, and the good
session must be answered throughout. The figures (inputs, log lines per input, the
server's memory before and after) are printed; `-s` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from adkvoice.wire.adkvoice_v1 import SUBPROTOCOL

from .conftest import clean_env

pytestmark = pytest.mark.integration

SEED = 20261204
HTTP_INPUTS = 2400
WS_CONNECTIONS = 90
FRAMES_PER_CONNECTION = 24
WORKERS = 6  # fuzzing clients at once
GOOD_TURN_EVERY_S = 0.5  # pause between two turns of the good session
STEP_S = 15.0  # a bound on any single wait
CLIENT_FAULT_CLOSES = {1000, 1001, 1007, 1008, 1009, 1013}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Tally:
    inputs: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    closes: Counter[int | None] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)  # what a client fault must never get

    def status(self, code: int, what: str) -> None:
        self.statuses[code] += 1
        if code >= 500 and code != 503:  # 503: full or draining, with Retry-After
            self.bad.append(f"HTTP {code} for {what[:200]!r}")

    def closed(self, code: int | None, what: str) -> None:
        self.closes[code] += 1
        if code not in CLIENT_FAULT_CLOSES and code is not None:
            self.bad.append(f"close {code} after {what[:200]!r}")


# ----------------------------------------------------------------------------- inputs

ROUTES = [
    *("/", "/healthz", "/readyz", "/chat/stream", "/static/app.js", "/ws/x", "/nope", "/%"),
    *("/events/fz", "/events/%E2%80%AE", "/send/fz", "/send/good", "/send/" + "a" * 200),
    *("/ws/u/fz", "/ws/%00/x", "/ws/u/" + "b" * 300),
]
METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD", "TRACE", "BREW"]


def _junk_text(rng: random.Random) -> str:
    pick = rng.randrange(8)
    if pick == 0:
        return "9" * rng.randint(4301, 20_000)  # over the int conversion limit
    if pick == 1:
        return "[" * rng.randint(1000, 100_000)  # deep nesting
    if pick == 2:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(1, 60)))
    if pick == 3:
        return "\ud800"  # a lone surrogate
    if pick == 4:
        return "😀" * rng.randint(1, 20)
    if pick == 5:
        return "x" * rng.randint(8001, 20_000)  # over max_text_chars
    if pick == 6:
        return "?"
    return rng.choice(["", " ", "null", "{}", "[]", "true", "1e999", '"', "\x00"])


def _json_body(rng: random.Random) -> bytes:
    junk = _junk_text(rng)
    shapes = [
        lambda: junk.encode("utf-8", "surrogatepass"),
        lambda: b'{"query": ' + junk.encode("utf-8", "surrogatepass") + b"}",
        lambda: json.dumps({"query": junk}).encode(),
        lambda: json.dumps({"query": rng.choice([1, None, [], {}, True])}).encode(),
        lambda: json.dumps(
            {"query": "hi", "session_id": rng.choice([1, [], "../x", "é" * 200])}
        ).encode(),
        lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))),
        lambda: b"\xff\xfe{" + b'"query": "hi"}',
    ]
    return rng.choice(shapes)()


def _query(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(["query", "session_id", "token", "is_audio", "voice", "x", "%ZZ"])
        value = rng.choice(
            [
                quote(_junk_text(rng)[:2000], safe="", errors="surrogatepass"),
                "%ZZ",
                "%FF%FE",
                "hello",
                "a%00b",
                "",
            ]
        )
        parts.append(f"{key}={value}")
    return ("?" + "&".join(parts)) if parts else ""


def _headers(rng: random.Random, host: str) -> list[str]:
    odd_host = rng.choice(["rebind.example", "", "[::1", "a" * 300])
    headers = [f"Host: {host if rng.random() < 0.8 else odd_host}"]
    if rng.random() < 0.3:
        headers.append(
            f"Origin: {rng.choice(['http://evil.example', 'null', 'x', 'http://' + host])}"
        )
    if rng.random() < 0.3:
        headers.append(f"Sec-Fetch-Site: {rng.choice(['cross-site', 'same-site', 'none', '?'])}")
    if rng.random() < 0.2:
        headers.append(f"Authorization: {rng.choice(['Bearer', 'Bearer x', 'Basic ???', ''])}")
    if rng.random() < 0.2:
        headers.append("Content-Type: " + rng.choice(["application/json", "text/plain", "x/y"]))
    return headers


def raw_request(rng: random.Random, host: str) -> bytes:
    """One HTTP/1.1 request, well formed or not."""
    if rng.random() < 0.1:  # broken at the HTTP level
        return rng.choice(
            [
                b"\x00\x01\x02garbage\r\n\r\n",
                b"GET /\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
                b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nX: \x01\r\n\r\n",
                b"POST /chat/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"ZZ\r\n",
                b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            ]
        )
    method = rng.choice(METHODS)
    path = rng.choice(ROUTES) + _query(rng)
    body = _json_body(rng) if method in ("POST", "PUT", "PATCH") else b""
    headers = [*_headers(rng, host), f"Content-Length: {len(body)}", "Connection: close"]
    head = f"{method} {path} HTTP/1.1\r\n" + "\r\n".join(headers) + "\r\n\r\n"
    return head.encode("utf-8", "surrogatepass") + body


def ws_target(rng: random.Random, base: str) -> tuple[str, list[str] | None, dict[str, str]]:
    """A handshake: URL, subprotocols, extra headers."""
    session = rng.choice(["fz", "fz-" + str(rng.randrange(9)), "%E2%80%AE", "a" * 200, ".."])
    params = [f"is_audio={rng.choice(['true', 'false', 'maybe', ''])}"]
    if rng.random() < 0.4:
        params.append(
            rng.choice(
                [
                    "voice=Nobody",
                    "voice=Puck",
                    "vad_silence_ms=-5",
                    "vad_sensitivity=loud",
                    "thinking=lots",
                    "proactive=yes",
                    "language=" + quote(_junk_text(rng)[:100], safe="", errors="surrogatepass"),
                ]
            )
        )
    headers = {}
    if rng.random() < 0.15:
        headers["Origin"] = rng.choice(["http://evil.example", "null"])
    protocols = rng.choice([None, [SUBPROTOCOL], ["other"]])
    if rng.random() < 0.35:  # bidi-demo's route, with its own options
        user = rng.choice(["u", "u" + str(rng.randrange(9)), "%E2%80%AE", "c" * 200])
        params.append(rng.choice(["proactivity=true", "affective_dialog=maybe", "x=1"]))
        return f"{base}/ws/{user}/{session}?{'&'.join(params)}", protocols, headers
    return f"{base}/ws/{session}?{'&'.join(params)}", protocols, headers


def ws_frame(rng: random.Random) -> tuple[str | bytes, bool]:
    """A frame and whether to send bytes as a text frame (invalid UTF-8 text)."""
    junk = _junk_text(rng)
    pick = rng.randrange(12)
    if pick == 0:
        return b"\xff\xfe\xfd" + bytes(rng.randrange(256) for _ in range(20)), True
    if pick == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 3000))), False
    if pick == 2:
        return '{"mime_type": "text/plain", "data": ' + junk + "}", False
    if pick == 3:
        return json.dumps(
            {"mime_type": "audio/pcm", "data": rng.choice(["@@@", "AAA", junk])}
        ), False
    if pick == 4:
        mime = rng.choice(["image/png", "", None, 5])
        return json.dumps({"mime_type": mime, "data": "x"}), False
    if pick == 5:
        return json.dumps(
            {"type": rng.choice(["text", "audio", "end", "image", "hello", 7])}
        ), False
    if pick == 6:
        return json.dumps({"type": "text", "text": junk}), False
    if pick == 7:
        return json.dumps({"mime_type": "text/plain", "data": junk}), False
    if pick == 8:
        return junk, False
    if pick == 9:
        return json.dumps([{"mime_type": "text/plain"}] * 3), False
    if pick == 10:
        return json.dumps({"type": "audio", "data": "AAAA" * rng.randint(1, 4000)}), False
    if pick == 11 and rng.random() < 0.5:  # bidi-demo's image and activity messages
        return json.dumps(
            rng.choice(
                [
                    {"type": "image", "data": "/9j/" + "A" * rng.randint(0, 9000)},
                    {"type": "image", "data": junk, "mimeType": "image/jpeg"},
                    {"type": "image", "data": "AAAA", "mimeType": rng.choice(["text/html", 3])},
                    {"type": rng.choice(["activity_start", "activity_end"])},
                ]
            )
        ), False
    return json.dumps({"mime_type": "text/plain", "data": "fuzz says hi"}), False


# ----------------------------------------------------------------------------- clients


async def send_raw(port: int, data: bytes, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(STEP_S):
            line = await reader.readline()  # the status line is enough: then we leave
        match = re.match(rb"HTTP/1\.[01] (\d{3})", line)
        if match:
            tally.status(int(match.group(1)), data[:120].decode("latin-1"))
    except (ConnectionError, TimeoutError):
        pass  # closed without an answer: fine for garbage (and counted as tried)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def fuzz_websocket(base: str, rng: random.Random, tally: Tally) -> None:
    url, protocols, headers = ws_target(rng, base)
    tally.inputs += 1
    try:
        async with connect(
            url,
            subprotocols=protocols,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=STEP_S,
            close_timeout=2,
            max_size=None,
        ) as ws:
            # Read what the server sends, as any client does: one that never reads stalls
            # its own session once the socket's buffers fill (and is closed by the
            # server's keepalive pings), which is not what this test is about.
            reader = asyncio.create_task(_discard(ws))
            for _ in range(FRAMES_PER_CONNECTION):
                frame, as_text = ws_frame(rng)
                tally.inputs += 1
                if isinstance(frame, str):  # may hold a lone surrogate: send its bytes
                    await ws.send(frame.encode("utf-8", "surrogatepass"), text=True)
                else:
                    await ws.send(frame, text=as_text)
            # Whatever happened, the connection still answers a ping or was closed.
            async with asyncio.timeout(STEP_S):
                await (await ws.ping())
            reader.cancel()
            tally.closed(1000, url)
    except ConnectionClosed as closed:
        tally.closed(closed.rcvd.code if closed.rcvd else None, url)
    except InvalidStatus as refused:
        tally.status(refused.response.status_code, url)
    except InvalidHandshake:
        pass  # e.g. a subprotocol the server did not pick: the client's own refusal


async def _discard(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


@contextlib.asynccontextmanager
async def good_session(base: str) -> AsyncIterator[Callable[[str], object]]:
    async with connect(f"{base}/ws/good?is_audio=false", open_timeout=STEP_S) as ws:

        async def ask(text: str) -> str:
            await ws.send(json.dumps({"mime_type": "text/plain", "data": text}))
            return await _seed_reply(ws)

        yield ask


async def _seed_reply(ws: ClientConnection) -> str:
    parts: list[str] = []
    async with asyncio.timeout(STEP_S * 2):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("turn_complete"):
                return "".join(parts)
            if frame.get("mime_type") == "text/plain":
                parts.append(frame["data"])


# ----------------------------------------------------------------------------- the test


def _start_serve(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adkvoice", "serve", "--port", "0", "--sessions", "memory"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=clean_env(),
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"at http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"serve did not start:\n{log.read_text(errors='replace')}")


async def fuzz_worker(worker: int, port: int, tally: Tally) -> None:
    """One of `WORKERS` clients, each with its own seeded stream of inputs."""
    rng = random.Random(SEED + worker)
    base = f"ws://127.0.0.1:{port}"
    http_left, ws_left = HTTP_INPUTS // WORKERS, WS_CONNECTIONS // WORKERS
    while http_left or ws_left:
        if ws_left and (not http_left or rng.random() < ws_left / (http_left + ws_left)):
            await fuzz_websocket(base, rng, tally)
            ws_left -= 1
        else:
            tally.inputs += 1
            await send_raw(port, raw_request(rng, f"127.0.0.1:{port}"), tally)
            http_left -= 1


async def test_every_route_survives_a_seeded_fuzz(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = _start_serve(log)
    tally = Tally()
    answers: list[str] = []
    try:
        async with good_session(f"ws://127.0.0.1:{port}") as ask:
            assert await ask("ping before") == "You said: ping before"  # type: ignore[misc]
            rss_before = _rss_kib(proc.pid)
            log_lines_before = len(log.read_text(errors="replace").splitlines())
            started = time.monotonic()
            fuzzers = asyncio.gather(*(fuzz_worker(i, port, tally) for i in range(WORKERS)))
            while not fuzzers.done():  # the good session talks all through the fuzz
                text = f"still fine {len(answers)}"
                answers.append(await ask(text))  # type: ignore[arg-type]
                assert answers[-1] == f"You said: {text}"
                await asyncio.wait({fuzzers}, timeout=GOOD_TURN_EVERY_S)
            await fuzzers
            elapsed = time.monotonic() - started
            assert await ask("ping after") == "You said: ping after"  # type: ignore[misc]
            await asyncio.sleep(1.0)  # late log lines of the last connections
            rss_after = _rss_kib(proc.pid)
        assert proc.poll() is None, "serve died"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text(errors="replace")
    lines = text.splitlines()[log_lines_before:]
    tracebacks = text.count("Traceback")
    print(
        f"\nfuzz: {tally.inputs} inputs in {elapsed:.1f} s from {WORKERS} clients; good "
        f"session answered {len(answers) + 2} turns; "
        f"HTTP statuses {dict(sorted(tally.statuses.items()))}; "
        f"closes {dict(sorted(tally.closes.items(), key=str))}; log lines {len(lines)} "
        f"({len(lines) / tally.inputs:.2f} per input); tracebacks {tracebacks}; "
        f"serve RSS {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after"
    )
    assert tally.inputs >= 3000
    assert tally.bad == [], tally.bad[:20]
    assert tracebacks == 0, "\n".join(lines[-80:])
    assert 1011 not in tally.closes
    # One access line per HTTP request at most, and a line for few of the rest.
    assert len(lines) / tally.inputs < 1.0
