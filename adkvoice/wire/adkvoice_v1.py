"""The adkvoice extension of the seeds' protocol, ``adkvoice.v1`` (opt-in, pure).

A client asks for it with the WebSocket subprotocol ``adkvoice.v1``
(`Sec-WebSocket-Protocol`, `new WebSocket(url, ["adkvoice.v1"])` in a browser). A server
that speaks it selects the subprotocol in its handshake; a seeds server selects none, so
a client learns during the handshake, before any frame, which protocol it got. Same URL,
same query parameters (`is_audio`, `token`).

Binary frames carry raw PCM, no base64: client → server 16 kHz s16le mono (an even
number of bytes), server → client 24 kHz s16le mono.

Text frames are JSON objects with a ``type``. Client → server::

    {"type": "text", "text": "<user text>"}
    {"type": "audio", "data": "<base64 16 kHz PCM>"}  (for clients that cannot send binary)
    {"type": "image", "mime_type": "image/jpeg", "data": "<base64>"}
                        a still image (a camera or screen frame) for the model to see:
                        image/jpeg, image/png or image/webp, best fitted to 768 px
    {"type": "end"}     I am done sending: the server finishes the current turn and closes 1000

The seeds' two client messages are accepted on an extended connection too. An image
(``mime_type`` defaults to image/jpeg) over the hello's ``max_image_bytes`` decoded is
refused with error ``image_too_large``; images beyond ``image_burst`` faster than
``images_per_s`` are dropped with error ``image_rate_exceeded``. Each frame costs the
model input tokens: send about one a second, and only when the picture changed.

Server → client: first, once::

    {"type": "hello", "protocol": "adkvoice.v1", "session_id": "...", "modality": "AUDIO",
     "agent": "<app name>", "input_rate": 16000, "output_rate": 24000, "resumed": false,
     "awaiting_reply": false, "limits": {"max_frame_bytes": ..., "max_text_chars": ...,
     "audio_rate_slack": ..., "audio_burst_s": ..., "text_turns_per_minute": ...,
     "text_turn_burst": ..., "max_image_bytes": ..., "images_per_s": ...,
     "image_burst": ...}}

(``resumed`` says the session id already had a conversation, which continues;
``awaiting_reply`` that it ends with a user turn the agent had not answered, which the
server answers now: a client reconnecting with a turn in flight must not send it again),
then::

    {"type": "agent_text", "text": "...", "partial": true}   deltas; then once partial=false
                                                             with the whole segment
    {"type": "transcript", "speaker": "user" | "agent", "text": "...", "finished": false}
    {"type": "tool_call", "id": "...", "name": "...", "args": {...}}
    {"type": "tool_call", ..., "background": true}   the model goes on talking meanwhile
    {"type": "tool_result", "id": "...", "name": "...", "response": {...},
     "duration_s": 0.01}
    {"type": "tool_result", ..., "scheduling": "WHEN_IDLE" | "INTERRUPT" | "SILENT"}
                                 a background call's result: when the model speaks it
    {"type": "turn_complete"}
    {"type": "turn_complete", "interaction_status": "in_progress" | "idle"}
                                 from models that answer in several turns (Gemini 3.8):
                                 more turns follow, or the answer is complete
    {"type": "interrupted"}      drop any agent audio still queued
    {"type": "usage", "prompt_tokens": 1, "response_tokens": 2, "total_tokens": 3}
    {"type": "notice", "message": "...", "level": "info" | "warning"}
    {"type": "error", "code": "...", "message": "...", "retryable": false}
    {"type": "agent_audio", "sample_rate": 16000, "data": "<base64>"}   only for audio
                                                             at a rate other than 24 kHz
    {"type": "agents", "names": ["front_desk", "billing"]}
                                 once, after the hello, when the agent is a team (root
                                 first): clients name the agent on each of its lines
    {"type": "handoff", "from": "front_desk", "to": "billing"}
                                 one agent handed the conversation to another (ADK's
                                 transfer_to_agent); what follows is the new agent's

``agent_text``, agent ``transcript``, ``tool_call`` and ``tool_result`` carry
``"author": "<agent name>"``, the ADK agent that said or called it, when the server knows
it (always, for an ADK agent). A handoff the new agent does not answer within a few
seconds is reported with a warning ``notice``.

Error frames (`encode_error`) are sent on seeds connections too (a seeds client ignores a
frame with neither ``mime_type`` nor ``turn_complete``). Error codes are listed in
`ErrorCode`; close codes are the server's business (see `adkvoice.server`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adkvoice.events import (
    AgentAudio,
    AgentTeam,
    AgentText,
    ErrorEvent,
    Event,
    Handoff,
    Interrupted,
    Notice,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
    Usage,
    event_fields,
    event_type,
)
from adkvoice.live_models import SCHEDULINGS
from adkvoice.wire import seeds
from adkvoice.wire.base import (
    OUTPUT_RATE,
    ClientMessage,
    EndInput,
    ErrorCode,
    Frame,
    FrameError,
    Hello,
    ServerItem,
    b64decode,
    b64encode,
    dumps,
    image_input,
    loads_object,
    parse_json,
    pcm_input,
    text_input,
)

SUBPROTOCOL = "adkvoice.v1"
# Kept on the server: resumption handles; the client knows its own text; the end of an
# answer is for each side to work out from the turns.
_NOT_SENT = frozenset({"user_text", "resumption", "answer_complete"})


# ---------------------------------------------------------------- client → server


def _decode_typed_client(obj: Mapping[str, Any]) -> ClientMessage:
    kind = obj["type"]
    if kind == "text":
        return text_input(obj.get("text"), "text")
    if kind == "audio":
        return pcm_input(b64decode(obj.get("data"), "data"))
    if kind == "image":
        return image_input(obj.get("data"), obj.get("mime_type", "image/jpeg"), "data")
    if kind == "end":
        return EndInput()
    shown = kind[:40] if isinstance(kind, str) else kind
    raise FrameError(
        "unknown_type", f"unknown message type {shown!r}: expected text, audio, image or end"
    )


def decode_client_frame(frame: Frame, *, extended: bool) -> ClientMessage:
    """Decode one client frame on a seeds (`extended=False`) or adkvoice.v1 connection."""
    if isinstance(frame, bytes | bytearray | memoryview):
        if not extended:
            raise FrameError(
                "binary_not_enabled",
                "binary frames need the adkvoice.v1 subprotocol; on this connection send "
                'JSON such as {"mime_type": "audio/pcm", "data": "<base64>"}',
            )
        return pcm_input(bytes(frame))
    obj = parse_json(frame, "frame")
    if not isinstance(obj, dict):
        raise FrameError(
            "invalid_message",
            'a message must be a JSON object such as {"mime_type": "text/plain", "data": "hi"}',
        )
    # A typed message; the seeds' messages have a mime_type and no type (an image has both).
    if "type" in obj and ("mime_type" not in obj or obj["type"] == "image"):
        if not extended:
            raise FrameError(
                "extension_not_enabled",
                'typed messages ({"type": ...}) need the adkvoice.v1 subprotocol; send '
                '{"mime_type": "text/plain", "data": ...} on this connection',
            )
        return _decode_typed_client(obj)
    return seeds.decode_client_object(obj)


def encode_client_text(text: str, *, extended: bool = False) -> str:
    if extended:
        return dumps({"type": "text", "text": text})
    return seeds.text_frame(text)


def encode_client_audio(pcm: bytes, *, extended: bool = False) -> Frame:
    """16 kHz PCM: a binary frame on an extended connection, base64 JSON otherwise."""
    if extended:
        return bytes(pcm)
    return seeds.audio_frame(pcm)


def encode_client_image(data: bytes, mime_type: str) -> str:
    """An image frame (extension only: the seeds' protocol has none)."""
    return dumps({"type": "image", "mime_type": mime_type, "data": b64encode(data)})


def encode_client_end() -> str:
    return dumps({"type": "end"})


# ---------------------------------------------------------------- server → client


def encode_hello(hello: Hello) -> str:
    return dumps(
        {
            "type": "hello",
            "protocol": hello.protocol,
            "session_id": hello.session_id,
            "modality": hello.modality,
            "agent": hello.agent,
            "input_rate": hello.input_rate,
            "output_rate": hello.output_rate,
            "resumed": hello.resumed,
            "awaiting_reply": hello.awaiting_reply,
            "limits": dict(hello.limits),
        }
    )


def encode_error(code: ErrorCode, message: str, *, retryable: bool = False) -> str:
    return dumps({"type": "error", "code": code, "message": message, "retryable": retryable})


def encode_extended(event: Event) -> list[Frame]:
    """Events → adkvoice.v1 frames (binary audio at 24 kHz)."""
    if isinstance(event, AgentAudio):
        if event.sample_rate == OUTPUT_RATE:
            return [bytes(event.pcm)]
        data = b64encode(event.pcm)
        return [dumps({"type": "agent_audio", "sample_rate": event.sample_rate, "data": data})]
    kind = event_type(event)
    if kind in _NOT_SENT:
        return []
    if isinstance(event, ErrorEvent):
        return [encode_error("agent_error", event.message, retryable=event.retryable)]
    fields = {} if isinstance(event, Interrupted) else event_fields(event)
    return [dumps({"type": kind, **fields})]


def _field(obj: Mapping[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise FrameError(
            "invalid_message", f"{obj.get('type', 'message')}.{name} is missing or has a bad type"
        )
    return value


def _opt_int(obj: Mapping[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    return int(_field(obj, name, int))


def _decode_hello(obj: Mapping[str, Any]) -> Hello:
    modality = _field(obj, "modality", str)
    if modality not in ("TEXT", "AUDIO"):
        raise FrameError("invalid_message", f"hello.modality {modality!r} is not TEXT/AUDIO")
    return Hello(
        session_id=_field(obj, "session_id", str),
        modality=modality,
        resumed=_field(obj, "resumed", bool),
        limits=dict(_field(obj, "limits", dict)),
        agent=str(obj.get("agent") or ""),
        awaiting_reply=obj.get("awaiting_reply") is True,  # absent from older servers
        input_rate=_field(obj, "input_rate", int),
        output_rate=_field(obj, "output_rate", int),
        protocol=_field(obj, "protocol", str),
    )


def _decode_tool_result(obj: Mapping[str, Any]) -> ToolResult:
    duration = obj.get("duration_s")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise FrameError("invalid_message", "tool_result.duration_s must be a number")
    scheduling = obj.get("scheduling")
    if scheduling is not None and scheduling not in SCHEDULINGS:
        raise FrameError("invalid_message", f"tool_result.scheduling {scheduling!r} is unknown")
    return ToolResult(
        call_id=_field(obj, "id", str),
        name=_field(obj, "name", str),
        response=dict(_field(obj, "response", dict)),
        duration_s=None if duration is None else float(duration),
        scheduling=scheduling,
        author=_author(obj),
    )


def _author(obj: Mapping[str, Any]) -> str:
    """The agent named on an output (absent from older servers and one-agent talk)."""
    author = obj.get("author", "")
    if not isinstance(author, str):
        raise FrameError("invalid_message", f"{obj.get('type', 'message')}.author must be text")
    return author


def _decode_team(obj: Mapping[str, Any]) -> AgentTeam:
    names = _field(obj, "names", list)
    if not all(isinstance(name, str) for name in names):
        raise FrameError("invalid_message", "agents.names must be a list of names")
    return AgentTeam(names=tuple(names))


def _decode_turn_complete(obj: Mapping[str, Any]) -> TurnComplete:
    status = obj.get("interaction_status")
    if status is None:
        return TurnComplete()
    if status == "in_progress":
        return TurnComplete(interaction="in_progress")
    if status == "idle":
        return TurnComplete(interaction="idle")
    raise FrameError("invalid_message", f"turn_complete.interaction_status {status!r} is unknown")


def _decode_typed_server(obj: Mapping[str, Any]) -> ServerItem:
    kind = obj["type"]
    if kind == "hello":
        return _decode_hello(obj)
    if kind == "agent_text":
        return AgentText(
            text=_field(obj, "text", str),
            partial=_field(obj, "partial", bool),
            author=_author(obj),
        )
    if kind == "transcript":
        speaker = _field(obj, "speaker", str)
        if speaker not in ("user", "agent"):
            raise FrameError("invalid_message", f"transcript.speaker {speaker!r} is unknown")
        return Transcript(
            speaker=speaker,
            text=_field(obj, "text", str),
            finished=_field(obj, "finished", bool),
            author=_author(obj),
        )
    if kind == "agent_audio":
        pcm = b64decode(obj.get("data"), "agent_audio.data")
        return AgentAudio(pcm=pcm, sample_rate=_field(obj, "sample_rate", int))
    if kind == "tool_call":
        return ToolCall(
            call_id=_field(obj, "id", str),
            name=_field(obj, "name", str),
            args=dict(_field(obj, "args", dict)),
            background=obj.get("background") is True,
            author=_author(obj),
        )
    if kind == "tool_result":
        return _decode_tool_result(obj)
    if kind == "turn_complete":
        return _decode_turn_complete(obj)
    if kind == "interrupted":
        return Interrupted()
    if kind == "handoff":
        return Handoff(from_agent=_field(obj, "from", str), to_agent=_field(obj, "to", str))
    if kind == "agents":
        return _decode_team(obj)
    if kind == "usage":
        return Usage(
            prompt_tokens=_opt_int(obj, "prompt_tokens"),
            response_tokens=_opt_int(obj, "response_tokens"),
            total_tokens=_opt_int(obj, "total_tokens"),
        )
    if kind == "notice":
        level = obj.get("level", "info")
        if level not in ("info", "warning"):
            raise FrameError("invalid_message", f"notice.level {level!r} is unknown")
        return Notice(message=_field(obj, "message", str), level=level)
    if kind == "error":
        retryable = obj.get("retryable", False)
        return ErrorEvent(message=_field(obj, "message", str), retryable=retryable is True)
    shown = kind[:40] if isinstance(kind, str) else kind
    raise FrameError("unknown_type", f"unknown server message type {shown!r}")


def decode_server_frame(frame: Frame, *, extended: bool, is_audio: bool) -> list[ServerItem]:
    """Decode one server frame into events (what a remote backend does with it)."""
    if isinstance(frame, bytes | bytearray | memoryview):
        if not extended:
            raise FrameError("binary_not_enabled", "a seeds server sends no binary frames")
        if len(frame) % 2:
            raise FrameError("invalid_audio", "binary audio needs an even number of bytes")
        return [AgentAudio(pcm=bytes(frame), sample_rate=OUTPUT_RATE)]
    obj = loads_object(frame, "server frame")
    if isinstance(obj.get("type"), str) and "mime_type" not in obj:
        return [_decode_typed_server(obj)]
    return seeds.decode_server_object(obj, is_audio=is_audio)


class V1ClientCodec(seeds.SeedsClientCodec):
    """A client of an adkvoice.v1 server: binary audio up, rich events down."""

    name = SUBPROTOCOL
    tool_events = True

    def encode_text(self, text: str) -> Frame:
        return encode_client_text(text, extended=True)

    def encode_audio(self, pcm: bytes) -> Frame:
        return encode_client_audio(pcm, extended=True)

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        return encode_client_image(data, mime_type)

    def encode_goodbye(self) -> Frame | None:
        return encode_client_end()

    def decode(self, frame: Frame) -> list[ServerItem]:
        return decode_server_frame(frame, extended=True, is_audio=self._is_audio)
