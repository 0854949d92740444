"""The emulator driven by google-genai's own Live client (`client.aio.live.connect`).

Every test talks to a real emulator over TLS through the real genai code; nothing of
genai is mocked. ADK-level coverage is in test_emulator_adk.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import pytest
import websockets
from google import genai
from google.genai import errors, types
from websockets.asyncio.client import connect as ws_connect

from adkvoice.emulator import Emulator, EmulatorOptions, parse_rules
from adkvoice.emulator.client_messages import SlidingWindow
from adkvoice.emulator.speech import espeak_available, pocketsphinx_available
from adkvoice.errors import EmulatorError
from adkvoice.live_models import TEXT_REFUSAL_REASON, family_of

from .emulator_support import (
    MODEL_2X,
    MODEL_3X,
    MODELS,
    STEP_TIMEOUT_S,
    chunks,
    running_emulator,
    silence_16k,
    utterance_16k,
)

pytestmark = pytest.mark.integration

TIME_TOOL = types.Tool(
    function_declarations=[types.FunctionDeclaration(name="get_current_time", description="now")]
)
GREETING = "Hello! I'm the adkvoice emulator"


def config(
    modality: str = "TEXT", *, model: str = MODEL_2X, **kw: object
) -> types.LiveConnectConfig:
    """A setup asking for `modality`. Text replies from a model that only speaks (every
    model but the half-cascade ones refuses TEXT, as Gemini does) come as its speech's
    transcript: AUDIO with output transcription."""
    family = family_of(model)
    if modality == "TEXT" and family is not None and not family.text_replies:
        modality = "AUDIO"
        kw.setdefault("output_audio_transcription", types.AudioTranscriptionConfig())
    return types.LiveConnectConfig(response_modalities=[types.Modality(modality)], **kw)  # type: ignore[arg-type]


async def say(session: genai.live.AsyncSession, model: str, text: str) -> None:
    """Send a user text turn the way ADK does for each model family."""
    if model == MODEL_3X:
        await session.send_realtime_input(text=text)
    else:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text=text)])
        )


async def one_turn(session: genai.live.AsyncSession) -> list[types.LiveServerMessage]:
    """Messages up to and including the next turnComplete."""
    async with asyncio.timeout(STEP_TIMEOUT_S):
        return [msg async for msg in session.receive()]


async def one_model_turn(session: genai.live.AsyncSession) -> list[types.LiveServerMessage]:
    """Messages up to the next turnComplete, even one that says more follows (genai's own
    `receive` goes on to the end of the interaction then)."""
    messages: list[types.LiveServerMessage] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        async for msg in session.receive():
            messages.append(msg)
            if msg.server_content and msg.server_content.turn_complete:
                break
    return messages


async def next_message(session: genai.live.AsyncSession) -> types.LiveServerMessage:
    async with asyncio.timeout(STEP_TIMEOUT_S):
        async for msg in session.receive():
            return msg
    raise AssertionError("the stream ended")


def text_of(messages: list[types.LiveServerMessage]) -> str:
    """The reply's words: its text parts, or the transcript of its speech."""
    return "".join(m.text or "" for m in messages) or transcript_of(messages)


def pieces_of(messages: list[types.LiveServerMessage]) -> list[str]:
    return [
        m.text or (m.server_content.output_transcription.text or "")
        for m in messages
        if m.text or (m.server_content and m.server_content.output_transcription)
    ]


