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


def _done(status: ev.InteractionStatus) -> ev.TurnComplete:
    return ev.TurnComplete(interaction=status)


def test_model_that_reports_its_status_ends_the_answer_at_idle() -> None:
    # Gemini 3.8: a background call, a filler turn, then the result in two more turns.
    background = ev.ToolCall(call_id="1", name="t", args={}, background=True)
    filler = ev.AgentText(text="Let me look.", partial=False)
    assert _run(
        [
            background,
            filler,
            _done("in_progress"),
            RESULT,
            TEXT,
            _done("in_progress"),
            TEXT,
            _done("idle"),
        ]
    ) == [False, False, False, False, False, False, False, True]


def test_idle_ends_the_answer_even_right_after_a_tool_result() -> None:
    # SILENT scheduling: the result is not spoken, the model goes idle.
    assert _run([CALL, TEXT, _done("in_progress"), RESULT, _done("idle")])[-1]


def test_a_late_result_does_not_hold_up_the_next_answer() -> None:
    tracker = TurnTracker()
    for event in (CALL, _done("idle")):
        tracker.feed(event)
    assert tracker.feed(RESULT) is False  # a cancelled call's result, after the cut-in
    assert [tracker.feed(e) for e in (TEXT, _done("idle"))] == [False, True]
