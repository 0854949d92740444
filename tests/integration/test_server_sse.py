"""`POST /chat/stream` and `GET /chat/stream?query=`: seed 001's Server-Sent Events, through
ADK `run_async` (StreamingMode.SSE) and the emulator's REST endpoint."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from adkvoice.wire.chat_sse import SseDone, SseError, decode_sse_data

from .server_support import client, seed_turn, serving, sse_lines

pytestmark = pytest.mark.integration


def text_of(data: list[str]) -> str:
    decoded = [decode_sse_data(d) for d in data]
    assert decoded[-1] == SseDone()
    assert not any(isinstance(d, SseError) for d in decoded)
    return "".join(d for d in decoded if isinstance(d, str))


async def test_post_streams_chunks_then_done(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        async with http.stream("POST", "/chat/stream", json={"query": "hello"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["x-session-id"]
            body = (await response.aread()).decode()
        events = body.split("\n\n")
        assert events[-1] == ""
        assert events[-2] == "data: [DONE]"
        chunks = events[:-2]
        assert len(chunks) > 1  # streamed, not one blob
        for chunk in chunks:
            assert chunk.startswith('data: {"text": "')  # seed 001's json.dumps({'text': ...})
        text = "".join(json.loads(c.removeprefix("data: "))["text"] for c in chunks)
        assert text.startswith("Hello! I'm the adkvoice emulator")
        assert text.count("Hello!") == 1  # the aggregated final text is not sent again


async def test_get_for_event_source_and_seed_query_param(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        _, data = await sse_lines(http, "GET", "/chat/stream", params={"query": "ping pong"})
        assert text_of(data) == "You said: ping pong"
        # The tutorial's endpoint reads `query` as a query parameter, on POST too.
        _, data = await sse_lines(http, "POST", "/chat/stream", params={"query": "tick tock"})
        assert text_of(data) == "You said: tick tock"


async def test_session_continues_and_tools_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        body = {"query": "my name is Ada", "session_id": "sse1"}
        response, data = await sse_lines(http, "POST", "/chat/stream", json=body)
        assert response.headers["x-session-id"] == "sse1"
        assert text_of(data) == "You said: my name is Ada"
        body = {"query": "what time is it?", "session_id": "sse1"}
        _, data = await sse_lines(http, "POST", "/chat/stream", json=body)
        assert text_of(data) == "It is 10:42."
        body = {"text": "what did I say?", "session_id": "sse1"}
        _, data = await sse_lines(http, "POST", "/chat/stream", json=body)
        assert text_of(data) == "Before that you said: what time is it?"
    assert served.clock.calls == 1
    assert served.emulator.stats.rest_tool_calls == 1


async def test_sse_continues_a_websocket_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served:
        async with client(served.ws("shared")) as ws:
            await seed_turn(ws, "my name is Ada")
        async with httpx.AsyncClient(base_url=served.url) as http:
            body = {"query": "what did I say?", "session_id": "shared"}
            _, data = await sse_lines(http, "POST", "/chat/stream", json=body)
        assert text_of(data) == "Before that you said: my name is Ada"


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {}}, 400),
        ({"json": {"query": "   "}}, 400),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"json": ["query"]}, 400),
        ({"json": {"query": "hi", "session_id": 5}}, 400),
        ({"json": {"query": "hi", "session_id": "../etc"}}, 400),
        ({"json": {"query": "x" * 101}}, 413),
        ({"content": b"x" * 5000, "headers": {"content-type": "application/json"}}, 413),
    ],
    ids=["no query", "blank", "bad json", "not an object", "id type", "id chars", "long", "big"],
)
async def test_bad_requests(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], status: int
) -> None:
    async with (
        serving(monkeypatch, max_text_chars=100, max_frame_bytes=4096) as served,
        httpx.AsyncClient(base_url=served.url) as http,
    ):
        response = await http.post("/chat/stream", **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status
        assert response.json()["detail"]


async def test_model_failure_is_an_error_event_then_done(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        served.emulator.faults.close_mid_reply()  # the REST endpoint answers 500
        _, data = await sse_lines(http, "POST", "/chat/stream", json={"query": "hello"})
        decoded = [decode_sse_data(d) for d in data]
        assert decoded == [SseError("the agent failed; try again"), SseDone()]
        _, data = await sse_lines(http, "POST", "/chat/stream", json={"query": "ping again"})
        assert text_of(data) == "You said: ping again"
        assert served.server.hub.sse_streams == 0


async def test_concurrent_turns_of_one_session_take_turns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch) as served, httpx.AsyncClient(base_url=served.url) as http:
        bodies = [{"query": f"line {n}", "session_id": "busy"} for n in range(3)]
        results = await asyncio.gather(
            *(sse_lines(http, "POST", "/chat/stream", json=body) for body in bodies)
        )
        texts = sorted(text_of(data) for _, data in results)
        assert texts == [f"You said: line {n}" for n in range(3)]
        assert served.server.app.state.sse._locks == {}
        assert served.server.hub.sse_streams == 0
