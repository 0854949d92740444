"""The ADK → adkvoice mapping, fed with real ADK Event objects."""

from google.adk.events.event import Event as AdkEvent
from google.genai import types

from adkvoice import events as ev
from adkvoice.wire.adk_events import AdkEventMapper, audio_rate


def _event(**kwargs: object) -> AdkEvent:
    return AdkEvent(author="assistant", invocation_id="inv", **kwargs)  # type: ignore[arg-type]


def test_partial_text_then_full_text() -> None:
    mapper = AdkEventMapper()
    delta = _event(
        content=types.Content(role="model", parts=[types.Part(text="Hel")]), partial=True
    )
    full = _event(content=types.Content(role="model", parts=[types.Part(text="Hello")]))
    assert mapper.map(delta) == [ev.AgentText(text="Hel", partial=True)]
    assert mapper.map(full) == [ev.AgentText(text="Hello", partial=False)]


def test_thoughts_and_user_echo_are_not_agent_text() -> None:
    mapper = AdkEventMapper()
    thought = _event(
        content=types.Content(role="model", parts=[types.Part(text="hmm", thought=True)])
    )
    user = AdkEvent(
        author="user",
        invocation_id="i",
        content=types.Content(role="user", parts=[types.Part(text="hi")]),
    )
    assert mapper.map(thought) == []
    assert mapper.map(user) == []


def test_audio_keeps_the_rate_from_the_mime_type() -> None:
    mapper = AdkEventMapper()
    blob = types.Blob(data=b"\x00\x00" * 10, mime_type="audio/pcm;rate=24000")
    out = mapper.map(
        _event(content=types.Content(role="model", parts=[types.Part(inline_data=blob)]))
    )
    assert out == [ev.AgentAudio(pcm=b"\x00\x00" * 10, sample_rate=24_000)]
    assert audio_rate("audio/pcm;rate=16000") == 16_000
    assert audio_rate("audio/pcm") == 24_000


def test_tool_call_and_result_are_paired_and_timed() -> None:
    mapper = AdkEventMapper()
    call = types.FunctionCall(id="c1", name="get_current_time", args={"timezone": "UTC"})
    result = types.FunctionResponse(id="c1", name="get_current_time", response={"time": "10:00"})
    (tool_call,) = mapper.map(
        _event(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
    )
    (tool_result,) = mapper.map(
        _event(content=types.Content(role="user", parts=[types.Part(function_response=result)]))
    )
    assert tool_call == ev.ToolCall(call_id="c1", name="get_current_time", args={"timezone": "UTC"})
    assert isinstance(tool_result, ev.ToolResult)
    assert tool_result.response == {"time": "10:00"}
    assert tool_result.duration_s is not None
    assert tool_result.duration_s >= 0


def test_transcriptions_keep_their_speaker() -> None:
    mapper = AdkEventMapper()
    user = _event(input_transcription=types.Transcription(text="what time", finished=True))
    agent = _event(
        output_transcription=types.Transcription(text="It is", finished=False), partial=True
    )
    assert mapper.map(user) == [ev.Transcript(speaker="user", text="what time", finished=True)]
    assert mapper.map(agent) == [ev.Transcript(speaker="agent", text="It is", finished=False)]


def test_control_events() -> None:
    mapper = AdkEventMapper()
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=5, candidates_token_count=7, total_token_count=12
    )
    assert mapper.map(_event(usage_metadata=usage)) == [
        ev.Usage(prompt_tokens=5, response_tokens=7, total_tokens=12)
    ]
    assert mapper.map(_event(interrupted=True)) == [ev.Interrupted()]
    assert mapper.map(_event(turn_complete=True)) == [ev.TurnComplete()]
    update = types.LiveServerSessionResumptionUpdate(new_handle="h1", resumable=True)
    assert mapper.map(_event(live_session_resumption_update=update)) == [
        ev.ResumptionHandle(handle="h1", resumable=True)
    ]
    (notice,) = mapper.map(_event(go_away=types.LiveServerGoAway(time_left="10s")))
    assert isinstance(notice, ev.Notice)
    assert "10s" in notice.message
    (error,) = mapper.map(_event(error_code="SAFETY", error_message="blocked"))
    assert error == ev.ErrorEvent(message="blocked")


def test_interaction_status_rides_on_turn_complete() -> None:
    mapper = AdkEventMapper()
    for status, expected in (
        (types.InteractionStatus.IN_PROGRESS, "in_progress"),
        (types.InteractionStatus.IDLE, "idle"),
        (types.InteractionStatus.REQUIRES_ACTION, "idle"),  # deprecated for IDLE
        (None, None),
    ):
        out = mapper.map(_event(turn_complete=True, interaction_status=status))
        assert out == [ev.TurnComplete(interaction=expected)]


def test_speech_as_text_shows_the_transcript_as_the_reply_and_drops_audio() -> None:
    mapper = AdkEventMapper(speech_as_text=True)
    blob = types.Blob(data=b"\x00\x00" * 10, mime_type="audio/pcm;rate=24000")
    audio = _event(content=types.Content(role="model", parts=[types.Part(inline_data=blob)]))
    delta = _event(output_transcription=types.Transcription(text="It is "), partial=True)
    whole = _event(output_transcription=types.Transcription(text="It is noon.", finished=True))
    heard = _event(input_transcription=types.Transcription(text="time?", finished=True))
    assert mapper.map(audio) == []
    assert mapper.map(delta) == [ev.AgentText(text="It is ", partial=True)]
    assert mapper.map(whole) == [ev.AgentText(text="It is noon.", partial=False)]
    assert mapper.map(heard) == [ev.Transcript(speaker="user", text="time?", finished=True)]


def test_background_calls_are_marked_and_their_results_scheduled() -> None:
    mapper = AdkEventMapper(runs_in_background=lambda name: name == "slow")
    call = types.FunctionCall(id="c1", name="slow", args={"q": "x"})
    quick = types.FunctionCall(id="c2", name="quick", args={})
    out = mapper.map(
        _event(content=types.Content(role="model", parts=[types.Part(function_call=call)]))
    )
    assert out == [ev.ToolCall(call_id="c1", name="slow", args={"q": "x"}, background=True)]
    mapper.map(_event(content=types.Content(role="model", parts=[types.Part(function_call=quick)])))
    default = types.FunctionResponse(id="c1", name="slow", response={"ok": 1})
    told = types.FunctionResponse(
        id="c9", name="slow", response={}, scheduling=types.FunctionResponseScheduling.SILENT
    )
    blocking = types.FunctionResponse(id="c2", name="quick", response={})
    results = [
        mapper.map(
            _event(content=types.Content(role="user", parts=[types.Part(function_response=r)]))
        )[0]
        for r in (default, told, blocking)
    ]
    assert [r.scheduling for r in results if isinstance(r, ev.ToolResult)] == [
        "WHEN_IDLE",  # the model's default for a background call
        "SILENT",  # what the tool asked for
        None,  # a call the model waited for
    ]
