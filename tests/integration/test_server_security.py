"""Token, Origin and limits, against a running server."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.typing import Origin

from adkvoice.agents.loading import LoadedAgent
from adkvoice.errors import ConfigError
from adkvoice.server import AgentServer, ServeOptions

from .emulator_support import silence_16k
from .server_support import (
    client,
    expect_close,
    expect_error,
    make_agent,
    seed_text,
    seed_turn,
    serving,
    sse_lines,
)

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


def loaded() -> LoadedAgent:
    return make_agent()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_non_loopback_bind_needs_a_token(host: str) -> None:
    with pytest.raises(ConfigError, match="without a token"):
        AgentServer(loaded(), ServeOptions(host=host))
    ServeOptions(host=host, token=TOKEN).validate()  # fine with one


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.8.9.10"])
def test_loopback_bind_needs_no_token(host: str) -> None:
    ServeOptions(host=host).validate()


async def test_token_checked_on_ws_sse_and_http(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, token=TOKEN) as served:
        for query in ({}, {"token": "wrong"}):
            async with client(served.ws("t", **query)) as ws:
                code, reason = await expect_close(ws)
                assert code == 1008
                assert "token" in reason
        async with client(served.ws("t", token=TOKEN)) as ws:
            assert seed_text(await seed_turn(ws, "knock knock")) == "You said: knock knock"
        async with client(
            served.ws("t"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
        ) as ws:
            assert seed_text(await seed_turn(ws, "again")) == "You said: again"
        async with httpx.AsyncClient(base_url=served.url) as http:
            for headers, params in (
                ({}, {}),
                ({"Authorization": "Bearer wrong"}, {}),
                ({}, {"token": "wrong"}),
            ):
                response = await http.post(
                    "/chat/stream", json={"query": "hi"}, headers=headers, params=params
                )
                assert response.status_code == 401
                assert response.headers["www-authenticate"] == "Bearer"
                get = await http.get("/chat/stream", params={"query": "hi", **params})
                assert get.status_code == 401
            _, data = await sse_lines(
                http,
                "POST",
                "/chat/stream",
                json={"query": "hi"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert data[-1] == "[DONE]"
            _, data = await sse_lines(
                http, "GET", "/chat/stream", params={"query": "hi", "token": TOKEN}
            )
            assert data[-1] == "[DONE]"
            # Health and the page itself stay open (load balancers, the login-free page).
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/")).status_code == 200


async def test_origin_check(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, allowed_origins=("https://app.example.com",)) as served:
        own = Origin(served.url)
        async with client(served.ws("o"), origin=Origin("http://evil.example")) as ws:
            code, reason = await expect_close(ws)
            assert code == 1008
            assert "origin" in reason
        async with client(served.ws("o"), origin=own) as ws:
            assert seed_text(await seed_turn(ws, "mine")) == "You said: mine"
        async with client(served.ws("o"), origin=Origin("https://app.example.com")) as ws:
            assert seed_text(await seed_turn(ws, "listed")) == "You said: listed"
        async with httpx.AsyncClient(base_url=served.url) as http:
            evil = await http.post(
                "/chat/stream", json={"query": "hi"}, headers={"Origin": "http://evil.example"}
            )
            assert evil.status_code == 403
            _, data = await sse_lines(
                http, "POST", "/chat/stream", json={"query": "hi"}, headers={"Origin": own}
            )
            assert data[-1] == "[DONE]"


async def test_too_many_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, max_sessions=2) as served,
        client(served.ws("a")) as a,
        client(served.ws("b")) as b,
    ):
        await seed_turn(a, "one")
        await seed_turn(b, "two")
        async with httpx.AsyncClient(base_url=served.url) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "full"
            sse = await http.post("/chat/stream", json={"query": "hi"})
            assert sse.status_code == 503
        async with client(served.ws("c")) as c:
            code, reason = await expect_close(c)
            assert code == 1013
            assert "too many sessions" in reason
        # Reconnecting an existing session replaces it rather than counting twice.
        async with client(served.ws("a")) as again:
            assert seed_text(await seed_turn(again, "back")) == "You said: back"


async def test_audio_faster_than_real_time_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, audio_burst_s=1.0, audio_rate_slack=1.25) as served,
        client(served.ws("fast", audio=True), extended=True) as ws,
    ):
        await ws.recv()  # hello
        second = silence_16k(1.0)
        for _ in range(5):  # five seconds of audio in one go
            await ws.send(second[:16_000])
            await ws.send(second[16_000:])
        error = await expect_error(ws, "audio_rate_exceeded")
        assert "real time" in error["message"]
        await ws.send(json.dumps({"type": "text", "text": "still here"}))
    # The burst got through; the rest was dropped before it reached the model.
    assert served.emulator.stats.audio_in_bytes <= 32_000 * 1.1
