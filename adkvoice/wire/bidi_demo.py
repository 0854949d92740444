"""The ADK bidi-demo's WebSocket (google/adk-samples `python/agents/bidi-demo`), pure.

``ws://HOST/ws/{user_id}/{session_id}?proactivity=true&affective_dialog=true`` (both
optional). Client → server::

    binary frame: raw 16 kHz s16le mono PCM (`send_realtime` of an audio blob)
    {"type": "text", "text": "..."}              (`send_content`)
    {"type": "image", "data": "<base64>", "mimeType": "image/jpeg"}

Nothing else: the server ignores other types, so there is no activity start/end (its
model's own voice detection takes the turns) and no goodbye (closing the socket ends the
session). Server → client: one ADK `Event` per text frame,
`event.model_dump_json(exclude_none=True, by_alias=True)`, as `/run_live` sends it.

The server, not the client, picks the reply modality: speech with transcripts for a model
named "native-audio", text for any other. A client that wants text therefore takes the
speech's transcript as the text reply whenever it comes (a text server sends none).
"""

from __future__ import annotations

from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.base import Frame, ServerItem, dumps
from adkvoice.wire.run_live import decode_event

NAME = "bidi-demo"


def encode_text(text: str) -> str:
    return dumps({"type": "text", "text": text})


class BidiDemoClientCodec:
    """A client of bidi-demo: binary PCM and typed JSON up, ADK Event JSON down."""

    name = NAME
    tool_events = True

    def __init__(self, *, speech_as_text: bool = False) -> None:
        self._mapper = AdkEventMapper(speech_as_text=speech_as_text)

    def encode_text(self, text: str) -> Frame:
        return encode_text(text)

    def encode_audio(self, pcm: bytes) -> Frame:
        return bytes(pcm)

    def encode_activity(self, start: bool) -> Frame | None:
        return None

    def encode_goodbye(self) -> Frame | None:
        return None

    def decode(self, frame: Frame) -> list[ServerItem]:
        return decode_event(self._mapper, frame, sender=NAME)