def transcript_of(messages: list[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.output_transcription.text or ""
        for m in messages
        if m.server_content and m.server_content.output_transcription
    )


@pytest.mark.parametrize("model", MODELS)
async def test_text_turn_streams_and_reports_usage(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        async with client.aio.live.connect(
            model=model, config=config("TEXT", model=model)
        ) as session:
            await say(session, model, "hello there")
            messages = await one_turn(session)
    assert len(pieces_of(messages)) > 3  # streamed, not one blob
    assert text_of(messages).startswith(GREETING)
    last = messages[-1]
    assert last.server_content
    assert last.server_content.turn_complete
    usage = last.usage_metadata
    assert usage
    assert usage.prompt_token_count
    assert usage.response_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.response_token_count
    assert any(m.server_content and m.server_content.generation_complete for m in messages)
    assert emu.stats.models == [f"models/{model}"]
    assert emu.stats.turns_answered == 1


@pytest.mark.parametrize("model", MODELS)
async def test_audio_reply_with_output_transcription(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch):
        client = genai.Client()
        cfg = config("AUDIO", output_audio_transcription=types.AudioTranscriptionConfig())
        async with client.aio.live.connect(model=model, config=cfg) as session:
            await say(session, model, "testing one two three")
            messages = await one_turn(session)
    audio = [m for m in messages if m.data]
    pcm = b"".join(m.data or b"" for m in audio)
    assert len(audio) > 5
    assert len(pcm) % 2 == 0
    assert 0.5 < len(pcm) / 2 / 24_000 < 5
    parts = [p for m in audio for p in m.server_content.model_turn.parts]  # type: ignore[union-attr]
    assert {p.inline_data.mime_type for p in parts} == {"audio/pcm;rate=24000"}  # type: ignore[union-attr]
    assert transcript_of(messages) == "You said: testing one two three"
    with_both = [m for m in audio if m.server_content.output_transcription]  # type: ignore[union-attr]
    if model == MODEL_3X:
        assert with_both  # 3.x: several parts (audio + transcription) in one event
    else:
        assert not with_both
        finished = [
            m for m in messages if m.server_content and m.server_content.output_transcription
        ]
        assert finished[-1].server_content.output_transcription.finished  # type: ignore[union-attr]
    kinds = [
        "gen" if m.server_content and m.server_content.generation_complete else "turn"
        for m in messages[-2:]
    ]
    assert kinds == ["gen", "turn"]


@pytest.mark.parametrize("model", MODELS)
async def test_audio_in_vad_transcription_and_reply(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        cfg = config(
            "TEXT", model=model, input_audio_transcription=types.AudioTranscriptionConfig()
        )
        async with client.aio.live.connect(model=model, config=cfg) as session:
            for piece in chunks(silence_16k(0.3) + await utterance_16k() + silence_16k(0.7)):
                blob = types.Blob(data=piece, mime_type="audio/pcm;rate=16000")
                if model == MODEL_3X:  # what ADK sends for each family
                    await session.send_realtime_input(audio=blob)
                else:
                    await session.send_realtime_input(media=blob)
            messages = await one_turn(session)
    heard = [
        m.server_content.input_transcription
        for m in messages
        if m.server_content and m.server_content.input_transcription
    ]
    transcript = "".join(t.text or "" for t in heard)
    assert transcript.startswith("[speech ")
    assert transcript.endswith(" s]")
    assert heard[-1].finished
    if model == MODEL_3X:
        assert len(heard) == 1  # 3.x: one final input transcription
    assert text_of(messages) == f"You said: {transcript}"
    assert emu.stats.utterances == 1
    assert emu.stats.transcripts == [transcript]


@pytest.mark.skipif(not pocketsphinx_available(), reason="pocketsphinx not installed")
async def test_audio_in_with_pocketsphinx(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch, stt="pocketsphinx") as emu:
        client = genai.Client()
        cfg = config("TEXT", input_audio_transcription=types.AudioTranscriptionConfig())
        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            audio = await utterance_16k("hello") + silence_16k(0.7)
            await session.send_realtime_input(
                media=types.Blob(data=audio, mime_type="audio/pcm;rate=16000")
            )
            messages = await one_turn(session)
    [heard] = emu.stats.transcripts  # whatever pocketsphinx made of it, never empty
    assert heard
    assert emu.stats.user_texts == [heard]
    assert messages[-1].server_content
    assert messages[-1].server_content.turn_complete
    assert text_of(messages)


async def test_manual_activity_and_audio_stream_end(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        manual = config(
            "TEXT",
            model=MODEL_3X,
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
            ),
        )
        async with client.aio.live.connect(model=MODEL_3X, config=manual) as session:
            await session.send_realtime_input(activity_start=types.ActivityStart())
            await session.send_realtime_input(
                audio=types.Blob(data=silence_16k(0.5), mime_type="audio/pcm;rate=16000")
            )
            await session.send_realtime_input(activity_end=types.ActivityEnd())
            assert text_of(await one_turn(session)) == "You said: [speech 0.5 s]"
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            # audioStreamEnd flushes speech the VAD has not closed yet.
            await session.send_realtime_input(
                media=types.Blob(data=await utterance_16k(), mime_type="audio/pcm;rate=16000")
            )
            await session.send_realtime_input(audio_stream_end=True)
            assert text_of(await one_turn(session)).startswith("You said: [speech ")
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await session.send_realtime_input(activity_start=types.ActivityStart())
            with pytest.raises(errors.APIError) as info:
                await one_turn(session)
    assert info.value.code == 1007
    assert "automaticActivityDetection.disabled" in str(info.value)
    assert emu.stats.protocol_errors == 1


@pytest.mark.parametrize("model", MODELS)
async def test_interruption_by_new_text_and_by_voice(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch, audio_pacing=1.0) as emu:
        client = genai.Client()
        async with client.aio.live.connect(model=model, config=config("AUDIO")) as session:
            await say(session, model, "hello")
            first = await next_message(session)
            assert first.data
            await say(session, model, "stop")
            cut = await one_turn(session)
            assert any(m.server_content and m.server_content.interrupted for m in cut)
            reply = await one_turn(session)  # the answer to "stop", in real time again
            assert reply[-1].server_content
            assert reply[-1].server_content.turn_complete
            await say(session, model, "hello again")
            assert (await next_message(session)).data
            # Loud audio while the model speaks: server VAD barges in.
            loud = await utterance_16k("wait")
            blob = types.Blob(data=loud, mime_type="audio/pcm;rate=16000")
            if model == MODEL_3X:
                await session.send_realtime_input(audio=blob)
            else:
                await session.send_realtime_input(media=blob)
            cut = await one_turn(session)
            assert any(m.server_content and m.server_content.interrupted for m in cut)
    assert emu.stats.interruptions == 2


@pytest.mark.parametrize("model", MODELS)
async def test_tool_call_round_trip(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        cfg = config("TEXT", model=model, tools=[TIME_TOOL])
        async with client.aio.live.connect(model=model, config=cfg) as session:
            await say(session, model, "what time is it?")
            call_msg = await next_message(session)
            assert call_msg.tool_call
            assert call_msg.tool_call.function_calls
            [call] = call_msg.tool_call.function_calls
            assert (call.name, call.args) == ("get_current_time", {})
            if model == MODEL_2X:
                # 2.x closes the model turn right after the call (ADK waits for this).
                rest = await one_turn(session)
                assert not rest[0].tool_call
                assert rest[-1].server_content
                assert rest[-1].server_content.turn_complete
            await session.send_tool_response(
                function_responses=[
                    types.FunctionResponse(id=call.id, name=call.name, response={"time": "10:42"})
                ]
            )
            answer = await one_turn(session)
    assert text_of(answer) == "It is 10:42."
    assert not any(m.tool_call for m in answer)
    assert (emu.stats.tool_calls_sent, emu.stats.tool_responses_received) == (1, 1)


async def test_undeclared_tool_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await say(session, MODEL_2X, "what time is it?")
            answer = await one_turn(session)
    assert "does not declare it" in text_of(answer)
    assert emu.stats.tool_calls_sent == 0


@pytest.mark.parametrize("model", MODELS)
async def test_resumption_handle_restores_history(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        cfg = config("TEXT", model=model, session_resumption=types.SessionResumptionConfig())
        async with client.aio.live.connect(model=model, config=cfg) as session:
            await say(session, model, "my name is Ada")
            await one_turn(session)
            update = (await next_message(session)).session_resumption_update
            assert update
            assert update.resumable
            assert update.new_handle
        resumed = config(
            "TEXT",
            model=model,
            session_resumption=types.SessionResumptionConfig(handle=update.new_handle),
        )
        async with client.aio.live.connect(model=model, config=resumed) as session:
            await say(session, model, "what did I say?")
            assert text_of(await one_turn(session)) == "Before that you said: my name is Ada"
        assert emu.stats.resumed_sessions == 1
        bogus = config(
            "TEXT", model=model, session_resumption=types.SessionResumptionConfig(handle="nope")
        )
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=model, config=bogus):
                pass
    assert info.value.code == 1007
    assert "resumption handle" in str(info.value)
    assert emu.stats.rejected_handles == 1


async def test_resumption_handle_expires_after_its_connection_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_emulator(monkeypatch, handle_ttl_s=0.3) as emu:
        client = genai.Client()
        cfg = config("TEXT", session_resumption=types.SessionResumptionConfig())

        def resume(handle: str | None) -> types.LiveConnectConfig:
            return config("TEXT", session_resumption=types.SessionResumptionConfig(handle=handle))

        async def handle_after_one_turn(session: genai.live.AsyncSession) -> str:
            await say(session, MODEL_2X, "my name is Ada")
            await one_turn(session)
            update = (await next_message(session)).session_resumption_update
            assert update
            assert update.new_handle
            return update.new_handle

        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            open_handle = await handle_after_one_turn(session)
            await asyncio.sleep(0.4)  # longer than the TTL, but this connection is still open
            async with client.aio.live.connect(model=MODEL_2X, config=resume(open_handle)) as again:
                await say(again, MODEL_2X, "what did I say?")
                assert text_of(await one_turn(again)) == "Before that you said: my name is Ada"
        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            closed_handle = await handle_after_one_turn(session)
        async with client.aio.live.connect(model=MODEL_2X, config=resume(closed_handle)):
            pass  # within the TTL after its connection ended: still good
        await asyncio.sleep(0.4)
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=MODEL_2X, config=resume(closed_handle)):
                pass
    assert info.value.code == 1007
    assert str(info.value).endswith(
        "Request contains an invalid argument. Unknown or expired session resumption handle."
    )
    assert emu.stats.rejected_handles == 1
    assert emu.stats.resumed_connections == 2
    assert emu.stats.connections_opened == 4


async def test_go_away_option_then_close(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch, go_away_after_s=0.2, go_away_time_left_s=0.3) as emu:
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            started = time.monotonic()
            msg = await next_message(session)
            assert msg.go_away
            assert msg.go_away.time_left == "0.3s"
            with pytest.raises(errors.APIError) as info:
                await next_message(session)
            assert time.monotonic() - started >= 0.45
    assert info.value.code == 1000
    assert emu.stats.go_aways_sent == 1


async def test_go_away_now_with_and_without_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        cfg = config("TEXT", session_resumption=types.SessionResumptionConfig())
        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            assert await emu.faults.go_away_now(5.0, send_handle=True) == 1
            update = await next_message(session)
            assert update.session_resumption_update
            assert update.session_resumption_update.new_handle
            assert (await next_message(session)).go_away
        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            await emu.faults.go_away_now(5.0, send_handle=False)
            assert (await next_message(session)).go_away
    assert emu.stats.handles_issued == 1


@pytest.mark.parametrize("send_handle", [True, False])
async def test_rule_triggered_go_away_with_and_without_a_fresh_handle(
    monkeypatch: pytest.MonkeyPatch, send_handle: bool
) -> None:
    rules = parse_rules(
        '[[rule]]\nmatch = "recycle"\nfault = "go-away"\nseconds = 5\n'
        f'send_handle = {str(send_handle).lower()}\nsay = "Recycling."\n'
    )
    async with running_emulator(monkeypatch, rules=rules) as emu:
        client = genai.Client()
        cfg = config("TEXT", session_resumption=types.SessionResumptionConfig())
        async with client.aio.live.connect(model=MODEL_2X, config=cfg) as session:
            await say(session, MODEL_2X, "recycle please")
            assert text_of(await one_turn(session)) == "Recycling."
            after = [await next_message(session) for _ in range(2 + send_handle)]
    assert after[-1].go_away
    assert after[-1].go_away.time_left == "5s"
    updates = [m.session_resumption_update for m in after[:-1]]
    assert all(u and u.resumable and u.new_handle for u in updates)
    assert len(updates) == 1 + send_handle  # the end-of-turn handle, then maybe a fresh one
    assert emu.stats.faults_fired == ["go-away"]
    assert emu.stats.handles_issued == 1 + send_handle


@pytest.mark.parametrize("model", MODELS)
async def test_context_window_compression_bounds_the_prompt(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    trigger, target = 80, 40
    compression = types.ContextWindowCompressionConfig(
        trigger_tokens=trigger, sliding_window=types.SlidingWindow(target_tokens=target)
    )
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        cfg = config("TEXT", model=model, context_window_compression=compression)
        prompts: list[int] = []
        async with client.aio.live.connect(model=model, config=cfg) as session:
            for i in range(20):
                await say(session, model, f"turn {i}: the quick brown fox jumps over a dog")
                messages = await one_turn(session)
                usage = messages[-1].usage_metadata
                assert usage
                assert usage.prompt_token_count
                prompts.append(usage.prompt_token_count)
            await say(session, model, "what did I say first?")
            answer = text_of(await one_turn(session))
    assert emu.stats.setup_log[0].compression == SlidingWindow(trigger, target)
    assert max(prompts) <= trigger
    assert sum(prompts) > 5 * trigger  # without the window the prompt would be far over
    assert len(emu.stats.compressions) >= 5
    assert all(c.tokens_after <= target for c in emu.stats.compressions)
    # The early turns are gone from the model's context window; the latest are kept.
    remembered = re.fullmatch(
        r"The first thing you said that I still remember: turn (\d+):.*", answer
    )
    assert remembered
    assert 15 <= int(remembered.group(1)) <= 19


async def test_fault_close_1011_mid_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        emu.faults.close_mid_reply()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await say(session, MODEL_2X, "one two three four five six")
            first = await next_message(session)
            assert first.text == "You said: one "
            with pytest.raises(errors.APIError) as info:
                await next_message(session)
    assert info.value.code == 1011
    assert "Internal error encountered." in str(info.value)
    assert emu.stats.faults_fired == ["close-1011"]


@pytest.mark.parametrize(("kind", "code"), [("close-1011", 1011), ("drop", 1006)])
@pytest.mark.parametrize("model", MODELS)
async def test_fault_fires_in_the_answer_after_a_tool_response(
    monkeypatch: pytest.MonkeyPatch, model: str, kind: str, code: int
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        if kind == "drop":
            emu.faults.drop_mid_reply()
        else:
            emu.faults.close_mid_reply()
        cfg = config("TEXT", model=model, tools=[TIME_TOOL])
        async with client.aio.live.connect(model=model, config=cfg) as session:
            await say(session, model, "what time is it?")
            call_msg = await next_message(session)
            assert call_msg.tool_call
            assert call_msg.tool_call.function_calls
            [call] = call_msg.tool_call.function_calls
            if model == MODEL_2X:
                await one_turn(session)  # the turnComplete that closes the call's turn
            assert emu.stats.faults_fired == []  # nothing yet: the tool call went through
            await session.send_tool_response(
                function_responses=[
                    types.FunctionResponse(id=call.id, name=call.name, response={"time": "10:42"})
                ]
            )
            first = await next_message(session)
            assert first.text == "It is 10:42." or first.data  # the answer started, then the fault
            with pytest.raises(errors.APIError) as info:
                await one_turn(session)
    assert info.value.code == code
    assert emu.stats.faults_fired == [kind]
    assert emu.stats.tool_responses_received == 1
    assert emu.stats.tool_calls_by_name == {"get_current_time": 1}


@pytest.mark.parametrize("modality", ["TEXT", "AUDIO"])
async def test_fault_slow_holds_back_every_chunk(
    monkeypatch: pytest.MonkeyPatch, modality: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        emu.faults.slow_replies(0.05)
        async with client.aio.live.connect(model=MODEL_2X, config=config(modality)) as session:
            said_at = time.monotonic()
            await say(session, MODEL_2X, "one two three four five six seven eight nine")
            arrivals: list[float] = []
            async with asyncio.timeout(STEP_TIMEOUT_S):
                async for msg in session.receive():
                    if msg.text or msg.data:
                        arrivals.append(time.monotonic())
            fast_started = time.monotonic()
            await say(session, MODEL_2X, "one two three four five six seven eight nine")
            await one_turn(session)
            fast_s = time.monotonic() - fast_started
    assert len(arrivals) >= 4
    for k, arrived in enumerate(arrivals):  # chunk k cannot leave before (k + 1) waits
        assert arrived - said_at >= 0.05 * (k + 1) - 0.005
    assert fast_s < 0.05 * len(arrivals)  # one-shot: the next reply is not slowed
    assert emu.stats.faults_fired == ["slow"]


async def test_audio_pacing_is_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    reply = "Pacing check: each word here takes its own time."  # about 3 s of tones
    rules = parse_rules(f'[[rule]]\nmatch = "pace"\nsay = "{reply}"\n')
    async with running_emulator(monkeypatch, rules=rules, audio_pacing=1.0):
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("AUDIO")) as session:
            await say(session, MODEL_2X, "pace")
            pcm = b""
            first_at = 0.0
            async with asyncio.timeout(STEP_TIMEOUT_S):
                async for msg in session.receive():
                    if msg.data:
                        first_at = first_at or time.monotonic()
                        pcm += msg.data
            elapsed = time.monotonic() - first_at
    duration = len(pcm) / 2 / 24_000
    assert 2.5 < duration < 3.5  # a ~3 s reply
    assert elapsed == pytest.approx(duration, rel=0.05)


async def test_fault_tcp_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        emu.faults.drop_mid_reply()
        async with client.aio.live.connect(model=MODEL_3X, config=config("AUDIO")) as session:
            await say(session, MODEL_3X, "hello")
            assert (await next_message(session)).data
            with pytest.raises(errors.APIError) as info:
                await one_turn(session)
    assert info.value.code == 1006  # no close frame: abnormal closure


async def test_fault_malformed_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        emu.faults.malformed_next_reply()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await say(session, MODEL_2X, "hello")
            with pytest.raises(ValueError, match="Failed to parse response"):
                await next_message(session)


async def test_fault_delay_and_sticky(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        emu.faults.delay_next_reply(0.3)
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            started = time.monotonic()
            await say(session, MODEL_2X, "hello")
            await one_turn(session)
            assert time.monotonic() - started >= 0.3
            started = time.monotonic()
            await say(session, MODEL_2X, "hello")
            await one_turn(session)
            assert time.monotonic() - started < 0.3  # one-shot: gone after one turn


async def test_rule_triggered_fault_by_text(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await say(session, MODEL_2X, "emulator fault close")
            with pytest.raises(errors.APIError) as info:
                await one_turn(session)
    assert info.value.code == 1011
    assert emu.stats.faults_fired == ["close-1011"]


async def test_custom_rules_and_think_time(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = parse_rules('[[rule]]\nmatch = "ping"\nsay = "pong {turn}"\n')
    async with running_emulator(monkeypatch, rules=rules, think_time_s=0.2) as emu:
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            started = time.monotonic()
            await say(session, MODEL_2X, "ping")
            assert text_of(await one_turn(session)) == "pong 1"
            assert time.monotonic() - started >= 0.2
            await say(session, MODEL_2X, "anything")
            assert text_of(await one_turn(session)) == "You said: anything"
    assert emu.stats.user_texts == ["ping", "anything"]


async def test_model_rejected_like_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client(http_options=types.HttpOptions(api_version="v1alpha"))
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model="gemini-2.5-flash", config=config()):
                pass
    assert info.value.code == 1008
    assert str(info.value).endswith(
        "models/gemini-2.5-flash is not found for API version v1alpha, "
        "or is not supported for bidiGenerateContent."
    )
    assert emu.stats.rejected_setups == 1


async def test_explicit_ssl_context_and_unknown_path() -> None:
    async with Emulator(EmulatorOptions(tts="synthetic", stt="placeholder")) as emu:
        # The documented alternative to SSL_CERT_FILE: hand genai an SSL context.
        client = genai.Client(
            api_key="emulator",
            http_options=types.HttpOptions(
                base_url=emu.base_url, async_client_args={"ssl": emu.client_ssl_context()}
            ),
        )
        async with client.aio.live.connect(model=MODEL_2X, config=config("TEXT")) as session:
            await say(session, MODEL_2X, "hi")
            assert text_of(await one_turn(session)).startswith(GREETING)
        wss = emu.base_url.replace("https://", "wss://")
        async with ws_connect(f"{wss}/ws/other", ssl=emu.client_ssl_context()) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1008
        assert "Unknown path /ws/other" in info.value.rcvd.reason
        path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        async with ws_connect(f"{wss}{path}", ssl=emu.client_ssl_context()) as ws:
            await ws.send(json.dumps({"client_content": {"turns": []}}))
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1007
        assert "first message must be setup" in info.value.rcvd.reason
        async with ws_connect(f"{wss}{path}", ssl=emu.client_ssl_context()) as ws:
            await ws.send(json.dumps({"setup": {"model": f"models/{MODEL_2X}"}}))
            assert json.loads(await ws.recv()) == {"setupComplete": {}}
            await ws.send("{not json")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.recv()
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1007
        assert "not valid JSON" in info.value.rcvd.reason


async def test_lifecycle_env_and_busy_port(tmp_path: Path) -> None:
    emu = Emulator(EmulatorOptions(cert_dir=tmp_path / "certs"))
    with pytest.raises(EmulatorError, match="not running"):
        _ = emu.port
    async with emu:
        env = emu.client_env()
        assert env["GOOGLE_GEMINI_BASE_URL"] == f"https://127.0.0.1:{emu.port}"
        assert env["GOOGLE_API_KEY"] == "emulator"
        assert env["GOOGLE_GENAI_USE_VERTEXAI"] == "FALSE"
        bundle = Path(env["SSL_CERT_FILE"])
        assert bundle == emu.ca_bundle
        assert bundle.parent == tmp_path / "certs"
        bundle_text = await asyncio.to_thread(bundle.read_text)
        assert await asyncio.to_thread(emu.ca_cert.read_text) in bundle_text
        assert bundle_text.count("BEGIN CERTIFICATE") > 10  # the system CAs too
        with pytest.raises(EmulatorError, match="already running"):
            await emu.start()
        busy = Emulator(EmulatorOptions(port=emu.port))
        with pytest.raises(EmulatorError) as info:
            await busy.start()
        assert str(info.value).startswith(f"port {emu.port} on 127.0.0.1 is busy")
        assert "\n" not in str(info.value)
    assert not emu.running
    default = Emulator()
    await default.start()
    own_dir = default.ca_bundle.parent
    await default.stop()
    assert not own_dir.exists()  # the temp cert dir is ours to remove
    # A free port is also reusable right after stop.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")
async def test_espeak_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch, tts="espeak"):
        client = genai.Client()
        async with client.aio.live.connect(model=MODEL_2X, config=config("AUDIO")) as session:
            await say(session, MODEL_2X, "hello")
            messages = await one_turn(session)
    pcm = b"".join(m.data or b"" for m in messages)
    assert len(pcm) / 2 / 24_000 > 1.0


@pytest.mark.parametrize(
    "model",
    [
        "gemini-3.8-live",
        "gemini-3.8-live-extended-thinking",
        "gemini-3.1-flash-live-preview",
        "gemini-2.5-flash-native-audio-latest",
    ],
)
async def test_audio_only_models_refuse_a_text_setup_as_gemini_does(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        with pytest.raises(errors.APIError) as info:
            async with client.aio.live.connect(model=model, config=config("TEXT")):
                pass
    assert info.value.code == 1007
    assert TEXT_REFUSAL_REASON in str(info.value)
    assert emu.stats.refusals == [(1007, TEXT_REFUSAL_REASON)]
    assert emu.stats.setups == 0


async def test_gemini_38_answers_in_turns_with_interaction_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A background call on the wire, as genai parses it: the call, the model talking
    meanwhile (IN_PROGRESS), then the result spoken (IDLE)."""
    rules = parse_rules(
        """
[[rule]]
match = "search"
call = "search_files"
while = "Let me look."
say = ["Found it.", "In {result.where}."]
"""
    )
    search = types.Tool(
        function_declarations=[types.FunctionDeclaration(name="search_files", description="s")]
    )
    async with running_emulator(monkeypatch, rules=rules) as emu:
        client = genai.Client()
        cfg = config("TEXT", model="gemini-3.8-live", tools=[search])
        async with client.aio.live.connect(model="gemini-3.8-live", config=cfg) as session:
            await say(session, MODEL_3X, "search my notes")
            call_msg = await next_message(session)
            assert call_msg.tool_call
            assert call_msg.tool_call.function_calls
            [call] = call_msg.tool_call.function_calls
            filler = await one_model_turn(session)
            assert text_of(filler) == "Let me look."
            status = filler[-1].server_content
            assert status
            assert status.interaction_status == types.InteractionStatus.IN_PROGRESS
            await session.send_tool_response(
                function_responses=[
                    types.FunctionResponse(
                        id=call.id,
                        name=call.name,
                        response={"where": "notes.txt"},
                        scheduling=types.FunctionResponseScheduling.WHEN_IDLE,
                    )
                ]
            )
            # genai's receive() ends an interaction at IDLE, not at each turnComplete.
            rest = await one_turn(session)
    assert text_of(rest) == "Found it.In notes.txt."
    statuses = [
        m.server_content.interaction_status
        for m in rest
        if m.server_content and m.server_content.turn_complete
    ]
    assert statuses == [types.InteractionStatus.IN_PROGRESS, types.InteractionStatus.IDLE]
    assert emu.stats.background_calls == 1
    assert emu.stats.schedulings["WHEN_IDLE"] == 1
