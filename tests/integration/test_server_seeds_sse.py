"""`GET /events/{id}` + `POST /send/{id}`: the seeds' SSE sample, end to end through the
real ADK and the emulator."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from adkvoice.server import seeds_sse

from .emulator_support import STEP_TIMEOUT_S, chunks, silence_16k, utterance_16k, wait_until
from .server_support import SEED_DONE, Served, serving

pytestmark = pytest.mark.integration


class Stream:
    """An open /events response, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def turn(self) -> list[str]:
        """`data:` payloads up to and including the seeds' turn_complete (bounded)."""
        data: list[str] = []
        async with asyncio.timeout(STEP_TIMEOUT_S):
            async for line in self.lines:
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("data: "):
                    data.append(line.removeprefix("data: "))
                    if data[-1] == SEED_DONE:
                        return data
                elif line:
                    raise AssertionError(f"not an SSE line: {line!r}")
        raise AssertionError("the stream ended before turn_complete")


@asynccontextmanager
async def events(
    http: httpx.AsyncClient, session_id: str, *, audio: bool = False, **params: str
) -> AsyncIterator[Stream]:
    query = {"is_audio": "true" if audio else "false", **params}
    async with http.stream("GET", f"/events/{session_id}", params=query) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        yield Stream(response)


def by_mime(data: list[str], mime: str) -> list[Any]:
    return [obj["data"] for d in data if (obj := json.loads(d)).get("mime_type") == mime]


async def wait_inactive(served: Served) -> None:
    await wait_until(lambda: served.server.hub.active == 0)


async def send_text(
    http: httpx.AsyncClient, session_id: str, text: str, **kw: Any
) -> httpx.Response:
    return await http.post(
        f"/send/{session_id}", json={"mime_type": "text/plain", "data": text}, **kw
    )


async def test_typed_turns_stream_back(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "70070018") as stream,
    ):
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-cache"
        assert served.server.hub.active == 1
        response = await send_text(http, "70070018", "my name is Ada")
        assert (response.status_code, response.json()) == (200, {"status": "sent"})
        data = await stream.turn()
        # Exactly the seeds' messages: partial text chunks, then the turn flags.
        assert "".join(by_mime(data, "text/plain")) == "You said: my name is Ada"
        for item in data[:-1]:
            assert list(json.loads(item)) == ["mime_type", "data"]
        await send_text(http, "70070018", "what did I say?")
        data = await stream.turn()
        assert "".join(by_mime(data, "text/plain")) == "Before that you said: my name is Ada"


async def test_audio_mode_speaks_and_hears(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, audio_burst_s=30) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "42", audio=True) as stream,
    ):
        await send_text(http, "42", "hello")
        data = await stream.turn()
        audio = b"".join(base64.b64decode(d) for d in by_mime(data, "audio/pcm"))
        assert len(audio) > 24_000  # over half a second of 24 kHz speech
        assert len(audio) % 2 == 0
        # Microphone audio as the page sends it: one POST per chunk.
        speech = silence_16k(0.2) + await utterance_16k() + silence_16k(0.8)
        for piece in chunks(speech, ms=200):
            body = {"mime_type": "audio/pcm", "data": base64.b64encode(piece).decode()}
            response = await http.post("/send/42", json=body)
            assert response.json() == {"status": "sent"}
        data = await stream.turn()
        assert by_mime(data, "audio/pcm")
        assert "".join(by_mime(data, "text/plain")).startswith("You said: [speech ")
    assert served.emulator.stats.utterances == 1


async def test_send_without_a_stream_is_404(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        response = await send_text(http, "nobody", "hello")
        assert (response.status_code, response.json()) == (404, {"error": "Session not found"})
        async with events(http, "sometimes") as stream:
            await send_text(http, "sometimes", "ping")
            await stream.turn()
        await wait_inactive(served)
        response = await send_text(http, "sometimes", "hello")
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json"}, 400),
        ({"content": b"\xff\xfe"}, 400),
        ({"json": ["text/plain"]}, 400),
        ({"json": {"mime_type": "image/png", "data": "x"}}, 400),
        ({"json": {"mime_type": "audio/pcm", "data": "!!"}}, 400),
        ({"json": {"type": "end"}}, 400),
        ({"json": {"mime_type": "text/plain", "data": "x" * 101}}, 413),
        ({"content": b"x" * 5000}, 413),
    ],
    ids=["bad json", "not utf-8", "not an object", "mime", "base64", "typed", "long", "big"],
)
async def test_bad_posts(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], status: int
) -> None:
    async with (
        serving(monkeypatch, max_text_chars=100, max_frame_bytes=4096) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "bad") as stream,
    ):
        response = await http.post("/send/bad", **kwargs)
        assert response.status_code == status
        assert isinstance(response.json()["error"], str)
        await send_text(http, "bad", "still here")  # the stream is unharmed
        assert "".join(by_mime(await stream.turn(), "text/plain")) == "You said: still here"


