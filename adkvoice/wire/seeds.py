"""The seeds' WebSocket protocol, ``/ws/{session_id}?is_audio=true|false`` (pure).

The ADK "custom streaming" sample (server `main.py` + browser `app.js`). Every frame is a
JSON text frame.

Client → server::

    {"mime_type": "text/plain", "data": "<user text>"}
    {"mime_type": "audio/pcm",  "data": "<base64 of 16 kHz s16le mono PCM>"}

Server → client, exactly as the sample's `json.dumps` writes them::

    {"mime_type": "text/plain", "data": "<a partial text chunk>"}
    {"mime_type": "audio/pcm", "data": "<base64 of 24 kHz s16le mono PCM>"}
    {"turn_complete": true, "interrupted": null}
    {"turn_complete": null, "interrupted": true}

The sample copies ADK's `event.turn_complete` / `event.interrupted`, which are None when
unset, so the flag that is not set is `null` (decoders also accept `false`). It forwards
only *partial* text (`part.text and event.partial`), so the final aggregated text ADK
emits after the deltas is never sent. Neither version of the sample marks transcripts:
with the ADK of the newest version (1.2.x) the agent's output transcription arrived as
partial model text, so it went out as plain ``text/plain`` chunks, and user
transcriptions (non-partial user content) were never sent. `SeedEncoder` does the same
with today's ADK events: agent transcript deltas become ``text/plain`` frames, user
transcripts are not sent.

A model that answers one prompt in several turns (Gemini 3.8, `TurnComplete` with
interaction `in_progress`) gets one `turn_complete` for the whole answer, as every other
model does, so a seeds client (which knows no interaction status) shows one answer and
takes its turn at the right time; the segments' texts are joined with a space.

The adkvoice.v1 extension (`adkvoice_v1`) accepts all of this too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adkvoice.events import (
    AgentAudio,
    AgentText,
    Event,
    Interrupted,
    SegmentText,
    Transcript,
    TurnComplete,
)
from adkvoice.wire.base import (
    AUDIO_MIME,
    INPUT_RATE,
    OUTPUT_RATE,
    TEXT_MIME,
    ClientMessage,
    Frame,
    FrameError,
    ServerItem,
    b64decode,
    b64encode,
    dumps,
    loads_object,
    pcm_input,
    text_input,
)

NAME = "seeds protocol"
TURN_COMPLETE = dumps({"turn_complete": True, "interrupted": None})
INTERRUPTED = dumps({"turn_complete": None, "interrupted": True})


def _audio_mime(mime: str) -> bool:
    """True for audio/pcm (16 kHz); raise for PCM at another rate."""
    base, _, params = mime.partition(";")
    if base.strip().lower() != AUDIO_MIME:
        return False
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "rate" and value.strip() != str(INPUT_RATE):
            raise FrameError(
                "invalid_audio",
                f"audio must be 16 kHz mono s16le (audio/pcm;rate=16000), got {mime!r}",
            )
    return True


def decode_client_object(obj: Mapping[str, Any]) -> ClientMessage:
    """A client's `{"mime_type": ..., "data": ...}` message."""
    mime = obj.get("mime_type")
    if not isinstance(mime, str):
        raise FrameError(
            "invalid_message",
            'expected {"mime_type": "text/plain" | "audio/pcm", "data": ...}; '
            "mime_type is missing or not a string",
        )
    if "data" not in obj:
        raise FrameError("invalid_message", f"a {mime} message needs a 'data' field")
    if mime.split(";")[0].strip().lower() == TEXT_MIME:
        return text_input(obj["data"], "data")
    if _audio_mime(mime):
        return pcm_input(b64decode(obj["data"], "data"))
    raise FrameError(
        "unsupported_mime_type",
        f"mime_type {mime[:40]!r} is not supported: use text/plain or audio/pcm",
    )


