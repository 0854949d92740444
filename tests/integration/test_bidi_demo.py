"""`chat --url ws://HOST/ws/USER_ID/SESSION_ID` against a server doing what ADK's bidi-demo
does (`bidi_demo_server`), its agent running against the in-process emulator.

The demo picks the reply modality from its model's name: a half-cascade model answers in
text, a native-audio one in speech, whose transcript a text client shows as the reply.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from adkvoice import events as ev
from adkvoice.backends.endpoints import BidiDemoEndpoint
from adkvoice.backends.recovery import Backoff
from adkvoice.backends.remote import RemoteBackend
from adkvoice.errors import BackendError
from tests.integration.bidi_demo_server import bidi_demo_server
from tests.integration.conftest import clean_env
from tests.integration.emulator_support import (
    MODEL_2X,
    MODEL_3X,
    STEP_TIMEOUT_S,
    running_emulator,
)
from tests.integration.server_support import Clock, make_agent

pytestmark = pytest.mark.integration

NATIVE_AUDIO = "gemini-2.5-flash-native-audio-latest"


@asynccontextmanager
async def demo(monkeypatch: pytest.MonkeyPatch, model: str) -> AsyncIterator[tuple[str, Clock]]:
    """A bidi-demo server for the test agent on `model`; its ws:// base and the agent's tool."""
    async with running_emulator(monkeypatch):
        clock = Clock()
        agent = make_agent(model, clock).agent
        assert agent is not None
        async with bidi_demo_server(agent) as base:
            yield base, clock


async def one_answer(backend: RemoteBackend, events: AsyncIterator[ev.Event]) -> list[ev.Event]:
    """The events up to and including the next AnswerComplete (bounded)."""
    seen: list[ev.Event] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        async for event in events:
            seen.append(event)
            if isinstance(event, ev.AnswerComplete):
                return seen
    raise AssertionError(f"the events ended first: {seen}")


def reply_text(events: list[ev.Event]) -> str:
    text = ev.SegmentText()
    return "".join(
        text.feed(e.text, final=not e.partial) or "" for e in events if isinstance(e, ev.AgentText)
    )


@pytest.mark.parametrize(
    ("model", "modality"),
    [(MODEL_2X, "TEXT"), (NATIVE_AUDIO, "TEXT"), (MODEL_2X, "AUDIO")],
    ids=["half-cascade", "native-audio-as-text", "half-cascade-asked-for-speech"],
)
async def test_typed_turns_and_a_tool(
    monkeypatch: pytest.MonkeyPatch, model: str, modality: ev.Modality
) -> None:
    """Text either way: a half-cascade server writes it (even to a client that wanted
    speech: the server decides), a native-audio one speaks and its transcript is the text."""
    async with demo(monkeypatch, model) as (base, clock):
        backend = RemoteBackend(BidiDemoEndpoint(f"{base}/ws/u1/s1", modality=modality))
        await backend.start()
        try:
            events = backend.events()
            await backend.send_text("my name is Ada")
            first = await one_answer(backend, events)
            assert reply_text(first) == "You said: my name is Ada", first
            await backend.send_text("what time is it?")
            second = await one_answer(backend, events)
        finally:
            await backend.close()
    assert reply_text(second) == "It is 10:42.", second
    (call,) = [e for e in second if isinstance(e, ev.ToolCall)]
    (result,) = [e for e in second if isinstance(e, ev.ToolResult)]
    assert (call.name, result.call_id, result.response) == (
        "get_current_time",
        call.call_id,
        {"time": "10:42"},
    )
    assert clock.calls == 1
    if modality == "TEXT":
        assert not any(isinstance(e, ev.AgentAudio) for e in first + second)


@pytest.mark.parametrize(
    ("model", "first_reply"),
    [(MODEL_2X, "You said: my name is Ada"), (NATIVE_AUDIO, "You said: my name is Ada")],
    ids=["half-cascade", "native-audio"],
)
async def test_chat_text_cli_answers_two_piped_lines(
    monkeypatch: pytest.MonkeyPatch, model: str, first_reply: str
) -> None:
    async with demo(monkeypatch, model) as (base, _clock):
        url = f"{base}/ws/u1/s1"
        chat = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "adkvoice",
            "chat",
            "--text",
            "--url",
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=clean_env(),
        )
        try:
            async with asyncio.timeout(60):
                out, err = await chat.communicate(b"my name is Ada\nwhat time is it?\n")
        finally:
            if chat.returncode is None:
                chat.kill()
                await chat.wait()
    stderr = err.decode()
    assert chat.returncode == 0, stderr
    assert out.decode().splitlines() == [first_reply, "It is 10:42."], stderr
    assert f"connected to {url} · bidi-demo · user u1 · session s1" in stderr
    assert "its transcript is shown as the text reply" in stderr


async def test_a_demo_whose_model_refuses_its_modality_is_one_line_not_a_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo asks a 3.x model (not "native-audio" by name) for TEXT, which it refuses:
    the demo accepts each connection and drops it before sending anything. The client
    stops after a few such drops, in one line, instead of reconnecting for ever."""
    async with demo(monkeypatch, MODEL_3X) as (base, _clock):
        backend = RemoteBackend(
            BidiDemoEndpoint(f"{base}/ws/u1/s1", modality="TEXT"),
            backoff=Backoff(first_s=0.05, factor=1, max_s=0.05, jitter=0, attempts=5),
        )
        await backend.start()
        try:
            await backend.send_text("hello")
            with pytest.raises(BackendError, match="dropped 3 connections in a row"):
                await asyncio.wait_for(_drain(backend.events()), timeout=STEP_TIMEOUT_S)
        finally:
            await backend.close()


async def _drain(events: AsyncIterator[ev.Event]) -> None:
    async for _event in events:
        pass
