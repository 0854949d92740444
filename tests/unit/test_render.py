"""Views rendered into StringIO: what a user sees for each kind of event."""

import io
import json

from rich.console import Console

from adkvoice import events as ev
from adkvoice.ui.chat_view import JsonLinesView, PlainChatView, RichChatView
from adkvoice.ui.lines import format_call, format_value


def _rich() -> tuple[RichChatView, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, force_terminal=False)
    return RichChatView(console), buffer


def test_streamed_text_is_shown_once() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="hello"))
    for delta in ("Hel", "lo ", "there"):
        view.handle(ev.AgentText(text=delta, partial=True))
    view.handle(ev.AgentText(text="Hello there", partial=False))
    view.handle(ev.Usage(prompt_tokens=1, response_tokens=2, total_tokens=3))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    lines = out.getvalue().splitlines()
    assert lines[0] == "agent › Hello there"
    assert lines[1].startswith("── ")
    assert "3 tokens" in lines[1]
    assert out.getvalue().count("Hello there") == 1


def test_whole_text_without_deltas_is_printed() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="hi"))
    view.handle(ev.AgentText(text="Hi!", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    assert out.getvalue().splitlines()[0] == "agent › Hi!"


def test_tool_call_shows_name_args_result_and_duration() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="time?"))
    view.handle(ev.ToolCall(call_id="1", name="get_current_time", args={"timezone": "UTC"}))
    view.handle(
        ev.ToolResult(
            call_id="1", name="get_current_time", response={"time": "10:00"}, duration_s=0.004
        )
    )
    view.handle(ev.AgentText(text="It is 10:00.", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    text = out.getvalue()
    assert '⚙ get_current_time(timezone="UTC")' in text
    assert '↳ {"time": "10:00"} · 4 ms' in text
    assert "agent › It is 10:00." in text


def test_interruption_and_speech_transcripts() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="talk"))
    view.handle(ev.Transcript(speaker="agent", text="Once upon", finished=False))
    view.handle(ev.AgentAudio(pcm=b"\x00\x00" * 24_000))
    view.handle(ev.Interrupted())
    view.handle(ev.Transcript(speaker="user", text="stop", finished=True))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    lines = out.getvalue().splitlines()
    assert lines[0] == "agent 🔊 Once upon"
    assert lines[1] == "⏹ interrupted"
    assert lines[2] == "you 🎙 stop"
    assert "1.0 s of speech" in lines[3]


def test_notices_and_errors() -> None:
    view, out = _rich()
    view.handle(ev.Notice(message="reconnecting", level="warning"))
    view.handle(ev.ErrorEvent(message="model blocked the reply"))
    assert out.getvalue().splitlines() == ["! reconnecting", "✗ model blocked the reply"]


def test_plain_view_prints_only_replies() -> None:
    out = io.StringIO()
    view = PlainChatView(out)
    view.handle(ev.UserText(text="hello"))
    view.handle(ev.AgentText(text="Hel", partial=True))
    view.handle(ev.AgentText(text="lo", partial=True))
    view.handle(ev.AgentText(text="Hello", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    view.handle(ev.UserText(text="time?"))
    view.handle(ev.ToolCall(call_id="1", name="t", args={}))
    view.handle(ev.ToolResult(call_id="1", name="t", response={}, duration_s=None))
    view.handle(ev.Transcript(speaker="agent", text="It is noon.", finished=True))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    view.close()
    assert out.getvalue() == "Hello\nIt is noon.\n"
    assert "\x1b" not in out.getvalue()


def test_plain_view_keeps_a_cut_and_asked_again_reply_on_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PlainChatView(out, err)
    view.handle(ev.UserText(text="hello"))
    view.handle(ev.AgentText(text="Hel", partial=True))
    view.handle(ev.Interrupted())
    view.handle(ev.Notice(message="asking again", level="warning"))
    view.handle(ev.AgentText(text="Hello there", partial=True))
    view.handle(ev.AgentText(text="Hello there", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    view.close()
    assert out.getvalue() == "Hel… Hello there\n"
    assert err.getvalue() == "asking again\n"


def test_json_lines_view_writes_one_object_per_event() -> None:
    out = io.StringIO()
    view = JsonLinesView(out)
    view.handle(ev.UserText(text="hi"))
    view.handle(ev.AgentText(text="Hi", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["type"] for r in records] == [
        "user_text",
        "agent_text",
        "turn_complete",
        "answer_complete",
    ]


def test_value_formatting_is_bounded() -> None:
    assert format_call("f", {"a": 1, "b": "x"}) == 'f(a=1, b="x")'
    long = format_value({"k": "v" * 500})
    assert len(long) == 120
    assert long.endswith("…")


def test_a_tool_round_ends_with_one_summary_line() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="time?"))
    view.handle(ev.ToolCall(call_id="1", name="get_current_time", args={}))
    view.handle(ev.ToolResult(call_id="1", name="get_current_time", response={}, duration_s=0.001))
    view.handle(ev.TurnComplete())  # Gemini 2.x: the turn that asked for the tool
    view.handle(ev.AgentText(text="It is noon.", partial=False))
    view.handle(ev.TurnComplete())
    view.handle(ev.AnswerComplete())
    assert sum(line.startswith("── ") for line in out.getvalue().splitlines()) == 1


def test_only_the_answers_end_gets_a_summary_line() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="time?"))
    view.handle(ev.ToolCall(call_id="1", name="t", args={}))
    view.handle(ev.TurnComplete())
    assert not any(line.startswith("── ") for line in out.getvalue().splitlines())
    view.handle(ev.AnswerComplete())
    assert out.getvalue().splitlines()[-1].startswith("── ")


def test_the_summary_times_come_from_the_events() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="hi", at=100.0))
    view.handle(ev.AgentText(text="Hi!", partial=False, at=100.25))
    view.handle(ev.TurnComplete(at=101.0))
    view.handle(ev.AnswerComplete(at=101.5))
    assert "── 1.50 s · first output 250 ms" in out.getvalue()


