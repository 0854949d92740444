"""The bidi-demo client codec, against frames written by hand in the shape the demo sends
(`event.model_dump_json(exclude_none=True, by_alias=True)`: camelCase keys, bytes as
URL-safe base64), and round trips through real ADK Events."""

from __future__ import annotations

import json

import pytest
from google.adk.events.event import Event as AdkEvent
from google.genai import types

from adkvoice import events as ev
from adkvoice.backends.endpoints import BidiDemoEndpoint, SeedsEndpoint
from adkvoice.backends.remote import remote_backend
from adkvoice.errors import ConfigError
from adkvoice.live_options import LiveOptions
from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.base import FrameError
from adkvoice.wire.bidi_demo import BidiDemoClientCodec

AGENT = '"author":"google_search_agent","invocationId":"e-1f2","id":"9c1","timestamp":1765290000.5'
PARTIAL_TEXT = '{"content":{"parts":[{"text":"Hel"}],"role":"model"},"partial":true,' + AGENT + "}"
WHOLE_TEXT = '{"content":{"parts":[{"text":"Hello"}],"role":"model"},"partial":false,' + AGENT + "}"
OUTPUT_TRANSCRIPTION = (
    '{"outputTranscription":{"text":"It is ","finished":false},"partial":true,' + AGENT + "}"
)
INPUT_TRANSCRIPTION = (
    '{"inputTranscription":{"text":"what time is it","finished":true},' + AGENT + "}"
)
# 6 bytes of PCM (fb ff bf ff 00 00): URL-safe base64 "-_-__wAA", as pydantic writes bytes.
AUDIO = (
    '{"content":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=24000",'
    '"data":"-_-__wAA"}}],"role":"model"},"partial":true,' + AGENT + "}"
)
TURN_COMPLETE = '{"turnComplete":true,' + AGENT + "}"
TURN_COMPLETE_IDLE = '{"turnComplete":true,"interactionStatus":"IDLE",' + AGENT + "}"
INTERRUPTED = '{"interrupted":true,' + AGENT + "}"
FUNCTION_CALL = (
    '{"content":{"parts":[{"functionCall":{"id":"adk-7","args":{"timezone":"UTC"},'
    '"name":"get_current_time"}}],"role":"model"},"longRunningToolIds":[],' + AGENT + "}"
)
FUNCTION_RESPONSE = (
    '{"content":{"parts":[{"functionResponse":{"id":"adk-7","name":"get_current_time",'
    '"response":{"time":"10:42"}}}],"role":"user"},' + AGENT + "}"
)
USAGE = (
    '{"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":5,"totalTokenCount":17},'
    + AGENT
    + "}"
)
USER_ECHO = (
    '{"content":{"parts":[{"text":"hi"}],"role":"user"},"author":"user","invocationId":"e-1"}'
)


