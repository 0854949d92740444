"""`WS /ws/{id}`: the seeds' protocol and the adkvoice.v1 extension, end to end through the
real ADK and the emulator."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from adkvoice.events import AgentAudio, Transcript, TurnComplete
from adkvoice.wire.adkvoice_v1 import SUBPROTOCOL, decode_server_frame

from .emulator_support import MODEL_3X, chunks, silence_16k, utterance_16k
from .server_support import (
    EXT_DONE,
    SEED_DONE,
    client,
    expect_close,
    ext_turn,
    json_frames,
    recv_until,
    seed_audio,
    seed_text,
    seed_turn,
    serving,
)

pytestmark = pytest.mark.integration


async def spoken_input() -> bytes:
    return silence_16k(0.2) + await utterance_16k() + silence_16k(0.8)


async def test_seed_text_session(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, client(served.ws("70070018")) as ws:
        assert ws.subprotocol is None
        frames = await seed_turn(ws, "my name is Ada")
        # Exactly the seeds' frames: partial text chunks, then the turn flags.
        assert all(isinstance(f, str) for f in frames)
        assert seed_text(frames[:-1]) == "You said: my name is Ada"
        for frame in frames[:-1]:
            assert list(json.loads(frame)) == ["mime_type", "data"]
        assert frames[-1] == SEED_DONE
        frames = await seed_turn(ws, "hello")
        assert seed_text(frames).startswith("Hello! I'm the adkvoice emulator")


async def test_seed_text_tool_call(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, client(served.ws("1")) as ws:
        await ws.send(json.dumps({"mime_type": "text/plain", "data": "what time is it?"}))
        # 2.x models end a model turn after the tool call; the answer is the next turn.
        frames = await recv_until(ws, lambda f: "It is 10:42." in seed_text([f]) or False)
        frames += await seed_turn(ws)
        assert "It is 10:42." in seed_text(frames)
    assert served.clock.calls == 1


async def test_seed_audio_session(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, audio_burst_s=30) as served,
        client(served.ws("42", audio=True)) as ws,
    ):
        for piece in chunks(await spoken_input(), ms=100):
            data = base64.b64encode(piece).decode()
            await ws.send(json.dumps({"mime_type": "audio/pcm", "data": data}))
        frames = await seed_turn(ws)
        audio = seed_audio(frames)
        assert len(audio) > 24_000  # over half a second of 24 kHz speech
        assert len(audio) % 2 == 0
        # The agent's transcript goes out as the seeds sent it: unmarked text/plain.
        assert seed_text(frames).startswith("You said: [speech ")
    assert served.emulator.stats.utterances == 1


async def test_extension_text_session(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch) as served,
        client(served.ws("ext1"), extended=True) as ws,
    ):
        assert ws.subprotocol == SUBPROTOCOL
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        assert hello["modality"] == "TEXT"
        assert hello["resumed"] is False
        await ws.send(json.dumps({"type": "text", "text": "what time is it?"}))
        frames = await recv_until(
            ws, lambda f: isinstance(f, str) and '"It is 10:42."' in f and '"partial": false' in f
        )
        kinds = [f["type"] for f in json_frames(frames)]
        assert "tool_call" in kinds
        assert "tool_result" in kinds
        call = next(f for f in json_frames(frames) if f["type"] == "tool_call")
        result = next(f for f in json_frames(frames) if f["type"] == "tool_result")
        assert call["name"] == result["name"] == "get_current_time"
        assert result["response"] == {"time": "10:42"}
        assert result["id"] == call["id"]
        rest = await ext_turn(ws)
        assert any(f["type"] == "usage" for f in json_frames(frames + rest))


@pytest.mark.parametrize("model", ["gemini-2.0-flash-live-001", MODEL_3X])
async def test_extension_audio_session(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with (
        serving(monkeypatch, model=model, audio_burst_s=30) as served,
        client(served.ws("ext2", audio=True), extended=True) as ws,
    ):
        hello = json.loads(await ws.recv())
        assert hello["modality"] == "AUDIO"
        for piece in chunks(await spoken_input(), ms=100):
            await ws.send(piece)  # binary PCM, no base64
        frames = await recv_until(ws, lambda f: f == EXT_DONE)
        events = [e for f in frames for e in decode_server_frame(f, extended=True, is_audio=True)]
        audio = b"".join(e.pcm for e in events if isinstance(e, AgentAudio))
        assert len(audio) > 24_000
        assert any(isinstance(f, bytes) for f in frames)
        heard = [e for e in events if isinstance(e, Transcript) and e.speaker == "user"]
        said = [e for e in events if isinstance(e, Transcript) and e.speaker == "agent"]
        assert heard
        assert heard[-1].finished
        assert "".join(e.text for e in said if not e.finished).startswith("You said: [speech ")
        assert isinstance(events[-1], TurnComplete)


async def test_reconnect_with_same_session_keeps_history(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served:
        async with client(served.ws("ada")) as ws:
            await seed_turn(ws, "my name is Ada")
        async with client(served.ws("ada"), extended=True) as ws:
            hello = json.loads(await ws.recv())
            assert hello["resumed"] is True
            frames = await ext_turn(ws, "what did I say?")
            final = [f for f in json_frames(frames) if f.get("partial") is False]
            assert final[-1]["text"] == "Before that you said: my name is Ada"
        # A different session id is a different conversation.
        async with client(served.ws("bob")) as ws:
            frames = await seed_turn(ws, "what did I say?")
            assert seed_text(frames) == "Before that you said: nothing yet"


async def test_new_connection_takes_over_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """adkvoice.v1: the older connection is closed, saying why."""
    async with serving(monkeypatch) as served, client(served.ws("same"), extended=True) as first:
        await ext_turn(first, "my name is Ada")
        async with client(served.ws("same"), extended=True) as second:
            code, reason = await expect_close(first)
            assert code == 1000
            assert "replaced" in reason
            await second.recv()  # hello
            frames = await ext_turn(second, "what did I say?")
            final = [f for f in json_frames(frames) if f.get("partial") is False]
            assert final[-1]["text"] == "Before that you said: my name is Ada"


async def test_a_replaced_seeds_socket_stays_open_and_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The seeds sample's page opens a second socket with the same id on Start Audio and
    keeps the first; it reconnects 5 s after any close. The older socket stays open and
    quiet while the newer one carries the conversation, so nothing flaps."""
    async with serving(monkeypatch) as served, client(served.ws("page")) as first:
        await seed_turn(first, "my name is Ada")
        async with client(served.ws("page", audio=True)) as second:
            frames = await seed_turn(second, "what did I say?")
            assert seed_text(frames) == "Before that you said: my name is Ada"
            assert seed_audio(frames)  # the newer socket speaks
            # The older one is still open, and was sent nothing.
            await asyncio.wait_for(await first.ping(), timeout=5)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(first.recv(), timeout=0.5)
            assert served.server.hub.active == 1
        # The newer one closed: the older one goes with it.
        code, reason = await expect_close(first)
        assert (code, reason) == (1000, "the newer connection to this session closed")


