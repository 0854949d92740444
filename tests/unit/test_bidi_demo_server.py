"""The bidi-demo server codec (`adkvoice serve`'s `/ws/USER/SESSION`): client frames as
the demo's page sends them, adkvoice's events written as ADK `Event` JSON (golden frames,
compared without the per-event `id` and `timestamp`), and round trips through
`BidiDemoClientCodec`, the client adkvoice uses for bidi-demo servers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.adk.events.event import Event as AdkEvent

from adkvoice import events as ev
from adkvoice.errors import ConfigError
from adkvoice.live_options import LiveOptions
from adkvoice.server.bidi_ws import hub_key, live_options, speaks_only
from adkvoice.wire.base import ActivityInput, AudioInput, FrameError, Hello, ImageInput, TextInput
from adkvoice.wire.bidi_demo import BidiDemoClientCodec, BidiDemoServerCodec, decode_client_frame

AUTHOR = "served"
INVOCATION = "e-7"
# What ADK puts on every Event besides what the event says.
ADK_DEFAULTS: dict[str, Any] = {
    "invocationId": INVOCATION,
    "actions": {
        "stateDelta": {},
        "artifactDelta": {},
        "requestedAuthConfigs": {},
        "requestedToolConfirmations": {},
    },
    "nodeInfo": {"path": ""},
}


def codec() -> BidiDemoServerCodec:
    return BidiDemoServerCodec(author=AUTHOR, invocation_id=INVOCATION)


def written(event: ev.Event) -> dict[str, Any]:
    """The one frame `event` becomes, without its id and timestamp (new on every event)."""
    frames = codec().encode(event)
    assert len(frames) == 1
    assert isinstance(frames[0], str)
    obj: dict[str, Any] = json.loads(frames[0])
    assert isinstance(obj.pop("id"), str)
    assert isinstance(obj.pop("timestamp"), float)
    return obj


def golden(fields: dict[str, Any], author: str = AUTHOR) -> dict[str, Any]:
    return {**fields, **ADK_DEFAULTS, "author": author}


# 6 bytes of PCM (fb ff bf ff 00 00): URL-safe base64, as pydantic writes bytes.
PCM = bytes([0xFB, 0xFF, 0xBF, 0xFF, 0x00, 0x00])

GOLDEN: list[tuple[ev.Event, dict[str, Any]]] = [
    (
        ev.AgentText(text="Hel", partial=True),
        golden({"content": {"parts": [{"text": "Hel"}], "role": "model"}, "partial": True}),
    ),
    (
        ev.AgentText(text="Hello", partial=False),
        golden({"content": {"parts": [{"text": "Hello"}], "role": "model"}, "partial": False}),
    ),
    (
        ev.Transcript(speaker="user", text="what time", finished=False),
        golden(
            {"inputTranscription": {"text": "what time", "finished": False}, "partial": True},
            author="user",
        ),
    ),
    (
        ev.Transcript(speaker="agent", text="It is 10:42.", finished=True),
        golden(
            {"outputTranscription": {"text": "It is 10:42.", "finished": True}, "partial": False}
        ),
    ),
    (
        ev.AgentAudio(pcm=PCM, sample_rate=24_000),
        golden(
            {
                "content": {
                    "parts": [
                        {"inlineData": {"data": "-_-__wAA", "mimeType": "audio/pcm;rate=24000"}}
                    ],
                    "role": "model",
                }
            }
        ),
    ),
    (
        ev.ToolCall(call_id="c1", name="get_current_time", args={"tz": "UTC"}),
        golden(
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {
                                "id": "c1",
                                "args": {"tz": "UTC"},
                                "name": "get_current_time",
                            }
                        }
                    ],
                    "role": "model",
                }
            }
        ),
    ),
    (
        ev.ToolResult(
            call_id="c1", name="get_current_time", response={"time": "10:42"}, duration_s=0.1
        ),
        golden(
            {
                "content": {
                    "parts": [
                        {
                            "functionResponse": {
                                "id": "c1",
                                "name": "get_current_time",
                                "response": {"time": "10:42"},
                            }
                        }
                    ],
                    "role": "user",
                }
            }
        ),
    ),
    (ev.TurnComplete(), golden({"turnComplete": True})),
    (
        ev.TurnComplete(interaction="in_progress"),
        golden({"turnComplete": True, "interactionStatus": "IN_PROGRESS"}),
    ),
    (ev.Interrupted(), golden({"interrupted": True})),
    (
        ev.Usage(prompt_tokens=12, response_tokens=5, total_tokens=17),
        golden(
            {
                "usageMetadata": {
                    "promptTokenCount": 12,
                    "candidatesTokenCount": 5,
                    "totalTokenCount": 17,
                }
            }
        ),
    ),
    (
        ev.ErrorEvent(message="the model reported an error for this turn"),
        golden(
            {
                "errorCode": "model_error",
                "errorMessage": "the model reported an error for this turn",
            }
        ),
    ),
    (
        ev.Notice(message="reconnecting to the model", level="warning"),
        golden(
            {
                "customMetadata": {
                    "adkvoice_notice": {"message": "reconnecting to the model", "level": "warning"}
                }
            }
        ),
    ),
]


@pytest.mark.parametrize(("event", "frame"), GOLDEN, ids=[type(e).__name__ for e, _ in GOLDEN])
def test_events_are_written_as_adk_writes_them(event: ev.Event, frame: dict[str, Any]) -> None:
    assert written(event) == frame


def test_what_only_the_server_needs_is_not_sent() -> None:
    for event in (
        ev.UserText(text="hi"),
        ev.AnswerComplete(),
        ev.ResumptionHandle(handle="secret-handle", resumable=True),
    ):
        assert codec().encode(event) == []


def test_frames_are_real_adk_events() -> None:
    """What ADK itself reads back: the page and any ADK client see a valid Event."""
    for event, _frame in GOLDEN:
        (frame,) = codec().encode(event)
        assert AdkEvent.model_validate_json(frame).author in (AUTHOR, "user")


def test_background_results_keep_their_scheduling() -> None:
    result = ev.ToolResult(
        call_id="c2", name="lookup", response={}, duration_s=None, scheduling="WHEN_IDLE"
    )
    response = written(result)["content"]["parts"][0]["functionResponse"]
    assert response["scheduling"] == "WHEN_IDLE"


def _comparable(event: ev.Event) -> ev.Event:
    # What the client measures or infers itself: a tool's duration, whether it ran in the
    # background (neither travels on ADK's Event).
    if isinstance(event, ev.ToolResult):
        return ev.ToolResult(
            call_id=event.call_id,
            name=event.name,
            response=event.response,
            duration_s=None,
            scheduling=event.scheduling,
        )
    return event


ROUND_TRIP: list[ev.Event] = [
    *(event for event, _ in GOLDEN),
    ev.ToolResult(call_id="c2", name="lookup", response={}, duration_s=None, scheduling="SILENT"),
    ev.Notice(message="the server is shutting down", level="info"),
    ev.Interrupted(source="connection"),  # a reply lost to a reconnect: a cut all the same
]


@pytest.mark.parametrize("event", ROUND_TRIP, ids=[type(e).__name__ for e in ROUND_TRIP])
def test_round_trip_through_the_bidi_client(event: ev.Event) -> None:
    client = BidiDemoClientCodec()
    decoded = [item for frame in codec().encode(event) for item in client.decode(frame)]
    expected = ev.Interrupted() if isinstance(event, ev.Interrupted) else event
    assert [_comparable(e) for e in decoded if not isinstance(e, Hello)] == [_comparable(expected)]


def test_a_text_client_takes_the_speech_transcript_as_text() -> None:
    client = BidiDemoClientCodec(speech_as_text=True)
    (frame,) = codec().encode(ev.Transcript(speaker="agent", text="It is", finished=False))
    assert client.decode(frame) == [ev.AgentText(text="It is", partial=True)]
    (audio,) = codec().encode(ev.AgentAudio(pcm=PCM))
    assert client.decode(audio) == []


def test_error_frames_are_error_events() -> None:
    frame = codec().encode_error("text_rate_exceeded", "too many messages")
    obj = json.loads(frame)
    assert obj["errorCode"] == "text_rate_exceeded"
    assert obj["errorMessage"] == "too many messages"
    assert BidiDemoClientCodec().decode(frame) == [ev.ErrorEvent(message="too many messages")]


# -- client frames ---------------------------------------------------------------------------
def test_client_frames_as_the_page_sends_them() -> None:
    assert decode_client_frame(b"\x01\x00" * 128) == AudioInput(b"\x01\x00" * 128)
    assert decode_client_frame('{"type": "text", "text": "hi"}') == TextInput("hi")
    jpeg = b"\xff\xd8\xff\xe0 image"
    page_image = json.dumps(
        {"type": "image", "data": base64.b64encode(jpeg).decode(), "mimeType": "image/jpeg"}
    )
    assert decode_client_frame(page_image) == ImageInput(data=jpeg, mime_type="image/jpeg")
    no_mime = json.dumps({"type": "image", "data": base64.b64encode(jpeg).decode()})
    assert decode_client_frame(no_mime) == ImageInput(data=jpeg, mime_type="image/jpeg")
    png = json.dumps({"type": "image", "data": "iVBORw0K", "mimeType": "image/png"})
    assert decode_client_frame(png).mime_type == "image/png"  # type: ignore[union-attr]
    assert decode_client_frame('{"type": "activity_start"}') == ActivityInput(start=True)
    assert decode_client_frame('{"type": "activity_end"}') == ActivityInput(start=False)


def test_the_encoder_reads_what_the_client_codec_writes() -> None:
    client = BidiDemoClientCodec()
    assert decode_client_frame(client.encode_text("hello")) == TextInput("hello")
    assert decode_client_frame(client.encode_audio(b"\x00\x01")) == AudioInput(b"\x00\x01")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x00\x01\x02", "invalid_audio"),
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_message"),
        ('{"type": "text", "text": "  "}', "empty_text"),
        ('{"type": "text", "text": 5}', "invalid_message"),
        ('{"type": "image", "data": "%%%", "mimeType": "image/jpeg"}', "invalid_base64"),
        ('{"type": "image", "data": "", "mimeType": "image/jpeg"}', "invalid_message"),
        ('{"type": "image", "data": "AAAA", "mimeType": "image/gif"}', "unsupported_mime_type"),
        ('{"type": "image", "data": "AAAA", "mimeType": 7}', "unsupported_mime_type"),
        ('{"type": "video"}', "unknown_type"),
        ("{}", "unknown_type"),
    ],
)
def test_bad_client_frames_say_what_is_wrong(frame: str | bytes, code: str) -> None:
    with pytest.raises(FrameError) as raised:
        decode_client_frame(frame)
    assert raised.value.code == code
    assert str(raised.value)


# -- the route's choices ----------------------------------------------------------------------
def test_speech_only_for_models_that_only_speak() -> None:
    assert speaks_only("gemini-2.5-flash-native-audio-latest")
    assert speaks_only("gemini-3.1-flash-live-preview")
    assert not speaks_only("gemini-2.0-flash-live-001")
    assert speaks_only("some-future-native-audio-model")  # unknown: the demo's rule
    assert not speaks_only("some-future-model")
    assert not speaks_only("")


def test_the_demos_query_parameters_are_the_session_options() -> None:
    query = {"proactivity": "true", "affective_dialog": "true"}
    assert live_options(query, LiveOptions()) == LiveOptions(proactive=True, affective=True)
    assert live_options({}, LiveOptions(voice="Kore")) == LiveOptions(voice="Kore")
    assert live_options({"proactivity": "false"}, LiveOptions(proactive=True)).proactive is False
    with pytest.raises(ConfigError):
        live_options({"proactivity": "maybe"}, LiveOptions())


class _Hub:
    def __init__(self, user_id: str | None) -> None:
        self._user_id = user_id

    def user_id(self, session_id: str) -> str:
        return self._user_id or session_id


def test_a_conversation_has_one_name_on_every_route() -> None:
    assert hub_key(_Hub(None), "u1", "s1") == "u1/s1"  # type: ignore[arg-type]
    assert hub_key(_Hub(None), "s1", "s1") == "s1"  # type: ignore[arg-type]  # /ws/s1's
    assert hub_key(_Hub("u1"), "u1", "s1") == "s1"  # type: ignore[arg-type]
