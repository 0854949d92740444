import json

import pytest

from adkvoice import events as ev


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev.UserText(text="hi"), {"type": "user_text", "text": "hi"}),
        (
            ev.AgentText(text="Hel", partial=True),
            {"type": "agent_text", "text": "Hel", "partial": True},
        ),
        (
            ev.Transcript(speaker="user", text="hello", finished=True),
            {"type": "transcript", "speaker": "user", "text": "hello", "finished": True},
        ),
        (
            ev.ToolCall(call_id="c1", name="get_current_time", args={"timezone": "UTC"}),
            {
                "type": "tool_call",
                "id": "c1",
                "name": "get_current_time",
                "args": {"timezone": "UTC"},
            },
        ),
        (
            ev.ToolResult(
                call_id="c1",
                name="get_current_time",
                response={"time": "10:00"},
                duration_s=0.0123456,
            ),
            {
                "type": "tool_result",
                "id": "c1",
                "name": "get_current_time",
                "response": {"time": "10:00"},
                "duration_s": 0.0123,
            },
        ),
        (ev.TurnComplete(), {"type": "turn_complete"}),
        (ev.Interrupted(), {"type": "interrupted"}),
        (
            ev.Usage(prompt_tokens=3, response_tokens=4, total_tokens=7),
            {"type": "usage", "prompt_tokens": 3, "response_tokens": 4, "total_tokens": 7},
        ),
        (
            ev.ResumptionHandle(handle="h", resumable=True),
            {"type": "resumption", "handle": "h", "resumable": True},
        ),
        (ev.Notice(message="m"), {"type": "notice", "message": "m", "level": "info"}),
        (ev.ErrorEvent(message="boom"), {"type": "error", "message": "boom", "retryable": False}),
    ],
)
def test_json_dict_has_type_and_fields(event: ev.Event, expected: dict[str, object]) -> None:
    out = ev.to_json_dict(event)
    assert isinstance(out.pop("t"), float)
    assert out == expected
    json.dumps(out)  # JSON-serialisable


def test_audio_is_summarised_unless_asked_for() -> None:
    chunk = ev.AgentAudio(pcm=b"\x01\x00" * 2400, sample_rate=24_000)
    assert chunk.duration_s == pytest.approx(0.1)
    summary = ev.to_json_dict(chunk)
    assert summary["bytes"] == 4800
    assert "data" not in summary
    full = ev.to_json_dict(chunk, include_audio=True)
    assert full["data"].startswith("AQAB")


def test_every_event_type_has_a_name() -> None:
    names = {ev.event_type(cls.__new__(cls)) for cls in ev._TYPE_NAMES}
    assert len(names) == len(ev._TYPE_NAMES)