async def test_bad_stream_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        for url in ("/events/a%20b", "/events/x?is_audio=maybe", "/events/x?vad_sensitivity=9"):
            response = await http.get(url)
            assert response.status_code == 400, url
            assert response.json()["error"]
        assert (await send_text(http, "..%20x", "hi")).status_code == 400
        assert served.server.hub.active == 0


async def test_typed_turns_are_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typed turns POSTed without waiting for answers get the burst, then 429."""
    async with (
        serving(
            monkeypatch,
            text_turn_burst=2,
            text_turns_per_minute=6,
            emulator={"think_time_s": 1.0},  # no answer refills the burst meanwhile
        ) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "flood"),
    ):
        sent = [send_text(http, "flood", f"flood {i}") for i in range(6)]
        responses = await asyncio.gather(*sent)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 429, 429, 429, 429]
        refused = next(r for r in responses if r.status_code == 429)
        assert "at most 6 a minute" in refused.json()["error"]


async def test_a_token_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, token="s3cret") as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        assert (await http.get("/events/t")).status_code == 401
        assert (await http.get("/events/t", params={"token": "nope"})).status_code == 401
        assert (await send_text(http, "t", "hi")).status_code == 401
        evil = {"Origin": "https://evil.example", "Authorization": "Bearer s3cret"}
        assert (await send_text(http, "t", "hi", headers=evil)).status_code == 403
        async with events(http, "t", token="s3cret") as stream:  # as an EventSource can
            response = await send_text(http, "t", "ping", params={"token": "s3cret"})
            assert response.status_code == 200
            assert "".join(by_mime(await stream.turn(), "text/plain")) == "You said: ping"
        assert served.server.hub.active <= 1


async def test_a_newer_stream_takes_the_conversation_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page's Start Audio: the text stream is closed and an audio one opened with
    the same id; the conversation goes on in the newer one."""
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        async with events(http, "4242") as first:
            await send_text(http, "4242", "my name is Ada")
            await first.turn()
            async with events(http, "4242", audio=True) as second:
                assert served.server.hub.active == 1
                await send_text(http, "4242", "what did I say?")
                data = await second.turn()
                assert by_mime(data, "audio/pcm")
                assert "".join(by_mime(data, "text/plain")).endswith("you said: my name is Ada")
                rest = [line async for line in first.lines if line.startswith("data:")]
                assert rest == []  # the older stream ended, and said nothing more
        await wait_inactive(served)


async def test_keepalive_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seeds_sse, "KEEPALIVE_S", 0.1)
    async with (
        serving(monkeypatch, emulator={"think_time_s": 0.5}) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "quiet") as stream,
    ):
        await send_text(http, "quiet", "ping")
        await stream.turn()
        assert ": keepalive" in stream.comments


async def test_a_client_leaving_mid_answer_ends_the_session(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        serving(monkeypatch, emulator={"text_chunk_delay_s": 0.1}) as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        async with events(http, "leaver") as stream:
            await send_text(http, "leaver", "hello")
            async with asyncio.timeout(STEP_TIMEOUT_S):
                async for line in stream.lines:
                    if line.startswith("data: "):
                        break  # the answer has begun; go away
        await wait_inactive(served)
        assert (await send_text(http, "leaver", "hi")).status_code == 404
        async with events(http, "leaver") as stream:  # the conversation goes on
            await send_text(http, "leaver", "ping")
            # The unanswered "hello" may be answered first: run_live replays the history.
            texts = ["".join(by_mime(await stream.turn(), "text/plain"))]
            if texts[0] != "You said: ping":
                texts.append("".join(by_mime(await stream.turn(), "text/plain")))
            assert texts[-1] == "You said: ping", texts
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_shutdown_lets_the_turn_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, emulator={"text_chunk_delay_s": 0.05}) as served,
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "busy") as stream,
    ):
        await send_text(http, "busy", "hello")
        stopping = asyncio.create_task(served.server.shutdown())
        await asyncio.sleep(0.05)
        assert (await http.get("/events/late")).status_code == 503
        data = await stream.turn()
        assert "".join(by_mime(data, "text/plain")).endswith("and I'll repeat it.")
        rest = [line async for line in stream.lines if line.startswith("data:")]
        assert rest == []  # then the stream ends
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await stopping


async def test_clients_that_leave_at_once_leave_nothing_behind(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Streams dropped while the agent starts, and a page that reopens one id quickly."""
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        for _ in range(5):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await http.get("/events/hasty")  # gives up before the headers
        for _ in range(3):
            async with events(http, "hasty"):
                pass
        await wait_inactive(served)
        async with events(http, "hasty") as stream:
            await send_text(http, "hasty", "ping")
            assert "You said: ping" in "".join(by_mime(await stream.turn(), "text/plain"))
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