async def test_a_message_on_a_quiet_socket_closes_it_saying_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with (
        serving(monkeypatch) as served,
        client(served.ws("two")) as first,
        client(served.ws("two")) as second,
    ):
        await seed_turn(second, "hello from the newer")
        await first.send(json.dumps({"mime_type": "text/plain", "data": "am I still here?"}))
        code, reason = await expect_close(first)
        assert (code, reason) == (1000, "replaced by a newer connection to this session")
        assert seed_text(await seed_turn(second, "and again")) == "You said: and again"
    assert "am I still here?" not in served.emulator.stats.user_texts


async def test_extension_end_closes_after_the_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch) as served,
        client(served.ws("bye"), extended=True) as ws,
    ):
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "text", "text": "my name is Ada"}))
        await ws.send(json.dumps({"type": "end"}))
        await ws.send(json.dumps({"type": "text", "text": "too late"}))
        frames: list[str | bytes] = []
        code, reason = None, ""
        try:
            async with asyncio.timeout(10):
                while True:
                    frames.append(await ws.recv())
        except Exception as exc:  # ConnectionClosed
            rcvd = getattr(exc, "rcvd", None)
            code, reason = (rcvd.code, rcvd.reason) if rcvd else (None, "")
        parsed = json_frames(frames)
        assert any(f["type"] == "error" and f["code"] == "after_end" for f in parsed)
        assert any(f["type"] == "turn_complete" for f in parsed)  # the turn finished first
        assert code == 1000
        assert "ended" in reason


async def test_agent_failure_is_reported_without_internals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A model the Live API refuses: run_live fails, the session ends with 1011.
    async with (
        serving(monkeypatch, model="gemini-2.5-flash") as served,
        client(served.ws("doomed"), extended=True) as ws,
        client(served.ws("doomed-seeds")) as seeds,
    ):
        frames = json_frames(await recv_until(ws, lambda f: '"type": "error"' in str(f)))
        error = frames[-1]
        assert error["code"] == "agent_error"
        assert error["message"] == (
            "the model service rejected the agent's model; tell the server's operator"
        )
        assert "gemini-2.5-flash" not in error["message"]
        code, reason = await expect_close(ws)
        assert code == 1011
        assert "rejected" in reason
        assert (await expect_close(seeds))[0] == 1011
        assert served.server.hub.ready  # the server itself is fine


@pytest.mark.parametrize("fault", ["close", "drop"])
async def test_model_connection_lost_mid_reply_is_answered_once(
    monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The model's connection fails mid-reply: the server resumes it and asks again, and
    the browser gets the cut-off marker and then one whole answer; the tool runs once."""
    async with (
        serving(monkeypatch, model=MODEL_3X) as served,
        client(served.ws("cut"), extended=True) as ws,
    ):
        await recv_until(ws, lambda f: '"type": "hello"' in str(f))
        faults = served.emulator.faults
        faults.close_mid_reply() if fault == "close" else faults.drop_mid_reply()
        events = json_frames(await ext_turn(ws, "what time is it?"))
        kinds = [e["type"] for e in events]
        assert "interrupted" in kinds, events
        after_cut = events[kinds.index("interrupted") :]
        reply = "".join(e["text"] for e in after_cut if e["type"] == "agent_text" and e["partial"])
        assert reply == "It is 10:42.", json.dumps(events, indent=0)
        with pytest.raises(TimeoutError):  # nothing more: no second answer
            async with asyncio.timeout(0.5):
                await ws.recv()
    assert served.clock.calls == 1
