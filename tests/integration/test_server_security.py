"""Token, Origin and limits, against a running server."""

from __future__ import annotations

import asyncio
import contextlib
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


async def test_other_sites_cannot_drive_the_agent_without_an_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An `<img src=…/chat/stream?query=…>` or a no-cors fetch sends no Origin, but the
    browser says which site sent it (Sec-Fetch-Site): the API refuses other sites."""
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        for site in ("cross-site", "same-site"):
            refused = await http.get(
                "/chat/stream", params={"query": "run me"}, headers={"Sec-Fetch-Site": site}
            )
            assert refused.status_code == 403
            assert "other sites" in refused.json()["detail"]
        async with client(
            served.ws("x"), additional_headers={"Sec-Fetch-Site": "cross-site"}
        ) as ws:
            code, reason = await expect_close(ws)
            assert (code, reason) == (1008, "requests sent by other sites may not use this server")
        assert served.emulator.stats.turns_answered == 0
        # The page itself may be opened from a link on any site; its own requests pass.
        page = await http.get("/", headers={"Sec-Fetch-Site": "cross-site"})
        assert page.status_code == 200
        _, data = await sse_lines(
            http, "GET", "/chat/stream?query=mine", headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert data[-1] == "[DONE]"


async def test_a_rebound_host_name_is_refused_without_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the attacker's name resolves to 127.0.0.1, and its page's Origin
    matches its Host. Only loopback names (and --allow-host ones) are answered."""
    rebound = {"Host": "rebind.example:8000", "Origin": "http://rebind.example:8000"}
    async with serving(monkeypatch, allowed_hosts=("voice.example.com",)) as served:
        async with httpx.AsyncClient(base_url=served.url) as http:
            for path in ("/", "/healthz", "/static/app.js", "/chat/stream?query=hi"):
                refused = await http.get(path, headers=rebound)
                assert refused.status_code == 403, path
                assert "--allow-host" in refused.text
            listed = await http.get("/", headers={"Host": "voice.example.com"})
            assert listed.status_code == 200
            for host in ("localhost:1234", "127.0.0.1", "[::1]:80", "app.localhost"):
                assert (await http.get("/healthz", headers={"Host": host})).status_code == 200
        # The handshake names rebind.example; the socket goes to the server's address.
        port = served.server.port
        url = served.ws("r").replace(f"127.0.0.1:{port}", f"rebind.example:{port}")
        async with client(url, host="127.0.0.1", port=port) as ws:
            code, reason = await expect_close(ws)
            assert (code, reason) == (1008, "this server does not answer to that host name")
    # With a token any name is answered: the token is the guard.
    async with (
        serving(monkeypatch, token=TOKEN) as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        assert (await http.get("/healthz", headers={"Host": "rebind.example"})).status_code == 200


async def test_every_response_carries_the_security_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        responses = [
            await http.get("/"),
            await http.get("/static/app.js"),
            await http.get("/healthz"),
            await http.get("/no-such-page"),
            await http.post("/chat/stream", content=b"{"),
            await http.get("/", headers={"Host": "elsewhere.example"}),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 400, 403]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"


async def test_typed_turns_sent_without_waiting_are_rate_limited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200 typed frames in one go start a handful of model turns, not 200; a client that
    waits for each answer is never limited."""
    async with serving(monkeypatch, text_turn_burst=3, text_turns_per_minute=6) as served:
        async with client(served.ws("flood"), extended=True) as ws:
            await ws.recv()  # hello
            for i in range(200):
                await ws.send(json.dumps({"type": "text", "text": f"flood {i}"}))
            error = await expect_error(ws, "text_rate_exceeded")
            assert "at most 6 a minute" in error["message"]
            with contextlib.suppress(TimeoutError):  # until the answers have all come
                while True:
                    await asyncio.wait_for(ws.recv(), timeout=1.5)
        texts = served.emulator.stats.user_texts
        # The burst of 3, and on a slow machine a refill or two when an answer lands
        # while the flood is still being read.
        assert 1 <= sum("flood" in t for t in texts) <= 9, texts
        async with client(served.ws("patient")) as ws:
            for i in range(8):  # more than the burst, each after its answer
                assert seed_text(await seed_turn(ws, f"turn {i}")) == f"You said: turn {i}"


async def test_json_numbers_too_long_to_convert_are_a_client_fault(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Python refuses to convert integers over 4,300 digits (a ValueError, not a
    JSONDecodeError): that is the client's bad JSON, never an internal error."""
    huge = "9" * 5000
    async with serving(monkeypatch) as served:
        async with client(served.ws("big")) as ws:
            await ws.send('{"mime_type": "text/plain", "data": ' + huge + "}")
            error = await expect_error(ws, "invalid_json")
            assert "4300" in error["message"] or "digits" in error["message"]
            assert seed_text(await seed_turn(ws, "still here")) == "You said: still here"
        async with httpx.AsyncClient(base_url=served.url) as http:
            response = await http.post(
                "/chat/stream",
                content=b'{"query": ' + huge.encode() + b"}",
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
