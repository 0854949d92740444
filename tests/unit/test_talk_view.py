"""The voice view's state and status line, rendered into StringIO."""

import io

from rich.console import Console

from adkvoice import events as ev
from adkvoice.ui.talk_view import (
    TalkState,
    TalkView,
    apply_event,
    latency_line,
    meter,
    playback_finished,
    status_line,
)


def test_a_spoken_turn_moves_through_the_modes() -> None:
    state = TalkState()
    assert state.mode == "listening"
    apply_event(state, ev.Transcript(speaker="user", text="what ", finished=False))
    apply_event(state, ev.Transcript(speaker="user", text="time", finished=False))
    assert state.user_partial == "what time"
    apply_event(state, ev.Transcript(speaker="user", text="what time", finished=True))
    assert state.mode == "thinking"
    apply_event(state, ev.AgentAudio(pcm=b"\x00\x00" * 100))
    apply_event(state, ev.Transcript(speaker="agent", text="It is ", finished=False))
    assert state.mode == "speaking"
    apply_event(state, ev.Transcript(speaker="agent", text="It is noon.", finished=True))
    apply_event(state, ev.TurnComplete())
    assert state.mode == "speaking"  # audio is still playing
    playback_finished(state)
    assert state.mode == "listening"
    lines = [line.plain for line in state.take_lines()]
    assert lines == ["you 🎙 what time", "agent 🔊 It is noon."]


def test_interruption_keeps_what_was_said() -> None:
    state = TalkState()
    apply_event(state, ev.AgentAudio(pcm=b"\x00\x00"))
    apply_event(state, ev.Transcript(speaker="agent", text="Once upon a", finished=False))
    apply_event(state, ev.Interrupted())
    assert state.mode == "listening"
    assert [line.plain for line in state.take_lines()] == [
        "agent 🔊 Once upon a —",
        "⏹ interrupted",
    ]


def test_status_line_shows_mode_meter_and_keys() -> None:
    state = TalkState(mic_level_db=-30.0)
    line = status_line(state).plain
    assert line.startswith("● listening")
    assert "m mute · q quit" in line
    state.muted = True
    assert status_line(state).plain.startswith("✕ muted")
    ptt = TalkState(push_to_talk=True)
    assert status_line(ptt).plain.startswith("space to talk")
    ptt.holding_talk_key = True
    assert status_line(ptt).plain.startswith("● talk")


def test_meter_is_bounded() -> None:
    assert meter(-120.0).plain == "▯" * 20
    assert meter(0.0).plain == "▮" * 20
    assert meter(-30.0).plain.count("▮") == 10


def test_latency_line_splits_model_and_local_time() -> None:
    assert (
        latency_line(0.42, 0.031).plain
        == "── voice-to-voice 451 ms (model 420 ms · adkvoice 31 ms)"
    )


def test_view_prints_finished_lines_to_the_console() -> None:
    buffer = io.StringIO()
    view = TalkView(Console(file=buffer, width=80, color_system=None), TalkState())
    view.start()
    view.handle(ev.ToolCall(call_id="1", name="get_current_time", args={}))
    view.handle(
        ev.ToolResult(
            call_id="1", name="get_current_time", response={"time": "9"}, duration_s=0.002
        )
    )
    view.print_line(latency_line(0.3, 0.02))
    view.stop()
    assert buffer.getvalue().splitlines() == [
        "⚙ get_current_time()",
        '  ↳ {"time": "9"} · 2 ms',
        "── voice-to-voice 320 ms (model 300 ms · adkvoice 20 ms)",
    ]


def test_between_segments_the_status_says_the_agent_is_still_working() -> None:
    state = TalkState()
    apply_event(state, ev.Transcript(speaker="user", text="search my files", finished=True))
    apply_event(state, ev.ToolCall(call_id="c", name="search_files", args={}, background=True))
    apply_event(state, ev.AgentAudio(pcm=b"\x00\x00" * 100))
    apply_event(state, ev.TurnComplete(interaction="in_progress"))
    playback_finished(state)
    assert state.mode == "working"
    assert "still working" in status_line(state).plain
    apply_event(state, ev.AgentAudio(pcm=b"\x00\x00" * 100))
    assert state.mode == "speaking"
    apply_event(state, ev.TurnComplete(interaction="idle"))
    apply_event(state, ev.AnswerComplete())
    playback_finished(state)
    assert state.mode == "listening"


def test_cutting_in_while_the_agent_works_returns_to_listening() -> None:
    state = TalkState()
    apply_event(state, ev.TurnComplete(interaction="in_progress"))
    assert state.mode == "working"
    apply_event(state, ev.Interrupted(source="user"))
    assert state.mode == "listening"
