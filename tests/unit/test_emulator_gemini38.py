"""The emulator plays Gemini 3.8 Live: calls it does not wait for, results spoken by their
scheduling, answers in several turns with interactionStatus, cut-ins that cancel a call,
and the setup options each model family takes or refuses. Driven without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from adkvoice.emulator import client_messages as p
from adkvoice.emulator import parse_rules
from adkvoice.emulator.models import emulated_family, setup_refusal
from adkvoice.live_models import TEXT_REFUSAL_REASON, Scheduling
from tests.unit.test_emulator_connection import Harness, user

MODEL_38 = "models/gemini-3.8-live"
MODEL_31 = "models/gemini-3.1-flash-live-preview"
MODEL_ET = "models/gemini-3.8-live-extended-thinking"
MODEL_NATIVE = "models/gemini-2.5-flash-native-audio-latest"
MODEL_HALF = "models/gemini-2.0-flash-live-001"

RULES = parse_rules(
    """
[[rule]]
match = "^search"
call = "search_files"
while = "Let me look."
say = ["Found it.", "It is {result.place}."]

[[rule]]
match = "^count"
say = ["One.", "Two.", "Three."]

[[rule]]
match = "^voice"
say = "{voice} in {language}, thinking {thinking}."
"""
)


def audio_setup(model: str = MODEL_38, **kw: Any) -> p.Setup:
    return p.Setup(
        model=model,
        function_names=("search_files",),
        output_transcription=True,
        **kw,
    )


def timeline(h: Harness) -> list[str]:
    """What crossed the wire, in order: calls, words, cuts and turn ends (with status)."""
    out: list[str] = []
    for frame in h.transport.frames:
        if not isinstance(frame, dict):
            continue
        if "toolCall" in frame:
            out.append("call " + frame["toolCall"]["functionCalls"][0]["name"])
        if "toolCallCancellation" in frame:
            out.append("cancelled")
        content = frame.get("serverContent", {})
        said = content.get("outputTranscription", {}).get("text")
        if said:
            if out and out[-1].startswith("say "):
                out[-1] += said
            else:
                out.append("say " + said)
        if content.get("interrupted"):
            out.append("interrupted")
        if content.get("turnComplete"):
            out.append("end " + content.get("interactionStatus", "-"))
    return out


def call_id(h: Harness) -> str:
    calls = [f for f in h.transport.frames if isinstance(f, dict) and "toolCall" in f]
    return str(calls[-1]["toolCall"]["functionCalls"][0]["id"])


async def respond(h: Harness, scheduling: Scheduling | None) -> None:
    response = p.FunctionResponse(call_id(h), "search_files", {"place": "notes.txt"}, scheduling)
    await h.send(p.ToolResponse((response,)))


@pytest.mark.parametrize("scheduling", [None, "WHEN_IDLE"])
async def test_background_call_then_result_when_idle(scheduling: Scheduling | None) -> None:
    h = Harness(audio_setup(), rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: "end IN_PROGRESS" in timeline(h))
    assert timeline(h) == ["call search_files", "say Let me look.", "end IN_PROGRESS"]
    assert h.stats.background_calls == 1
    await respond(h, scheduling)
    await h.until(lambda: timeline(h)[-1] == "end IDLE")
    assert timeline(h)[3:] == [
        "say Found it.",
        "end IN_PROGRESS",
        "say It is notes.txt.",
        "end IDLE",
    ]
    assert h.stats.schedulings["WHEN_IDLE"] == 1
    assert h.stats.interaction_statuses == ["IN_PROGRESS", "IN_PROGRESS", "IDLE"]


async def test_result_arriving_mid_sentence_waits_for_it_when_idle() -> None:
    from adkvoice.emulator.connection import ConnectionOptions

    h = Harness(audio_setup(), ConnectionOptions(audio_pacing=1.0), rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: any(t.startswith("say") for t in timeline(h)))
    await respond(h, "WHEN_IDLE")
    await h.until(lambda: timeline(h)[-1:] == ["end IDLE"])
    assert "interrupted" not in timeline(h)
    assert timeline(h)[:3] == ["call search_files", "say Let me look.", "end IN_PROGRESS"]


async def test_interrupt_scheduling_cuts_the_filler_short() -> None:
    from adkvoice.emulator.connection import ConnectionOptions

    h = Harness(audio_setup(), ConnectionOptions(audio_pacing=1.0), rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: any(t.startswith("say") for t in timeline(h)))
    await respond(h, "INTERRUPT")
    await h.until(lambda: timeline(h)[-1:] == ["end IDLE"])
    events = timeline(h)
    assert events[events.index("interrupted") + 1] == "end IN_PROGRESS"
    assert events[-4:] == ["say Found it.", "end IN_PROGRESS", "say It is notes.txt.", "end IDLE"]
    assert h.stats.interruptions == 0  # the model's own cut, not the user's


async def test_silent_scheduling_keeps_the_result_unspoken() -> None:
    h = Harness(audio_setup(), rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: "end IN_PROGRESS" in timeline(h))
    await respond(h, "SILENT")
    await h.until(lambda: timeline(h)[-1] == "end IDLE")
    assert timeline(h) == ["call search_files", "say Let me look.", "end IN_PROGRESS", "end IDLE"]
    assert h.session.conversation.history[-1].tool_result == {"place": "notes.txt"}


async def test_cutting_in_before_the_result_cancels_the_call() -> None:
    h = Harness(audio_setup(), rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: "end IN_PROGRESS" in timeline(h))
    await h.send(user("count"))
    await h.until(lambda: timeline(h)[-1:] == ["end IDLE"] and "say Three." in timeline(h))
    events = timeline(h)
    cut = events.index("cancelled")
    assert events[cut + 1] == "end IDLE"  # the interrupted interaction is over
    assert h.stats.tool_call_cancellations == 1
    await respond(h, "WHEN_IDLE")  # the late result is not used
    await h.idle()
    assert h.stats.unmatched_tool_responses == 1
    assert "say Found it." not in timeline(h)


async def test_segments_are_turns_with_status_for_38_and_one_turn_before() -> None:
    h38 = Harness(audio_setup(), rules=RULES)
    await h38.send(user("count"))
    await h38.until(lambda: timeline(h38)[-1:] == ["end IDLE"])
    assert timeline(h38) == [
        "say One.",
        "end IN_PROGRESS",
        "say Two.",
        "end IN_PROGRESS",
        "say Three.",
        "end IDLE",
    ]
    h31 = Harness(audio_setup(MODEL_31), rules=RULES)
    await h31.send(user("count"))
    await h31.until(lambda: h31.stats.turns_answered == 1)
    assert timeline(h31) == ["say One. Two. Three.", "end -"]


async def test_31_waits_for_a_non_blocking_call() -> None:
    """3.1 has no asynchronous function calling: even a NON_BLOCKING declaration blocks."""
    setup = audio_setup(MODEL_31, tool_behaviors=(("search_files", "NON_BLOCKING"),))
    h = Harness(setup, rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: bool(timeline(h)))
    await h.idle()
    assert timeline(h) == ["call search_files"]
    await respond(h, None)
    await h.until(lambda: h.stats.turns_answered == 1)
    assert timeline(h)[1:] == ["say Found it. It is notes.txt.", "end -"]


async def test_blocking_declaration_on_38_is_waited_for() -> None:
    setup = audio_setup(tool_behaviors=(("search_files", "BLOCKING"),))
    h = Harness(setup, rules=RULES)
    await h.send(user("search my notes"))
    await h.until(lambda: bool(timeline(h)))
    await h.idle()
    assert timeline(h) == ["call search_files"]
    await respond(h, None)
    await h.until(lambda: timeline(h)[-1:] == ["end IDLE"])
    assert h.stats.background_calls == 0


async def test_voice_language_and_thinking_reach_the_reply() -> None:
    setup = audio_setup(MODEL_ET, voice="Kore", language="de-DE", thinking=p.Thinking(level="HIGH"))
    h = Harness(setup, rules=RULES)
    await h.send(user("voice"))
    await h.until(lambda: timeline(h)[-1:] == ["end IDLE"])
    assert timeline(h)[0] == "say Kore in de-DE, thinking high."


@pytest.mark.parametrize("barge_in", [True, False])
async def test_no_interruption_answers_speech_after_the_reply(barge_in: bool) -> None:
    from adkvoice.emulator.connection import ConnectionOptions

    loud = p.AudioChunk(b"\x00\x40" * 16000, 16000)  # 1 s, loud
    quiet = p.AudioChunk(b"\x00\x00" * 16000, 16000)
    h = Harness(audio_setup(barge_in=barge_in), ConnectionOptions(audio_pacing=1.0), rules=RULES)
    await h.send(user("count"))
    await h.until(lambda: any(t.startswith("say") for t in timeline(h)))
    await h.send(p.RealtimeInput(audio=(loud,)))
    await h.send(p.RealtimeInput(audio=(quiet,)))
    await h.until(lambda: h.stats.utterances == 1 and timeline(h)[-1:] == ["end IDLE"])
    await h.until(lambda: timeline(h).count("end IDLE") >= (1 if barge_in else 2))
    assert ("interrupted" in timeline(h)) is barge_in
    if not barge_in:  # the whole reply, then the answer to what was said over it
        assert timeline(h)[:6] == [
            "say One.",
            "end IN_PROGRESS",
            "say Two.",
            "end IN_PROGRESS",
            "say Three.",
            "end IDLE",
        ]


# -- what each family refuses in a setup ----------------------------------------------


def refusal(**kw: Any) -> tuple[int, str] | None:
    setup = p.Setup(**kw)
    return setup_refusal(setup, emulated_family(setup.model))


@pytest.mark.parametrize("model", [MODEL_31, MODEL_38, MODEL_ET, MODEL_NATIVE])
def test_audio_only_models_refuse_text_as_gemini_does(model: str) -> None:
    assert refusal(model=model, response_modality="TEXT") == (1007, TEXT_REFUSAL_REASON)
    assert refusal(model=model, thinking=_thinking_for(model)) is None


def _thinking_for(model: str) -> p.Thinking | None:
    return p.Thinking(level="LOW") if model == MODEL_ET else None


def test_half_cascade_takes_text() -> None:
    assert refusal(model=MODEL_HALF, response_modality="TEXT") is None


@pytest.mark.parametrize(
    ("kw", "why"),
    [
        ({"model": MODEL_38, "proactive_audio": False}, "always on"),
        ({"model": MODEL_38, "proactive_audio": True}, None),
        ({"model": MODEL_31, "proactive_audio": True}, "no proactive audio"),
        ({"model": MODEL_NATIVE, "proactive_audio": True}, None),
        ({"model": MODEL_38, "affective_dialog": True}, "no affective dialog"),
        ({"model": MODEL_NATIVE, "affective_dialog": True}, None),
        ({"model": MODEL_38, "thinking": p.Thinking(level="LOW")}, "does not take a thinking"),
        ({"model": MODEL_31, "thinking": p.Thinking(level="LOW")}, None),
        ({"model": MODEL_31, "thinking": p.Thinking(budget=100)}, "not thinkingBudget"),
        ({"model": MODEL_NATIVE, "thinking": p.Thinking(budget=0)}, None),
        ({"model": MODEL_NATIVE, "thinking": p.Thinking(level="LOW")}, "not thinkingLevel"),
        ({"model": MODEL_ET}, "needs a thinking level"),
        ({"model": MODEL_ET, "thinking": p.Thinking(level="MINIMAL")}, "not supported"),
        (
            {
                "model": MODEL_ET,
                "thinking": p.Thinking(level="LOW"),
                "function_names": ("f",),
                "tool_behaviors": (("f", "BLOCKING"),),
            },
            "Only NON_BLOCKING",
        ),
        ({"model": MODEL_38, "voice": "Kore"}, None),
        ({"model": MODEL_38, "voice": "Nobody"}, "Unknown voice"),
        ({"model": MODEL_HALF, "voice": "Sulafat"}, "Unknown voice"),
        (
            {"model": "models/gemini-3.5-live-translate-preview", "function_names": ("f",)},
            "no tools",
        ),
    ],
)
def test_setup_options_each_family_refuses(kw: dict[str, Any], why: str | None) -> None:
    refused = refusal(**kw)
    if why is None:
        assert refused is None
    else:
        assert refused is not None
        code, reason = refused
        assert code == 1007
        assert reason.startswith("Request contains an invalid argument.")
        assert why in reason


@pytest.mark.parametrize("proactive", [None, True])
async def test_proactive_audio_leaves_wordless_sound_unanswered(proactive: bool | None) -> None:
    """With proactive audio the model may choose not to answer: the emulator does not answer
    an utterance in which the recogniser found no words."""
    setup = audio_setup(MODEL_NATIVE, proactive_audio=proactive, input_transcription=True)
    h = Harness(setup, rules=RULES)
    await h.send(p.RealtimeInput(audio=(p.AudioChunk(b"\x00\x40" * 16000, 16000),)))
    await h.send(p.RealtimeInput(audio=(p.AudioChunk(b"\x00\x00" * 16000, 16000),)))
    await h.until(lambda: h.stats.utterances == 1)
    await h.idle()
    if proactive:
        assert h.stats.ignored_utterances == 1
        assert timeline(h) == []
    else:
        await h.until(lambda: h.stats.turns_answered == 1)
        assert timeline(h)[0].startswith("say You said: [speech ")
