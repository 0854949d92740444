"""Health, readiness, graceful shutdown, the `serve` entry point, TLS and start failures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
from pathlib import Path

import httpx
import pytest

from adkvoice.emulator.certs import write_cert_files
from adkvoice.errors import ConfigError
from adkvoice.server import AgentServer, ServeOptions, serve

from .emulator_support import STEP_TIMEOUT_S, running_emulator
from .server_support import (
    client,
    expect_close,
    ext_turn,
    make_agent,
    recv_until,
    seed_text,
    seed_turn,
    serving,
)

pytestmark = pytest.mark.integration


async def test_health_and_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        health = await http.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "sessions": 0, "max_sessions": 32}
        page = await http.get("/")
        assert page.status_code == 200
        assert 'id="startAudioButton"' in page.text
        for asset in ("app.js", "audio.js", "pcm-player-processor.js", "pcm-recorder-processor.js"):
            response = await http.get(f"/static/{asset}")
            assert response.status_code == 200
            assert "javascript" in response.headers["content-type"]


async def test_a_named_instance_says_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a load balancer, /healthz and /readyz tell which instance answered."""
    monkeypatch.setenv("ADKVOICE_INSTANCE", "serve-2")
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok", "instance": "serve-2"}
        assert (await http.get("/readyz")).json()["instance"] == "serve-2"


async def test_graceful_shutdown_finishes_the_turn_then_closes_1001(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with (
        serving(monkeypatch, emulator={"text_chunk_delay_s": 0.05}) as served,
        client(served.ws("busy"), extended=True) as ws,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "text", "text": "hello"}))
        await recv_until(ws, lambda f: isinstance(f, str) and '"agent_text"' in f)
        stopping = asyncio.create_task(served.server.shutdown())
        await asyncio.sleep(0.05)
        ready = await http.get("/readyz")
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")
        async with client(served.ws("late")) as late:
            code, _ = await expect_close(late)
            assert code == 1001
        sse = await http.post("/chat/stream", json={"query": "hi"})
        assert sse.status_code == 503
        frames = await recv_until(ws, lambda f: f == '{"type": "turn_complete"}')
        text = "".join(
            json.loads(f)["text"]
            for f in frames
            if isinstance(f, str) and '"partial": true' in f and '"agent_text"' in f
        )
        assert text.endswith("and I'll repeat it.")  # the turn was not cut off
        code, reason = await expect_close(ws)
        assert code == 1001
        assert "shutting down" in reason
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await stopping


async def test_drain_timeout_bounds_a_long_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, drain_timeout_s=0.2, emulator={"think_time_s": 30}) as served,
        client(served.ws("slow")) as ws,
    ):
        await ws.send(json.dumps({"mime_type": "text/plain", "data": "take your time"}))
        await asyncio.sleep(0.1)
        async with asyncio.timeout(5):
            await served.server.shutdown()
        code, _ = await expect_close(ws)
        assert code == 1001


async def test_serve_runs_until_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch):
        ready: asyncio.Queue[str] = asyncio.Queue()
        options = ServeOptions(port=0, handle_signals=True, log_level="warning")
        task = asyncio.create_task(serve(make_agent(), options, on_ready=ready.put_nowait))
        url = await asyncio.wait_for(ready.get(), STEP_TIMEOUT_S)
        ws_url = "ws" + url.removeprefix("http")
        async with client(f"{ws_url}/ws/sig?is_audio=false") as ws:
            assert seed_text(await seed_turn(ws, "knock knock")) == "You said: knock knock"
            os.kill(os.getpid(), signal.SIGTERM)
            code, _ = await expect_close(ws)
            assert code == 1001
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await task  # returns normally; the signal is not re-raised


async def test_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    certs = write_cert_files(tmp_path)
    trust = ssl.create_default_context(cafile=str(certs.ca))
    async with serving(monkeypatch, certfile=certs.cert, keyfile=certs.key) as served:
        assert served.url.startswith("https://")
        async with client(served.ws("tls"), ssl=trust, extended=True) as ws:
            await ws.recv()
            frames = await ext_turn(ws, "over tls")
            assert '"You said: over tls"' in "".join(str(f) for f in frames)
        async with httpx.AsyncClient(base_url=served.url, verify=trust) as http:
            assert (await http.get("/healthz")).status_code == 200


def test_start_failures_are_config_errors(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    with pytest.raises(ConfigError, match="both --certfile and --keyfile"):
        ServeOptions(certfile=key).validate()
    with pytest.raises(ConfigError, match="does not exist"):
        ServeOptions(certfile=tmp_path / "nope.pem", keyfile=key).validate()
    with pytest.raises(ConfigError, match="log-level"):
        ServeOptions(log_level="loud").validate()


async def test_bad_tls_files_and_busy_port(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot use --certfile"):
        await AgentServer(make_agent(), ServeOptions(port=0, certfile=bad, keyfile=bad)).start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="in use"):
            await AgentServer(make_agent(), ServeOptions(port=port)).start()
