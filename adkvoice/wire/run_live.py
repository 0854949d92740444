"""ADK's `/run_live` WebSocket, as `adk api_server` and `adk web` serve it (pure).

``ws://HOST/run_live?app_name=&user_id=&session_id=&modalities=TEXT|AUDIO``. Client →
server: `LiveRequest` JSON with snake_case keys::

    {"content": {"role": "user", "parts": [{"text": "..."}]}}
    {"blob": {"mime_type": "audio/pcm;rate=16000", "data": "<base64>"}}
    {"blob": {"mime_type": "image/jpeg", "data": "<base64>"}}   (a camera or screen frame)
    {"activity_start": {}}   {"activity_end": {}}   {"close": true}

Server → client: one ADK `Event` per text frame (`model_dump_json`, camelCase keys, bytes
as URL-safe base64), mapped to adkvoice events by `AdkEventMapper`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.base import Frame, FrameError, ServerItem, b64encode, dumps

if TYPE_CHECKING:
    from google.adk.events.event import Event as AdkEvent

NAME = "adk run_live"
AUDIO_MIME = "audio/pcm;rate=16000"


def encode_text(text: str) -> str:
    request: dict[str, Any] = {"content": {"role": "user", "parts": [{"text": text}]}}
    return dumps(request)


def encode_audio(pcm: bytes) -> str:
    return dumps({"blob": {"mime_type": AUDIO_MIME, "data": b64encode(pcm)}})


def encode_image(data: bytes, mime_type: str) -> str:
    """An image blob: ADK sends it to the model as realtime input (video, on 3.x)."""
    return dumps({"blob": {"mime_type": mime_type, "data": b64encode(data)}})


def encode_activity(start: bool) -> str:
    return dumps({"activity_start" if start else "activity_end": {}})


CLOSE = dumps({"close": True})


class RunLiveClientCodec:
    """A client of `/run_live`: LiveRequest JSON up, ADK Event JSON down."""

    name = NAME
    tool_events = True

    def __init__(self, *, speech_as_text: bool = False) -> None:
        # Times tool calls across frames; with `speech_as_text`, the server's model speaks
        # and its transcript is the text reply.
        self._mapper = AdkEventMapper(speech_as_text=speech_as_text)

    def encode_text(self, text: str) -> Frame:
        return encode_text(text)

    def encode_audio(self, pcm: bytes) -> Frame:
        return encode_audio(pcm)

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        return encode_image(data, mime_type)

    def encode_activity(self, start: bool) -> Frame | None:
        return encode_activity(start)

    def encode_goodbye(self) -> Frame | None:
        return CLOSE

    def decode(self, frame: Frame) -> list[ServerItem]:
        return decode_event(self._mapper, frame, sender=NAME)


def decode_event(mapper: AdkEventMapper, frame: Frame, *, sender: str) -> list[ServerItem]:
    """One text frame holding an ADK `Event` dumped to JSON, as adkvoice events. Shared by
    every server that sends `event.model_dump_json(...)` as is (`sender` names it)."""
    return list(mapper.map(parse_event(frame, sender=sender)))


def parse_event(frame: Frame, *, sender: str) -> AdkEvent:
    """The ADK `Event` in one text frame (`sender` names the server in errors)."""
    from google.adk.events.event import Event as AdkEvent
    from pydantic import ValidationError

    if isinstance(frame, bytes | bytearray | memoryview):
        raise FrameError("invalid_message", f"{sender} sends JSON text frames, not binary")
    try:
        return AdkEvent.model_validate_json(frame)
    except ValidationError as exc:
        raise FrameError("invalid_message", f"not an ADK Event: {exc.errors()[0]['msg']}") from None
