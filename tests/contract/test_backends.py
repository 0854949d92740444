"""The same behaviour over every backend a user can pick.

Each test runs over every transport in support.KINDS (embedded, serve's routes, the
reference sample and bidi-demo servers, ADK's api server; see support.py). A test is
skipped for a transport only where its capabilities say it cannot carry the feature, and
then it asserts the capability is False and the feature is refused.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from adkvoice.errors import ConfigError
from adkvoice.events import (
    AgentAudio,
    AnswerComplete,
    ErrorEvent,
    Event,
    Notice,
    ToolCall,
    ToolResult,
    TurnComplete,
)
from tests.contract.support import (
    KINDS,
    Live,
    describe,
    indexes,
    is_answer_text,
    shown_text,
    since_last_cut,
)
from tests.integration.emulator_support import MODEL_2X, MODEL_3X, chunks, silence_16k

pytestmark = [
    pytest.mark.integration,
    # reason: ADK's own api server (the run_live backend) builds services ADK marks
    # experimental; the warning is ADK's, about ADK.
    pytest.mark.filterwarnings(r"ignore:\[EXPERIMENTAL\]:UserWarning"),
]

TIME_ANSWER = "It is 10:42."  # the emulator's time rule, over the test agent's Clock


def tool_cases() -> list[object]:
    """Every transport with a 2.x model (which ends a model turn after its tool call, the
    answer coming in the next turn) and with a 3.x one (one model turn throughout)."""
    out: list[object] = []
    for kind in KINDS:
        for model, label in ((MODEL_2X, "2.x"), (MODEL_3X, "3.x")):
            out.append(pytest.param(kind, model, id=f"{kind}-{label}"))
    return out


def assert_one_answer_after_a_turn_complete(events: list[Event]) -> int:
    """Exactly one AnswerComplete, after a TurnComplete; its index."""
    done = indexes(events, AnswerComplete)
    assert len(done) == 1, describe(events)
    assert any(i < done[0] for i in indexes(events, TurnComplete)), describe(events)
    return done[0]


# 1 -----------------------------------------------------------------------------------------
async def test_typed_turn_gets_one_answer(text_live: Live) -> None:
    await text_live.backend.send_text("my name is Ada")
    events = await text_live.events.answers(1, text="You said: my name is Ada")
    done = assert_one_answer_after_a_turn_complete(events)
    assert shown_text(events) == "You said: my name is Ada", describe(events)
    assert all(i < done for i, e in enumerate(events) if is_answer_text(e)), describe(events)


# 2 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "model"), tool_cases())
async def test_tool_round_trip(text_live: Live) -> None:
    await text_live.backend.send_text("what time is it?")
    events = await text_live.events.answers(1, text=TIME_ANSWER)
    done = assert_one_answer_after_a_turn_complete(events)
    assert shown_text(events) == TIME_ANSWER, describe(events)
    assert text_live.clock.calls == 1
    if not text_live.backend.capabilities.tool_events:
        return  # the answer is all this transport shows of the tool
    calls = [e for e in events if isinstance(e, ToolCall)]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [c.name for c in calls] == ["get_current_time"], describe(events)
    assert [r.call_id for r in results] == [calls[0].call_id], describe(events)
    assert results[0].response == {"time": "10:42"}
    first_text = next(i for i, e in enumerate(events) if is_answer_text(e))
    assert events.index(calls[0]) < events.index(results[0]) < first_text < done


# 3 -----------------------------------------------------------------------------------------
async def test_two_turns_in_a_row(text_live: Live) -> None:
    await text_live.backend.send_text("my name is Ada")
    first = await text_live.events.answers(1, text="You said: my name is Ada")
    assert shown_text(first) == "You said: my name is Ada", describe(first)
    await text_live.backend.send_text("what did I say?")
    events = await text_live.events.answers(2, text="Before that you said: my name is Ada")
    done = indexes(events, AnswerComplete)
    assert len(done) == 2, describe(events)
    assert shown_text(events[: done[0]]) == "You said: my name is Ada", describe(events)
    second = events[done[0] + 1 : done[1]]
    assert shown_text(second) == "Before that you said: my name is Ada", describe(events)
    assert any(isinstance(e, TurnComplete) for e in second), describe(events)
    assert shown_text(events[done[1] :]) == "", describe(events)


# 4 -----------------------------------------------------------------------------------------
async def test_spoken_turn_gets_speech(speech: bytes, audio_live: Live) -> None:
    await audio_live.model_connected()  # so no audio waits in a backend's bounded hold
    for piece in chunks(silence_16k(0.2) + speech + silence_16k(0.8), ms=40):
        await audio_live.backend.send_audio(piece)
        await asyncio.sleep(0)
    events = await audio_live.events.answers(1, text="You said: [speech ")
    done = assert_one_answer_after_a_turn_complete(events)
    audio = [e for e in events if isinstance(e, AgentAudio)]
    assert audio, describe(events)
    assert all(events.index(e) < done for e in audio), describe(events)
    assert {e.sample_rate for e in audio} == {24_000}
    total = b"".join(e.pcm for e in audio)
    assert len(total) > 24_000, len(total)  # over half a second of speech
    assert len(total) % 2 == 0
    assert audio_live.emulator.stats.utterances == 1


# 5 -----------------------------------------------------------------------------------------
async def _talk_with_the_key(live: Live, speech: bytes) -> None:
    await live.backend.send_activity_start()
    for piece in chunks(speech, ms=40):
        await live.backend.send_audio(piece)
    await live.backend.send_activity_end()


async def _refuses_push_to_talk(live: Live) -> None:
    assert live.backend.capabilities.push_to_talk is False
    with pytest.raises(ConfigError, match="push-to-talk"):
        await live.backend.send_activity_start()
    pytest.skip(f"{live.kind} carries no activity signals (its capabilities say so)")


async def _spoken_answer(live: Live) -> None:
    events = await live.events.answers(1, text="You said: [speech ", timeout_s=5)
    done = assert_one_answer_after_a_turn_complete(events)
    assert any(isinstance(e, AgentAudio) for e in events[:done]), describe(events)
    assert live.emulator.stats.utterances == 1


async def test_push_to_talk(speech: bytes, ptt_live: Live) -> None:
    if not ptt_live.backend.capabilities.push_to_talk:
        await _refuses_push_to_talk(ptt_live)
    await ptt_live.model_connected()
    await _talk_with_the_key(ptt_live, speech)
    await _spoken_answer(ptt_live)


async def test_push_to_talk_right_after_start(speech: bytes, ptt_live: Live) -> None:
    """The key pressed and released as soon as the backend has started, before its model
    connection is up: the speech between the signals is still the user's turn."""
    if not ptt_live.backend.capabilities.push_to_talk:
        await _refuses_push_to_talk(ptt_live)
    await _talk_with_the_key(ptt_live, speech)
    await _spoken_answer(ptt_live)


