"""The emulator's per-connection state machine, driven without sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from adkvoice.emulator import FaultController, Rules, default_rules, frames
from adkvoice.emulator import client_messages as p
from adkvoice.emulator.connection import ConnectionOptions, LiveConnection, TransportClosed
from adkvoice.emulator.context import context_tokens, slide_window
from adkvoice.emulator.handles import (
    KEEP_PER_CONNECTION,
    ContextSnapshot,
    HandleOwner,
    IssuedHandles,
)
from adkvoice.emulator.speech import PlaceholderStt, SyntheticTts
from adkvoice.emulator.stats import EmulatorStats
from adkvoice.errors import ProtocolError

MODEL_2 = "models/gemini-2.0-flash-live-001"
MODEL_3 = "models/gemini-3.1-flash-live-preview"


class FakeTransport:
    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.closed: tuple[int, str] | None = None
        self.aborted = False

    async def send(self, data: str) -> None:
        if self.closed or self.aborted:
            raise TransportClosed
        try:
            self.frames.append(json.loads(data))
        except json.JSONDecodeError:
            self.frames.append(data)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def abort(self) -> None:
        self.aborted = True

    def texts(self) -> str:
        return "".join(
            part["text"]
            for f in self.frames
            if isinstance(f, dict)
            for part in f.get("serverContent", {}).get("modelTurn", {}).get("parts", [])
            if "text" in part
        )

    def count(self, pred: Callable[[Any], bool]) -> int:
        return sum(1 for f in self.frames if isinstance(f, dict) and pred(f))


def turn_completes(f: Any) -> bool:
    return bool(f.get("serverContent", {}).get("turnComplete"))


class Harness:
    def __init__(
        self,
        setup: p.Setup,
        options: ConnectionOptions | None = None,
        transport: FakeTransport | None = None,
        rules: Rules | None = None,
    ) -> None:
        self.transport = transport or FakeTransport()
        self.stats = EmulatorStats()
        self.faults = FaultController()
        self.handles = IssuedHandles()
        self.session = LiveConnection(
            setup,
            transport=self.transport,
            rules=rules or default_rules(),
            tts=SyntheticTts(),
            stt=PlaceholderStt(),
            faults=self.faults,
            stats=self.stats,
            handles=self.handles,
            options=options or ConnectionOptions(),
        )

    async def send(self, msg: p.ClientMessage) -> None:
        await self.session.handle(msg)

    async def until(self, pred: Callable[[], bool]) -> None:
        async with asyncio.timeout(3.0):
            while not pred():  # noqa: ASYNC110 - polling plain counters is the point here
                await asyncio.sleep(0.005)

    async def idle(self) -> None:
        """Let every runnable task finish its current work."""
        for _ in range(50):
            await asyncio.sleep(0)


def text_setup(model: str = MODEL_2, **kw: Any) -> p.Setup:
    return p.Setup(model=model, response_modality="TEXT", **kw)


def user(text: str) -> p.ClientContent:
    return p.ClientContent((p.Turn("user", text),), turn_complete=True)


async def test_text_turn_streams_chunks_then_completes() -> None:
    h = Harness(text_setup())
    await h.send(user("one two three four five six seven"))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.texts() == "You said: one two three four five six seven"
    chunks = h.transport.count(lambda f: "modelTurn" in f.get("serverContent", {}))
    assert chunks == 3
    assert h.transport.frames[-2] == frames.generation_complete()
    last = h.transport.frames[-1]
    assert last["serverContent"] == {"turnComplete": True}
    assert last["usageMetadata"]["totalTokenCount"] > 0
    assert h.session.conversation.history[-1].role == "model"


@pytest.mark.parametrize(("model", "answers"), [(MODEL_2, True), (MODEL_3, False)])
async def test_initial_history_phase(model: str, answers: bool) -> None:
    h = Harness(text_setup(model, initial_history_in_client_content=True))
    await h.send(
        p.ClientContent(
            (p.Turn("user", "hi"), p.Turn("model", "Hello!"), p.Turn("user", "what did I say")),
            turn_complete=True,
        )
    )
    await h.idle()
    assert (h.stats.turns_answered == 1) is answers
    if not answers:
        await h.send(p.RealtimeInput(text="."))  # what ADK sends to nudge 3.x
        await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.texts() == "Before that you said: hi"
    assert [t.text for t in h.session.conversation.history].count(".") == 0


async def test_a_dot_after_a_history_that_ends_with_the_model_is_the_users() -> None:
    # ADK nudges only a history that ends with the user; this "." was typed.
    h = Harness(text_setup(MODEL_3, initial_history_in_client_content=True))
    await h.send(p.ClientContent((p.Turn("user", "a"), p.Turn("model", "b")), turn_complete=False))
    await h.send(p.RealtimeInput(text="."))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.texts() == "You said: ."


async def test_only_the_message_right_after_the_history_is_the_nudge() -> None:
    h = Harness(text_setup(MODEL_3, initial_history_in_client_content=True))
    await h.send(p.ClientContent((p.Turn("user", "hi"),), turn_complete=True))
    await h.send(p.RealtimeInput(text="."))  # the nudge: answers "hi"
    await h.until(lambda: h.stats.turns_answered == 1)
    await h.send(p.RealtimeInput(text="."))  # the user's own "."
    await h.until(lambda: h.stats.turns_answered == 2)
    assert h.stats.user_texts == ["hi", "."]


@pytest.mark.parametrize("model", [MODEL_2, MODEL_3])
@pytest.mark.parametrize("text", ["?", "😀", "...", ".", " "])
async def test_text_without_word_characters_is_answered(model: str, text: str) -> None:
    h = Harness(text_setup(model))
    await h.send(p.RealtimeInput(text=text))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.texts() == f"You said: {text}"


async def test_activity_signals_need_manual_detection() -> None:
    h = Harness(text_setup())
    with pytest.raises(ProtocolError, match=r"automaticActivityDetection\.disabled"):
        await h.send(p.RealtimeInput(activity_start=True))


async def test_media_chunks_refused_for_gemini_3() -> None:
    h = Harness(text_setup(MODEL_3))
    chunk = p.AudioChunk(b"\x00\x00" * 160, 16000)
    with pytest.raises(ProtocolError, match=r"send realtimeInput\.audio"):
        await h.send(p.RealtimeInput(audio=(chunk,), used_media_chunks=True))
    await h.send(p.RealtimeInput(audio=(chunk,)))  # the 3.x field is fine


async def test_second_setup_is_an_error() -> None:
    h = Harness(text_setup())
    with pytest.raises(ProtocolError, match="only be sent once"):
        await h.send(text_setup())


@pytest.mark.parametrize("model", [MODEL_2, MODEL_3])
async def test_manual_activity_transcribes_and_answers(model: str) -> None:
    setup = text_setup(
        model,
        input_transcription=True,
        activity_detection=p.ActivityDetection(disabled=True),
    )
    h = Harness(setup)
    speech = p.AudioChunk(b"\x10\x20" * 16000, 16000)  # 1 s
    await h.send(p.RealtimeInput(audio=(speech,)))  # before activityStart: ignored
    await h.send(p.RealtimeInput(activity_start=True))
    await h.send(p.RealtimeInput(audio=(speech,)))
    await h.send(p.RealtimeInput(activity_end=True))
    await h.until(lambda: h.stats.turns_answered == 1)
    transcriptions = [
        f["serverContent"]["inputTranscription"]
        for f in h.transport.frames
        if "inputTranscription" in f.get("serverContent", {})
    ]
    text = "[speech 1.0 s]"
    if model == MODEL_3:
        assert transcriptions == [{"text": text, "finished": True}]
    else:
        assert "".join(t["text"] for t in transcriptions) == text
        assert [t.get("finished", False) for t in transcriptions] == [False, True]
    assert h.transport.texts() == f"You said: {text}"
    assert h.stats.utterances == 1


async def test_tool_response_with_unknown_id_is_counted_not_used() -> None:
    h = Harness(text_setup())
    await h.send(p.ToolResponse((p.FunctionResponse("nope", "f", {}),)))
    assert (h.stats.tool_responses_received, h.stats.unmatched_tool_responses) == (0, 1)


async def test_interrupting_a_gemini_3_tool_wait_cancels_the_call() -> None:
    h = Harness(text_setup(MODEL_3, function_names=("get_current_time",)))
    await h.send(user("what time is it"))
    await h.until(lambda: h.stats.tool_calls_sent == 1)
    call_id = h.transport.frames[0]["toolCall"]["functionCalls"][0]["id"]
    assert h.transport.count(turn_completes) == 0  # 3.x waits for the tool response
    await h.send(user("never mind"))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert frames.tool_call_cancellation([call_id]) in h.transport.frames
    assert frames.interrupted() in h.transport.frames
    assert h.transport.texts() == "You said: never mind"
    await h.send(p.ToolResponse((p.FunctionResponse(call_id, "get_current_time", {}),)))
    assert h.stats.unmatched_tool_responses == 1
    assert h.stats.interruptions == 1


async def test_gemini_2_tool_call_completes_the_turn_first() -> None:
    h = Harness(text_setup(MODEL_2, function_names=("get_current_time",)))
    await h.send(user("what time is it"))
    await h.until(lambda: h.stats.tool_calls_sent == 1)
    await h.idle()
    assert h.transport.count(turn_completes) == 1
    call_id = h.transport.frames[0]["toolCall"]["functionCalls"][0]["id"]
    await h.send(p.ToolResponse((p.FunctionResponse(call_id, "get_current_time", {"t": "9"}),)))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.texts() == "It is 9."
    assert h.transport.count(turn_completes) == 2


async def test_undeclared_tool_is_explained() -> None:
    h = Harness(text_setup(MODEL_2))
    await h.send(user("what time is it"))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.stats.tool_calls_sent == 0
    assert "does not declare it" in h.transport.texts()


async def test_mid_turn_resumption_updates_when_enabled() -> None:
    h = Harness(text_setup(resumption=True))
    h.faults.mid_turn_resumption_updates = True
    await h.send(user("hello"))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.transport.frames[0] == frames.resumption_update(None, resumable=False)
    update = h.transport.frames[-1]["sessionResumptionUpdate"]
    assert update["resumable"] is True
    stored = h.handles.get(update["newHandle"])
    assert stored is not None
    assert stored.history == h.session.conversation.history


async def test_close_fault_stops_the_reply_after_one_chunk() -> None:
    h = Harness(text_setup())
    h.faults.close_mid_reply()
    await h.send(user("one two three four five six seven"))
    await h.until(lambda: h.transport.closed is not None)
    assert h.transport.closed == (1011, "Internal error encountered.")
    assert h.transport.texts() == "You said: one "
    assert h.stats.faults_fired == ["close-1011"]
    await h.session.shutdown()


def test_slide_window_keeps_system_newest_user_turn_and_starts_at_a_user_turn() -> None:
    history = [
        p.Turn("user", "one two three"),
        p.Turn("model", "four five six"),
        p.Turn("user", "seven eight nine"),
        p.Turn("model", "ten eleven twelve"),
        p.Turn("user", "thirteen"),
    ]
    system = "be brief"  # 2 words, never dropped
    assert context_tokens(system, history) == 20  # 15 words
    kept = list(history)
    assert slide_window(kept, system, target_tokens=20) == 0
    assert slide_window(kept, system, target_tokens=12) == 2  # 9 words = 12 tokens
    assert kept == history[2:]
    kept = list(history)
    assert slide_window(kept, system, target_tokens=1) == 4  # never the turn being answered
    assert kept == [p.Turn("user", "thirteen")]
    led_by_model = [p.Turn("model", "a b c d e f"), p.Turn("user", "g")]
    assert slide_window(led_by_model, "", target_tokens=2) == 1
    assert led_by_model == [p.Turn("user", "g")]


async def test_compression_bounds_prompt_tokens_and_forgets_early_turns() -> None:
    window = p.SlidingWindow(trigger_tokens=60, target_tokens=45)
    h = Harness(text_setup(compression=window))
    prompts: list[int] = []
    for i in range(12):
        await h.send(user(f"turn {i} says something rather long and wordy"))
        await h.until(lambda i=i: h.stats.turns_answered == i + 1)  # type: ignore[misc]
        prompts.append(h.transport.frames[-1]["usageMetadata"]["promptTokenCount"])
    assert max(prompts) <= window.trigger_tokens
    assert any(later < earlier for earlier, later in itertools.pairwise(prompts))  # it slid
    assert h.stats.compressions
    for event in h.stats.compressions:
        assert event.tokens_before > window.trigger_tokens
        assert event.tokens_after <= window.target_tokens
        assert event.turns_dropped % 2 == 0  # whole user + model pairs here
    assert h.session.record.compressions == len(h.stats.compressions)
    await h.send(user("what did I say first?"))
    await h.until(lambda: h.stats.turns_answered == 13)
    remembered = h.transport.texts().rsplit("I still remember: ", 1)[1]
    assert remembered == "turn 10 says something rather long and wordy"  # turns 0-9 are gone
    assert h.session.conversation.history[0].role == "user"


async def test_without_compression_the_context_only_grows() -> None:
    h = Harness(text_setup())
    prompts: list[int] = []
    for i in range(6):
        await h.send(user(f"turn {i} says something rather long and wordy"))
        await h.until(lambda i=i: h.stats.turns_answered == i + 1)  # type: ignore[misc]
        prompts.append(h.transport.frames[-1]["usageMetadata"]["promptTokenCount"])
    assert prompts == sorted(prompts)
    assert len(set(prompts)) == len(prompts)
    await h.send(user("what did I say first?"))
    await h.until(lambda: h.stats.turns_answered == 7)
    assert h.transport.texts().endswith(
        "I still remember: turn 0 says something rather long and wordy"
    )
    assert h.stats.compressions == []


async def test_slow_fault_holds_back_every_text_chunk() -> None:
    h = Harness(text_setup())
    h.faults.slow_replies(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await h.send(user("one two three four five six seven"))  # 3 chunks
    await h.until(lambda: h.stats.turns_answered == 1)
    assert loop.time() - started >= 0.15
    assert h.stats.faults_fired == ["slow"]
    started = loop.time()
    await h.send(user("one two three four five six seven"))
    await h.until(lambda: h.stats.turns_answered == 2)
    assert loop.time() - started < 0.1  # one-shot


@pytest.mark.parametrize("send_handle", [True, False])
async def test_go_away_fault_can_send_a_fresh_handle_first(send_handle: bool) -> None:
    h = Harness(text_setup(resumption=True))
    h.faults.go_away_after_reply(5.0, send_handle=send_handle)
    await h.send(user("hello"))
    await h.until(lambda: h.stats.go_aways_sent == 1)
    tail = h.transport.frames[-3:]
    assert tail[-1] == frames.go_away(5.0)
    assert "sessionResumptionUpdate" in tail[-2]  # the end-of-turn handle, always
    assert ("sessionResumptionUpdate" in tail[-3]) is send_handle
    assert h.stats.handles_issued == (2 if send_handle else 1)
    assert h.session.record.go_aways_sent == 1
    await h.session.shutdown()


async def test_connection_record_counts_turns_and_tool_calls() -> None:
    h = Harness(text_setup(MODEL_2, function_names=("get_current_time",)))
    await h.session.start()
    await h.send(user("what time is it"))
    await h.until(lambda: h.stats.tool_calls_sent == 1)
    call_id = h.transport.frames[0]["toolCall"]["functionCalls"][0]["id"]
    await h.send(p.ToolResponse((p.FunctionResponse(call_id, "get_current_time", {"t": "9"}),)))
    await h.until(lambda: h.stats.turns_answered == 1)
    assert h.stats.connection_log == [h.session.record]
    assert h.stats.connections_opened == 1
    assert h.stats.resumed_connections == 0
    assert h.session.record.tool_calls == {"get_current_time": 1}
    assert h.stats.tool_calls_by_name == {"get_current_time": 1}
    assert h.session.record.turns_answered == 1
    await h.session.shutdown()
    assert not h.session.record.open


def test_handles_expire_after_their_connection_ends() -> None:
    now = [0.0]
    store = IssuedHandles(ttl_s=60.0, clock=lambda: now[0])
    owner = HandleOwner()
    handle = store.issue(owner, ContextSnapshot([p.Turn("user", "hi")], user_turns=1))
    now[0] = 1000.0
    restored = store.restore(handle)  # the connection is still open: no expiry
    assert restored is not None
    assert restored.history == [p.Turn("user", "hi")]
    store.connection_ended(owner)
    now[0] = 1059.0
    assert store.restore(handle) is not None
    now[0] = 1060.0
    assert store.restore(handle) is None
    assert len(store) == 0
    assert store.restore("emu-never-issued") is None


def test_a_connection_keeps_only_its_latest_handles() -> None:
    store = IssuedHandles()
    owner = HandleOwner()
    handles = [
        store.issue(owner, ContextSnapshot(user_turns=i)) for i in range(KEEP_PER_CONNECTION + 3)
    ]
    assert [store.get(h) is not None for h in handles] == [False] * 3 + [True] * KEEP_PER_CONNECTION
    latest = store.get(handles[-1])
    assert latest is not None
    assert latest.user_turns == KEEP_PER_CONNECTION + 2
    assert len(store) == KEEP_PER_CONNECTION


class SlowTransport(FakeTransport):
    """Each send takes 10 ms, like a congested socket."""

    async def send(self, data: str) -> None:
        await asyncio.sleep(0.01)
        await super().send(data)


async def test_audio_pacing_does_not_drift_with_send_time() -> None:
    h = Harness(p.Setup(model=MODEL_2), ConnectionOptions(audio_pacing=1.0), SlowTransport())
    loop = asyncio.get_running_loop()
    await h.send(user("one two three"))
    await h.until(lambda: h.stats.audio_out_bytes > 0)
    started = loop.time()
    await h.until(lambda: h.stats.turns_answered == 1)
    elapsed = loop.time() - started
    duration = h.stats.audio_out_bytes / 2 / 24_000
    chunks = h.transport.count(lambda f: "modelTurn" in f.get("serverContent", {}))
    assert chunks > 10  # sleeping a chunk's length after each send would add > 0.1 s
    assert elapsed == pytest.approx(duration, abs=0.06)