def test_background_tool_and_its_later_result_name_the_call() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="search"))
    view.handle(ev.ToolCall(call_id="c", name="search_files", args={"query": "x"}, background=True))
    view.handle(ev.AgentText(text="Let me look.", partial=False))
    view.handle(ev.TurnComplete(interaction="in_progress"))
    view.handle(
        ev.ToolResult(
            call_id="c",
            name="search_files",
            response={"hits": 2},
            duration_s=2.5,
            scheduling="WHEN_IDLE",
        )
    )
    view.handle(ev.AgentText(text="Two files.", partial=False))
    view.handle(ev.TurnComplete(interaction="idle"))
    view.handle(ev.AnswerComplete())
    lines = out.getvalue().splitlines()
    assert lines[0] == '⚙ search_files(query="x") · running in background'
    assert lines[1] == "agent › Let me look."
    assert lines[2] == '  ↳ search_files → {"hits": 2} · 2.50 s · spoken when the agent is free'
    assert lines[3] == "agent › Two files."
    assert lines[4].startswith("── ")
    assert len(lines) == 5  # one timing line for the whole answer


def test_json_lines_carry_background_scheduling_and_interaction_status() -> None:
    out = io.StringIO()
    view = JsonLinesView(out)
    view.handle(ev.ToolCall(call_id="c", name="s", args={}, background=True))
    view.handle(
        ev.ToolResult(call_id="c", name="s", response={}, duration_s=1.0, scheduling="SILENT")
    )
    view.handle(ev.TurnComplete(interaction="in_progress"))
    view.handle(ev.TurnComplete())
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[0]["background"] is True
    assert rows[1]["scheduling"] == "SILENT"
    assert rows[2]["interaction_status"] == "in_progress"
    assert "interaction_status" not in rows[3]


def test_piped_chat_writes_an_answer_of_several_turns_on_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = PlainChatView(out, err)
    view.handle(ev.UserText(text="search"))
    view.handle(ev.AgentText(text="Let me look.", partial=False))
    view.handle(ev.TurnComplete(interaction="in_progress"))
    view.handle(ev.AgentText(text="Found ", partial=True))
    view.handle(ev.AgentText(text="it.", partial=True))
    view.handle(ev.AgentText(text="Found it.", partial=False))
    view.handle(ev.TurnComplete(interaction="idle"))
    view.handle(ev.AnswerComplete())
    assert out.getvalue() == "Let me look. Found it.\n"


def test_a_result_landing_mid_sentence_does_not_repeat_the_sentence() -> None:
    view, out = _rich()
    view.handle(ev.UserText(text="search"))
    view.handle(ev.ToolCall(call_id="c", name="s", args={}, background=True))
    view.handle(ev.AgentText(text="Let me ", partial=True))
    view.handle(
        ev.ToolResult(call_id="c", name="s", response={}, duration_s=0.1, scheduling="WHEN_IDLE")
    )
    view.handle(ev.AgentText(text="look.", partial=True))
    view.handle(ev.AgentText(text="Let me look.", partial=False))
    view.handle(ev.TurnComplete(interaction="in_progress"))
    view.handle(ev.AgentText(text="Found it.", partial=False))
    view.handle(ev.TurnComplete(interaction="idle"))
    view.handle(ev.AnswerComplete())
    lines = out.getvalue().splitlines()
    assert lines[1] == "agent › Let me "
    assert lines[2].startswith("  ↳ s → {}")
    assert lines[3] == "agent › look."
    assert lines[4] == "agent › Found it."
    assert out.getvalue().count("Let me") == 1