# 6 -----------------------------------------------------------------------------------------
async def test_close_while_a_turn_is_in_flight(text_live: Live) -> None:
    text_live.emulator.faults.slow_replies(0.5)
    await text_live.backend.send_text("my name is Ada")
    await text_live.events.until(lambda: any(map(is_answer_text, text_live.events.seen)))
    began = time.monotonic()
    async with asyncio.timeout(5):
        await text_live.backend.close()
    assert time.monotonic() - began < 5
    async with asyncio.timeout(5):
        await asyncio.shield(text_live.events.task)  # events() has ended
    assert text_live.events.ended
    assert text_live.events.error is None, text_live.events.error
    assert text_live.events.count(AnswerComplete) == 0, describe(text_live.events.seen)


# 7 -----------------------------------------------------------------------------------------
async def test_dropped_model_connection_mid_answer(text_live: Live) -> None:
    """The model's connection drops in the middle of the answer (after the tool ran): one
    whole answer still arrives, once, and the tool is not run again.

    Two kinds of server cannot give that, and the test says what they give instead:
    ADK's /run_sse ends the run with the model's error (nothing in it resumes a run), so
    the failure is one error line and the next turn is answered; the sample's servers
    start a new session for every connection, so the turn sent again runs the tool again.
    """
    text_live.emulator.faults.drop_mid_reply()
    await text_live.backend.send_text("what time is it?")
    if text_live.kind == "run_sse":
        failed = await text_live.events.answers(1, allow_warnings=True)
        errors = [e for e in failed if isinstance(e, ErrorEvent)]
        assert len(errors) == 1, describe(failed)
        assert "peer closed connection" in errors[0].message
        await text_live.backend.send_text("what time is it?")
        events = await text_live.events.answers(2, text=TIME_ANSWER, allow_warnings=True)
        assert shown_text(events[len(failed) :]) == TIME_ANSWER, describe(events)
        assert not any(isinstance(e, ErrorEvent) for e in events[len(failed) :])
        return
    events = await text_live.events.answers(1, text=TIME_ANSWER, allow_warnings=True)
    assert text_live.emulator.stats.faults_fired.count("drop") == 1
    assert_one_answer_after_a_turn_complete(events)
    assert shown_text(since_last_cut(events)) == TIME_ANSWER, describe(events)
    assert text_live.clock.calls == (2 if text_live.kind.endswith("@sample") else 1)
    warnings = [e for e in events if isinstance(e, Notice) and e.level == "warning"]
    if not text_live.kind.startswith("seeds"):  # the seeds protocol has no notice frame
        assert warnings, describe(events)  # the user is told, not left guessing
    assert all("reconnecting" in w.message for w in warnings), describe(events)


# 8 -----------------------------------------------------------------------------------------
def red_jpeg() -> bytes:
    """A 64 x 48 red JPEG, as a camera frame would come (OpenCV, the vision extra)."""
    import numpy as np

    cv2 = pytest.importorskip("cv2", reason="the vision extra is not installed")
    picture = np.zeros((48, 64, 3), dtype=np.uint8)
    picture[:, :] = (0, 0, 255)  # BGR
    ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(encoded.tobytes())


@pytest.mark.parametrize(("kind", "model"), tool_cases())
async def test_the_model_sees_an_image(text_live: Live) -> None:
    """An image sent before a typed turn is what the model answers "what do you see?"
    about; a transport that carries no images says so up front and refuses one."""
    jpeg = red_jpeg()
    backend = text_live.backend
    if not backend.capabilities.images:
        with pytest.raises(ConfigError, match="carries no images"):
            await backend.send_image(jpeg, "image/jpeg")
        pytest.skip(f"{text_live.kind} carries no images (its capabilities say so)")
    await backend.send_image(jpeg, "image/jpeg")
    await backend.send_text("what do you see?")
    seen = "I see 1 frame(s), 64×48, mostly red (#"
    events = await text_live.events.answers(1, text=seen)
    assert_one_answer_after_a_turn_complete(events)
    assert shown_text(events).startswith(seen), describe(events)
    assert text_live.emulator.stats.connection_log[-1].sight.frames == 1
