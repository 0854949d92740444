from adkvoice import events as ev
from adkvoice.backends.turns import TurnTracker


def _run(events: list[ev.Event]) -> list[bool]:
    tracker = TurnTracker()
    return [tracker.feed(e) for e in events]


CALL = ev.ToolCall(call_id="1", name="t", args={})
RESULT = ev.ToolResult(call_id="1", name="t", response={}, duration_s=None)
TEXT = ev.AgentText(text="It is noon.", partial=False)


def test_plain_reply_ends_at_turn_complete() -> None:
    assert _run([TEXT, ev.TurnComplete()]) == [False, True]


def test_gemini_2x_tool_round_spans_two_model_turns() -> None:
    # 2.x: the tool call's own turn completes before the answer that uses the result.
    assert _run([CALL, RESULT, ev.TurnComplete(), TEXT, ev.TurnComplete()]) == [
        False,
        False,
        False,
        False,
        True,
    ]


def test_gemini_3x_tool_round_is_one_model_turn() -> None:
    assert _run([CALL, RESULT, TEXT, ev.TurnComplete()]) == [False, False, False, True]


def test_silence_after_a_tool_still_ends_the_turn() -> None:
    assert _run([CALL, RESULT, ev.TurnComplete(), ev.TurnComplete()]) == [False, False, False, True]


def test_speech_and_audio_count_as_answers() -> None:
    speech = ev.Transcript(speaker="agent", text="ok", finished=True)
    assert _run([CALL, RESULT, ev.TurnComplete(), speech, ev.TurnComplete()])[-1]
    audio = ev.AgentAudio(pcm=b"\x00\x00")
    assert _run([CALL, RESULT, ev.TurnComplete(), audio, ev.TurnComplete()])[-1]
    user = ev.Transcript(speaker="user", text="hm", finished=True)
    assert not _run([CALL, RESULT, ev.TurnComplete(), user, ev.TurnComplete()])[3]


def test_without_tool_events_an_empty_model_turn_is_a_tool_round() -> None:
    tracker = TurnTracker(tools_unseen=True)
    assert not tracker.feed(ev.TurnComplete())  # the turn that asked for the tool
    assert not tracker.feed(ev.AgentText(text="It is 10:42.", partial=False))
    assert tracker.feed(ev.TurnComplete())
    # Two empty turns in a row still end the answer (nothing to say after the tool).
    assert not tracker.feed(ev.TurnComplete())
    assert tracker.feed(ev.TurnComplete())
