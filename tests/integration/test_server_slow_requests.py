"""Requests that never finish are closed: half-sent headers, a byte at a time, a body that
never completes, an oversized WebSocket handshake; normal traffic is untouched."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from .server_support import Served, client, expect_close, seed_text, seed_turn, serving

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0  # the server's request_timeout_s in these tests
CLOSED_WITHIN_S = 2.0
UPGRADE = (
    "GET /ws/big?is_audio=false HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
)


@contextlib.asynccontextmanager
async def raw(served: Served) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    port = served.server.port
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await asyncio.wait_for(writer.wait_closed(), 2)


async def closed_after(reader: asyncio.StreamReader, limit_s: float = 5.0) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    start = time.monotonic()
    received = b""
    with contextlib.suppress(ConnectionError, TimeoutError):  # a timeout fails the caller
        async with asyncio.timeout(limit_s):
            while chunk := await reader.read(65536):
                received += chunk
    return time.monotonic() - start, received


async def test_half_sent_requests_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, request_timeout_s=TIMEOUT_S) as served:
        host = f"127.0.0.1:{served.server.port}"

        async def partial_header() -> float:
            async with raw(served) as (reader, writer):
                writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
                elapsed, received = await closed_after(reader)
                assert received == b""
                return elapsed

        async def trickle() -> float:
            async with raw(served) as (reader, writer):
                request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: {'a' * 100}"

                async def drip() -> None:
                    for byte in request.encode():
                        writer.write(bytes([byte]))
                        await asyncio.sleep(0.3)

                dripping = asyncio.create_task(drip())
                try:
                    elapsed, _ = await closed_after(reader)
                finally:
                    dripping.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                        await dripping
                return elapsed

        async def short_body() -> float:
            async with raw(served) as (reader, writer):
                writer.write(
                    (
                        f"POST /chat/stream HTTP/1.1\r\nHost: {host}\r\n"
                        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
                        '{"query": '
                    ).encode()
                )
                elapsed, _ = await closed_after(reader)
                return elapsed

        async def nothing_at_all() -> float:
            async with raw(served) as (reader, _):
                elapsed, _ = await closed_after(reader)
                return elapsed

        elapsed = await asyncio.gather(partial_header(), trickle(), short_body(), nothing_at_all())
        for name, seconds in zip(("partial", "trickle", "body", "silent"), elapsed, strict=True):
            assert TIMEOUT_S * 0.9 <= seconds < CLOSED_WITHIN_S, (name, seconds)

        # A request that completes is served as before, and a kept-alive connection gets
        # a fresh deadline for each request.
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as http:
            for _ in range(2):
                assert (await http.get("/healthz")).status_code == 200
                await asyncio.sleep(TIMEOUT_S * 0.7)
            sent, _ = await seed_turn_ok(served)
            assert sent == "You said: still here"
        # A request offering an upgrade uvicorn does not take (curl --http2 sends h2c) is
        # complete too: a long answer to it (an SSE stream) must not be cut at the deadline.
        async with raw(served) as (reader, writer):
            writer.write(
                (
                    f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, "
                    "HTTP2-Settings\r\nUpgrade: h2c\r\n"
                    "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
                ).encode()
            )
            status = await asyncio.wait_for(reader.readline(), 5)
            assert status.startswith(b"HTTP/1.1 200"), status
            assert len(served.server.guard.pending_requests) == 0


async def seed_turn_ok(served: Served) -> tuple[str, None]:
    async with client(served.ws("normal")) as ws:
        return seed_text(await seed_turn(ws, "still here")), None


async def test_an_oversized_websocket_handshake_is_answered_and_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch, request_timeout_s=TIMEOUT_S) as served:
        host = f"127.0.0.1:{served.server.port}"
        async with raw(served) as (reader, writer):
            # One header line over websockets' 8 KB limit, but within h11's 16 KB.
            writer.write((UPGRADE.format(host=host) + f"X-Big: {'a' * 9000}\r\n\r\n").encode())
            elapsed, received = await closed_after(reader)
        assert elapsed < CLOSED_WITHIN_S
        assert received == b"" or received.startswith(b"HTTP/1.1 4"), received[:80]
        async with raw(served) as (reader, writer):
            # The same handshake that never ends.
            writer.write((UPGRADE.format(host=host) + f"X-Big: {'a' * 9000}").encode())
            elapsed, received = await closed_after(reader)
        assert TIMEOUT_S * 0.9 <= elapsed < CLOSED_WITHIN_S
        assert received == b""
        # A normal session, long after its handshake, is not timed out.
        async with client(served.ws("fine")) as ws:
            assert seed_text(await seed_turn(ws, "one")) == "You said: one"
            await asyncio.sleep(TIMEOUT_S * 1.5)
            assert seed_text(await seed_turn(ws, "two")) == "You said: two"


async def test_invalid_utf8_closes_1007_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        serving(monkeypatch, request_timeout_s=TIMEOUT_S) as served,
        client(served.ws("utf8")) as ws,
    ):
        await ws.send(b'{"mime_type": "text/plain", "data": "\xff\xfe"}', text=True)
        code, _ = await expect_close(ws)
    assert code == 1007
    utf8 = [r for r in caplog.records if "UTF-8" in r.getMessage()]
    assert len(utf8) == 1, [r.getMessage() for r in utf8]
    assert all(r.exc_info is None for r in caplog.records), [
        r.getMessage() for r in caplog.records if r.exc_info
    ]
    assert "Traceback" not in caplog.text


async def test_a_flood_of_half_sent_requests_does_not_starve_a_health_check(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(monkeypatch, max_pending_connections=20) as served:
        host = f"127.0.0.1:{served.server.port}"
        writers: list[asyncio.StreamWriter] = []
        try:
            for _ in range(60):
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", served.server.port), 5
                )
                writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\n".encode())
                writers.append(writer)
            async with httpx.AsyncClient(base_url=served.url, timeout=1) as http:
                assert (await http.get("/healthz")).status_code == 200
            await asyncio.sleep(0.2)
            open_now = len(served.server.guard.pending_requests)
            assert open_now <= 20
        finally:
            for writer in writers:
                writer.close()
    guard_lines = [r for r in caplog.records if "did not finish their request" in r.getMessage()]
    assert 1 <= len(guard_lines) <= 2  # the first close, and the count at shutdown
    assert "oldest of too many" in guard_lines[0].getMessage()
    assert "Host:" not in caplog.text  # nothing of the requests themselves
