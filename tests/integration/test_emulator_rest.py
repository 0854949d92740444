"""The emulator's REST endpoint (`:streamGenerateContent?alt=sse`, `:generateContent`),
driven by google-genai's own client and by ADK `run_async` with StreamingMode.SSE."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.adk.events import Event
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import errors, types

from .emulator_support import running_emulator
from .server_support import Clock, make_agent

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.0-flash-live-001", "my-model"])
async def test_genai_stream_any_model(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        stream = await client.aio.models.generate_content_stream(
            model=model, contents="repeat after me please"
        )
        chunks = [chunk async for chunk in stream]
        assert len(chunks) > 1
        assert "".join(c.text or "" for c in chunks) == "You said: repeat after me please"
        last = chunks[-1]
        assert last.candidates
        assert last.candidates[0].finish_reason == types.FinishReason.STOP
        assert last.usage_metadata
        assert last.usage_metadata.total_token_count
        assert last.model_version == model
        whole = await client.aio.models.generate_content(model=model, contents="once more")
        assert whole.text == "You said: once more"
    assert emu.stats.rest_requests == 2


async def test_genai_function_call_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch):
        client = genai.Client()
        tool = types.Tool(
            function_declarations=[types.FunctionDeclaration(name="get_current_time")]
        )
        config = types.GenerateContentConfig(
            tools=[tool],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        question = types.Content(role="user", parts=[types.Part(text="what time is it?")])
        first = await client.aio.models.generate_content(
            model="m", contents=[question], config=config
        )
        calls = first.function_calls or []
        assert [c.name for c in calls] == ["get_current_time"]
        answer = types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_current_time", response={"time": "10:42"}
                    )
                )
            ],
        )
        model_turn = first.candidates[0].content if first.candidates else None
        assert model_turn is not None
        stream = await client.aio.models.generate_content_stream(
            model="m", contents=[question, model_turn, answer], config=config
        )
        text = "".join([c.text or "" async for c in stream])
        assert text == "It is 10:42."


async def test_adk_run_async_sse_with_a_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        clock = Clock()
        loaded = make_agent(clock=clock)
        assert loaded.agent is not None
        runner = Runner(
            app_name="rest",
            agent=loaded.agent,
            session_service=InMemorySessionService(),
            auto_create_session=True,
        )
        events: list[Event] = []
        async for event in runner.run_async(
            user_id="u",
            session_id="s",
            new_message=types.Content(role="user", parts=[types.Part(text="what time is it?")]),
            run_config=RunConfig(streaming_mode=StreamingMode.SSE),
        ):
            events.append(event)
        partial = "".join(
            p.text or "" for e in events if e.partial and e.content for p in e.content.parts or []
        )
        assert partial == "It is 10:42."
        assert any(e.get_function_responses() for e in events)
    assert clock.calls == 1
    assert emu.stats.rest_tool_calls == 1


async def test_rest_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        emu.faults.close_mid_reply()
        client = genai.Client()
        with pytest.raises(errors.APIError) as failed:
            await client.aio.models.generate_content(model="m", contents="hello")
        assert failed.value.code == 500
        async with httpx.AsyncClient(
            base_url=emu.base_url, verify=emu.client_ssl_context()
        ) as http:
            url = "/v1beta/models/m:generateContent"
            bad = await http.post(url, content=b"{nope")
            assert bad.status_code == 400
            assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
            empty = await http.post(url, json={"contents": []})
            assert empty.status_code == 400
            unknown = await http.post("/v1beta/models/m:countTokens", json={})
            assert unknown.status_code == 404
            assert "streamGenerateContent" in unknown.json()["error"]["message"]
        assert emu.stats.rest_errors == 4