def text_frame(text: str) -> str:
    """A text frame; the same shape both ways (the user's turn, the agent's chunk)."""
    return dumps({"mime_type": TEXT_MIME, "data": text})


def audio_frame(pcm: bytes) -> str:
    """An audio frame; the same shape both ways (16 kHz up, 24 kHz down)."""
    return dumps({"mime_type": AUDIO_MIME, "data": b64encode(pcm)})


class SeedEncoder:
    """Events → seeds frames, as the sample's `agent_to_client_messaging` would send them."""

    def __init__(self) -> None:
        self._text = SegmentText()
        self._transcript = SegmentText()
        self._answer_text = False  # text of this answer was sent
        self._new_segment = False  # a segment of this answer ended: space the next text

    def _text_frames(self, shown: str | None) -> list[str]:
        if not shown:
            return []
        if self._new_segment and self._answer_text and not shown[:1].isspace():
            shown = " " + shown
        self._new_segment = False
        self._answer_text = True
        return [text_frame(shown)]

    def encode(self, event: Event) -> list[str]:
        if isinstance(event, AgentAudio):
            return [audio_frame(event.pcm)]
        if isinstance(event, AgentText):
            return self._text_frames(self._text.feed(event.text, final=not event.partial))
        if isinstance(event, Transcript):
            if event.speaker != "agent":
                return []
            return self._text_frames(self._transcript.feed(event.text, final=event.finished))
        if isinstance(event, TurnComplete):
            self._text.reset()
            self._transcript.reset()
            if event.interaction == "in_progress":
                self._new_segment = True
                return []
            self._new_segment = self._answer_text = False
            return [TURN_COMPLETE]
        if isinstance(event, Interrupted):
            return [INTERRUPTED]
        return []


def _flag(obj: Mapping[str, Any], name: str) -> bool:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise FrameError("invalid_message", f"{name} must be true, false or null")
    return value is True


def decode_server_object(obj: Mapping[str, Any], *, is_audio: bool) -> list[ServerItem]:
    """A seeds server frame as events.

    In audio mode, `text/plain` frames are the agent's transcript (that is what the seeds'
    server sends then); in text mode they are agent text deltas.
    """
    if "turn_complete" in obj or "interrupted" in obj:
        out: list[ServerItem] = []
        if _flag(obj, "interrupted"):
            out.append(Interrupted())
        if _flag(obj, "turn_complete"):
            out.append(TurnComplete())
        return out
    mime = obj.get("mime_type")
    data = obj.get("data")
    if mime == AUDIO_MIME:
        return [AgentAudio(pcm=b64decode(data, "data"), sample_rate=OUTPUT_RATE)]
    if mime == TEXT_MIME:
        if not isinstance(data, str):
            raise FrameError("invalid_message", "text/plain data must be a string")
        if is_audio:
            return [Transcript(speaker="agent", text=data, finished=False)]
        return [AgentText(text=data, partial=True)]
    raise FrameError("invalid_message", "unknown server frame: no mime_type, type or turn flags")


class SeedsClientCodec:
    """A client of a seeds server: JSON both ways, no push-to-talk, no goodbye."""

    name = NAME
    tool_events = False

    def __init__(self, *, is_audio: bool) -> None:
        self._is_audio = is_audio

    def encode_text(self, text: str) -> Frame:
        return text_frame(text)

    def encode_audio(self, pcm: bytes) -> Frame:
        return audio_frame(pcm)

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        return None  # the sample's server refuses any mime type but text and PCM

    def encode_activity(self, start: bool) -> Frame | None:
        return None

    def encode_goodbye(self) -> Frame | None:
        return None

    def decode(self, frame: Frame) -> list[ServerItem]:
        if isinstance(frame, bytes | bytearray | memoryview):
            raise FrameError("binary_not_enabled", "a seeds server sends no binary frames")
        return decode_server_object(loads_object(frame, "server frame"), is_audio=self._is_audio)