def test_client_frames_are_what_the_demo_reads() -> None:
    codec = BidiDemoClientCodec()
    assert codec.encode_text("what time is it?") == '{"type": "text", "text": "what time is it?"}'
    assert json.loads(codec.encode_text('quote " and ü')) == {
        "type": "text",
        "text": 'quote " and ü',
    }
    assert codec.encode_audio(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"  # a binary frame
    # The demo reads only "text" and "image": no activity signals, no goodbye.
    assert codec.encode_activity(True) is None
    assert codec.encode_activity(False) is None
    assert codec.encode_goodbye() is None
    assert codec.name == "bidi-demo"
    assert codec.tool_events


def test_golden_server_frames() -> None:
    codec = BidiDemoClientCodec()
    assert codec.decode(PARTIAL_TEXT) == [ev.AgentText(text="Hel", partial=True)]
    assert codec.decode(WHOLE_TEXT) == [ev.AgentText(text="Hello", partial=False)]
    assert codec.decode(OUTPUT_TRANSCRIPTION) == [
        ev.Transcript(speaker="agent", text="It is ", finished=False)
    ]
    assert codec.decode(INPUT_TRANSCRIPTION) == [
        ev.Transcript(speaker="user", text="what time is it", finished=True)
    ]
    assert codec.decode(AUDIO) == [
        ev.AgentAudio(pcm=b"\xfb\xff\xbf\xff\x00\x00", sample_rate=24_000)
    ]
    assert codec.decode(TURN_COMPLETE) == [ev.TurnComplete()]
    assert codec.decode(TURN_COMPLETE_IDLE) == [ev.TurnComplete(interaction="idle")]
    assert codec.decode(INTERRUPTED) == [ev.Interrupted()]
    (call,) = codec.decode(FUNCTION_CALL)
    assert call == ev.ToolCall(call_id="adk-7", name="get_current_time", args={"timezone": "UTC"})
    (result,) = codec.decode(FUNCTION_RESPONSE)
    assert isinstance(result, ev.ToolResult)
    assert (result.call_id, result.response) == ("adk-7", {"time": "10:42"})
    assert result.duration_s is not None  # timed from its call, across frames
    assert codec.decode(USAGE) == [ev.Usage(prompt_tokens=12, response_tokens=5, total_tokens=17)]
    assert codec.decode(USER_ECHO) == []  # the user's own typed turn


def test_text_client_takes_the_transcript_as_the_reply() -> None:
    """A native-audio demo server speaks whatever the client wants: a text client shows
    the transcript as text and drops the audio; a text server's replies pass unchanged."""
    codec = BidiDemoClientCodec(speech_as_text=True)
    assert codec.decode(OUTPUT_TRANSCRIPTION) == [ev.AgentText(text="It is ", partial=True)]
    assert codec.decode(AUDIO) == []
    assert codec.decode(PARTIAL_TEXT) == [ev.AgentText(text="Hel", partial=True)]
    assert codec.decode(INPUT_TRANSCRIPTION) == [
        ev.Transcript(speaker="user", text="what time is it", finished=True)
    ]


def _adk(**kwargs: object) -> AdkEvent:
    return AdkEvent(author="agent", invocation_id="e-1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "adk_event",
    [
        _adk(content=types.Content(role="model", parts=[types.Part(text="Hi")]), partial=True),
        _adk(
            content=types.Content(
                role="model",
                parts=[
                    types.Part(
                        inline_data=types.Blob(
                            data=bytes(range(256)) * 2, mime_type="audio/pcm;rate=24000"
                        )
                    )
                ],
            )
        ),
        _adk(output_transcription=types.Transcription(text="Hi there", finished=True)),
        _adk(turn_complete=True, interrupted=True),
        _adk(
            content=types.Content(
                role="model",
                parts=[types.Part(function_call=types.FunctionCall(id="c", name="f", args={}))],
            )
        ),
    ],
)
def test_round_trip_through_the_demos_dump(adk_event: AdkEvent) -> None:
    frame = adk_event.model_dump_json(exclude_none=True, by_alias=True)
    assert BidiDemoClientCodec().decode(frame) == AdkEventMapper().map(adk_event)


@pytest.mark.parametrize(
    ("frame", "hint"),
    [
        (b"\x00\x01", "not binary"),
        ('{"turnComplete": "soon"}', "not an ADK Event"),
        ("[1, 2]", "not an ADK Event"),
        ("{not json", "not an ADK Event"),
    ],
)
def test_bad_server_frames(frame: str | bytes, hint: str) -> None:
    with pytest.raises(FrameError, match=hint):
        BidiDemoClientCodec().decode(frame)


# -- the endpoint --------------------------------------------------------------------------


def test_two_path_segments_after_ws_mean_bidi_demo() -> None:
    endpoint = remote_backend("ws://h:1/ws/u1/s1", modality="TEXT").endpoint
    assert isinstance(endpoint, BidiDemoEndpoint)
    assert (endpoint.user_id, endpoint.session_id) == ("u1", "s1")
    assert endpoint.connect_url() == "ws://h:1/ws/u1/s1"  # no is_audio: the server picks
    assert endpoint.subprotocols() is None
    assert endpoint.description(endpoint.codec(None)) == (
        "ws://h:1/ws/u1/s1 · bidi-demo · user u1 · session s1"
    )
    assert isinstance(remote_backend("ws://h:1/ws/s1", modality="TEXT").endpoint, SeedsEndpoint)
    prefixed = remote_backend("wss://h/voice/ws/u1/s1/", modality="AUDIO").endpoint
    assert isinstance(prefixed, BidiDemoEndpoint)
    assert prefixed.session_id == "s1"


def test_proactive_and_affective_become_the_demos_query() -> None:
    live = LiveOptions(proactive=True, affective=True)
    endpoint = BidiDemoEndpoint("ws://h/ws/u/s?x=1", modality="AUDIO", live=live)
    assert endpoint.connect_url() == "ws://h/ws/u/s?x=1&proactivity=true&affective_dialog=true"
    with pytest.raises(ConfigError, match="only --proactive and --affective"):
        BidiDemoEndpoint("ws://h/ws/u/s", modality="AUDIO", live=LiveOptions(voice="Kore"))


def test_capabilities_and_the_notice_up_front() -> None:
    audio = BidiDemoEndpoint("ws://h/ws/u/s", modality="AUDIO")
    assert not audio.capabilities.push_to_talk  # the demo reads no activity signals
    assert audio.capabilities.tool_events
    assert audio.capabilities.user_transcripts
    assert audio.notices() == []
    assert not audio.speak_instead_of_text()  # the server picks the modality
    (notice,) = BidiDemoEndpoint("ws://h/ws/u/s", modality="TEXT").notices()
    assert "transcript is shown as the text reply" in notice


def test_protocol_bidi_takes_any_path_with_two_segments() -> None:
    forced = remote_backend("ws://h/agents/u2/s2", modality="TEXT", protocol="bidi").endpoint
    assert isinstance(forced, BidiDemoEndpoint)
    assert (forced.user_id, forced.session_id) == ("u2", "s2")
    with pytest.raises(ConfigError, match="/ws/USER_ID/SESSION_ID"):
        remote_backend("ws://h/", modality="TEXT", protocol="bidi")
