"""Sans-I/O codecs for `adkvoice serve`'s wire formats: pure functions, no I/O.

Three formats live here, each with encoders and decoders for both directions so the
server, the remote backend and the tests share one definition.

1. The seeds' WebSocket protocol, ``/ws/{session_id}?is_audio=true|false``
   (the ADK "custom streaming" sample, server `main.py` + browser `app.js`)
-----------------------------------------------------------------------------
Every frame is a JSON text frame.

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

2. The adkvoice extension, ``adkvoice.v1`` (opt-in)
---------------------------------------------------
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
    {"type": "end"}     I am done sending: the server finishes the current turn and closes 1000

The seeds' two client messages are accepted on an extended connection too.

Server → client: first, once::

    {"type": "hello", "protocol": "adkvoice.v1", "session_id": "...", "modality": "AUDIO",
     "agent": "<app name>", "input_rate": 16000, "output_rate": 24000, "resumed": false,
     "awaiting_reply": false, "limits": {"max_frame_bytes": ..., "max_text_chars": ...,
     "audio_rate_slack": ..., "audio_burst_s": ...}}

(``resumed`` says the session id already had a conversation, which continues;
``awaiting_reply`` that it ends with a user turn the agent had not answered, which the
server answers now: a client reconnecting with a turn in flight must not send it again),
then::

    {"type": "agent_text", "text": "...", "partial": true}   deltas; then once partial=false
                                                             with the whole segment
    {"type": "transcript", "speaker": "user" | "agent", "text": "...", "finished": false}
    {"type": "tool_call", "id": "...", "name": "...", "args": {...}}
    {"type": "tool_result", "id": "...", "name": "...", "response": {...},
     "duration_s": 0.01}
    {"type": "turn_complete"}
    {"type": "interrupted"}      drop any agent audio still queued
    {"type": "usage", "prompt_tokens": 1, "response_tokens": 2, "total_tokens": 3}
    {"type": "notice", "message": "...", "level": "info" | "warning"}
    {"type": "error", "code": "...", "message": "...", "retryable": false}
    {"type": "agent_audio", "sample_rate": 16000, "data": "<base64>"}   only for audio
                                                             at a rate other than 24 kHz

Error frames (`encode_error`) are sent on seeds connections too (a seeds client ignores a
frame with neither ``mime_type`` nor ``turn_complete``). Error codes are listed in
`ErrorCode`; close codes are the server's business (see `adkvoice.server`).

3. Server-Sent Events for ``/chat/stream`` (the ADK SSE tutorial)
-----------------------------------------------------------------
``data: {"text": "<chunk>"}`` events, then ``data: [DONE]``; each event ends with a blank
line. A failure mid-stream is ``data: {"error": "<message>"}`` before ``[DONE]``.

Decoding bad input raises `FrameError` (a `ProtocolError`) with a message a user can act
on and a machine-readable `code`; decoders never return None for bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from adkvoice.errors import ProtocolError
from adkvoice.events import (
    AgentAudio,
    AgentText,
    ErrorEvent,
    Event,
    Interrupted,
    Notice,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
    Usage,
)

SUBPROTOCOL = "adkvoice.v1"
TEXT_MIME = "text/plain"
AUDIO_MIME = "audio/pcm"
INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
SSE_DONE = "data: [DONE]\n\n"

ErrorCode = Literal[
    "invalid_json",  # not UTF-8 JSON
    "invalid_message",  # JSON, but not a message of this protocol
    "unsupported_mime_type",
    "unknown_type",
    "invalid_base64",
    "invalid_audio",  # odd byte count, or a sample rate other than 16 kHz
    "empty_text",
    "binary_not_enabled",  # a binary frame without the adkvoice.v1 subprotocol
    "extension_not_enabled",  # a typed message without the adkvoice.v1 subprotocol
    # Raised by the server, not by the codec:
    "text_too_long",
    "audio_rate_exceeded",
    "after_end",
    "shutting_down",
    "agent_error",
]

Frame = str | bytes


class FrameError(ProtocolError):
    """A frame that does not decode: `str(err)` says what to fix; `code` names the kind."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code


# ----------------------------------------------------------------------- client messages


@dataclass(frozen=True, slots=True)
class TextInput:
    text: str


@dataclass(frozen=True, slots=True)
class AudioInput:
    pcm: bytes  # 16 kHz s16le mono


@dataclass(frozen=True, slots=True)
class EndInput:
    """The client is done sending (extension only)."""


ClientMessage = TextInput | AudioInput | EndInput


def _b64decode(data: Any, where: str) -> bytes:
    if not isinstance(data, str):
        raise FrameError("invalid_message", f"{where} must be a base64 string")
    text = data.strip()
    alphabet = b"-_" if ("-" in text or "_" in text) else None
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("ascii"), altchars=alphabet, validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise FrameError(
            "invalid_base64", f"{where} is not valid base64 (send PCM bytes encoded with btoa)"
        ) from None


def _pcm(pcm: bytes) -> AudioInput:
    if len(pcm) % 2:
        raise FrameError(
            "invalid_audio",
            f"16-bit PCM needs an even number of bytes, got {len(pcm)}: send whole samples",
        )
    return AudioInput(pcm)


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


def _text(value: Any, where: str) -> TextInput:
    if not isinstance(value, str):
        raise FrameError("invalid_message", f"{where} must be a string")
    if not value.strip():
        raise FrameError("empty_text", "the text is empty: type something before sending")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FrameError(
            "invalid_message", f"{where} holds invalid Unicode (a lone surrogate escape)"
        ) from None
    return TextInput(value)


def _decode_seed_message(obj: Mapping[str, Any]) -> ClientMessage:
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
        return _text(obj["data"], "data")
    if _audio_mime(mime):
        return _pcm(_b64decode(obj["data"], "data"))
    raise FrameError(
        "unsupported_mime_type",
        f"mime_type {mime[:40]!r} is not supported: use text/plain or audio/pcm",
    )


def _decode_typed_message(obj: Mapping[str, Any]) -> ClientMessage:
    kind = obj["type"]
    if kind == "text":
        return _text(obj.get("text"), "text")
    if kind == "audio":
        return _pcm(_b64decode(obj.get("data"), "data"))
    if kind == "end":
        return EndInput()
    shown = kind[:40] if isinstance(kind, str) else kind
    raise FrameError("unknown_type", f"unknown message type {shown!r}: expected text, audio or end")


def decode_client_frame(frame: Frame, *, extended: bool) -> ClientMessage:
    """Decode one client frame on a seeds (`extended=False`) or adkvoice.v1 connection."""
    if isinstance(frame, bytes | bytearray | memoryview):
        if not extended:
            raise FrameError(
                "binary_not_enabled",
                "binary frames need the adkvoice.v1 subprotocol; on this connection send "
                'JSON such as {"mime_type": "audio/pcm", "data": "<base64>"}',
            )
        return _pcm(bytes(frame))
    try:
        obj = json.loads(frame)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError("invalid_json", f"the frame is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise FrameError(
            "invalid_message",
            'a message must be a JSON object such as {"mime_type": "text/plain", "data": "hi"}',
        )
    if "type" in obj and "mime_type" not in obj:
        if not extended:
            raise FrameError(
                "extension_not_enabled",
                'typed messages ({"type": ...}) need the adkvoice.v1 subprotocol; send '
                '{"mime_type": "text/plain", "data": ...} on this connection',
            )
        return _decode_typed_message(obj)
    return _decode_seed_message(obj)


def _dumps(obj: Mapping[str, Any]) -> str:
    # The seeds' server uses json.dumps with its defaults; so do we, byte for byte.
    return json.dumps(obj)


def encode_client_text(text: str, *, extended: bool = False) -> str:
    if extended:
        return _dumps({"type": "text", "text": text})
    return _dumps({"mime_type": TEXT_MIME, "data": text})


def encode_client_audio(pcm: bytes, *, extended: bool = False) -> Frame:
    """16 kHz PCM: a binary frame on an extended connection, base64 JSON otherwise."""
    if extended:
        return bytes(pcm)
    return _dumps({"mime_type": AUDIO_MIME, "data": base64.b64encode(pcm).decode("ascii")})


def encode_client_end() -> str:
    return _dumps({"type": "end"})


# ------------------------------------------------------------------------ server → client


@dataclass(frozen=True, slots=True)
class Hello:
    session_id: str
    modality: Literal["TEXT", "AUDIO"]
    resumed: bool
    limits: Mapping[str, float | int]
    agent: str = ""
    awaiting_reply: bool = False
    input_rate: int = INPUT_RATE
    output_rate: int = OUTPUT_RATE
    protocol: str = SUBPROTOCOL


def encode_hello(hello: Hello) -> str:
    return _dumps(
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
    return _dumps({"type": "error", "code": code, "message": message, "retryable": retryable})


def _seed_text(text: str) -> str:
    return _dumps({"mime_type": TEXT_MIME, "data": text})


SEED_TURN_COMPLETE = _dumps({"turn_complete": True, "interrupted": None})
SEED_INTERRUPTED = _dumps({"turn_complete": None, "interrupted": True})


class TextDeltas:
    """Which agent text to show when a stream sends deltas and then the whole segment.

    Deltas pass through; a final (whole) segment passes only if no delta of it was seen,
    so nothing is shown twice and nothing is lost when a producer sends no deltas.
    """

    def __init__(self) -> None:
        self._streamed = False

    def feed(self, text: str, *, final: bool) -> str | None:
        if not final:
            self._streamed = self._streamed or bool(text)
            return text or None
        shown = None if self._streamed else (text or None)
        self._streamed = False
        return shown

    def reset(self) -> None:
        self._streamed = False


class SeedEncoder:
    """Events → seeds frames, as the sample's `agent_to_client_messaging` would send them."""

    def __init__(self) -> None:
        self._text = TextDeltas()
        self._transcript = TextDeltas()

    def encode(self, event: Event) -> list[str]:
        if isinstance(event, AgentAudio):
            data = base64.b64encode(event.pcm).decode("ascii")
            return [_dumps({"mime_type": AUDIO_MIME, "data": data})]
        if isinstance(event, AgentText):
            shown = self._text.feed(event.text, final=not event.partial)
            return [_seed_text(shown)] if shown else []
        if isinstance(event, Transcript):
            if event.speaker != "agent":
                return []
            shown = self._transcript.feed(event.text, final=event.finished)
            return [_seed_text(shown)] if shown else []
        if isinstance(event, TurnComplete):
            self._text.reset()
            self._transcript.reset()
            return [SEED_TURN_COMPLETE]
        if isinstance(event, Interrupted):
            return [SEED_INTERRUPTED]
        return []


def encode_extended(event: Event) -> list[Frame]:
    """Events → adkvoice.v1 frames (binary audio; resumption handles stay server-side)."""
    if isinstance(event, AgentAudio):
        if event.sample_rate == OUTPUT_RATE:
            return [bytes(event.pcm)]
        data = base64.b64encode(event.pcm).decode("ascii")
        return [_dumps({"type": "agent_audio", "sample_rate": event.sample_rate, "data": data})]
    body: dict[str, Any]
    if isinstance(event, AgentText):
        body = {"type": "agent_text", "text": event.text, "partial": event.partial}
    elif isinstance(event, Transcript):
        body = {
            "type": "transcript",
            "speaker": event.speaker,
            "text": event.text,
            "finished": event.finished,
        }
    elif isinstance(event, ToolCall):
        body = {"type": "tool_call", "id": event.call_id, "name": event.name, "args": event.args}
    elif isinstance(event, ToolResult):
        duration = None if event.duration_s is None else round(event.duration_s, 4)
        body = {
            "type": "tool_result",
            "id": event.call_id,
            "name": event.name,
            "response": event.response,
            "duration_s": duration,
        }
    elif isinstance(event, TurnComplete):
        body = {"type": "turn_complete"}
    elif isinstance(event, Interrupted):
        body = {"type": "interrupted"}
    elif isinstance(event, Usage):
        body = {
            "type": "usage",
            "prompt_tokens": event.prompt_tokens,
            "response_tokens": event.response_tokens,
            "total_tokens": event.total_tokens,
        }
    elif isinstance(event, Notice):
        body = {"type": "notice", "message": event.message, "level": event.level}
    elif isinstance(event, ErrorEvent):
        body = {
            "type": "error",
            "code": "agent_error",
            "message": event.message,
            "retryable": event.retryable,
        }
    else:
        return []  # UserText and ResumptionHandle are not sent to clients
    return [_dumps(body)]


# ---------------------------------------------------------- server frames, client side

ServerItem = Event | Hello


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


def _decode_typed_server(obj: Mapping[str, Any]) -> list[ServerItem]:
    kind = obj["type"]
    if kind == "hello":
        modality = _field(obj, "modality", str)
        if modality not in ("TEXT", "AUDIO"):
            raise FrameError("invalid_message", f"hello.modality {modality!r} is not TEXT/AUDIO")
        return [
            Hello(
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
        ]
    if kind == "agent_text":
        return [AgentText(text=_field(obj, "text", str), partial=_field(obj, "partial", bool))]
    if kind == "transcript":
        speaker = _field(obj, "speaker", str)
        if speaker not in ("user", "agent"):
            raise FrameError("invalid_message", f"transcript.speaker {speaker!r} is unknown")
        return [
            Transcript(
                speaker=speaker,
                text=_field(obj, "text", str),
                finished=_field(obj, "finished", bool),
            )
        ]
    if kind == "agent_audio":
        pcm = _b64decode(obj.get("data"), "agent_audio.data")
        return [AgentAudio(pcm=pcm, sample_rate=_field(obj, "sample_rate", int))]
    if kind == "tool_call":
        return [
            ToolCall(
                call_id=_field(obj, "id", str),
                name=_field(obj, "name", str),
                args=dict(_field(obj, "args", dict)),
            )
        ]
    if kind == "tool_result":
        duration = obj.get("duration_s")
        if duration is not None and (
            isinstance(duration, bool) or not isinstance(duration, int | float)
        ):
            raise FrameError("invalid_message", "tool_result.duration_s must be a number")
        return [
            ToolResult(
                call_id=_field(obj, "id", str),
                name=_field(obj, "name", str),
                response=dict(_field(obj, "response", dict)),
                duration_s=None if duration is None else float(duration),
            )
        ]
    if kind == "turn_complete":
        return [TurnComplete()]
    if kind == "interrupted":
        return [Interrupted()]
    if kind == "usage":
        return [
            Usage(
                prompt_tokens=_opt_int(obj, "prompt_tokens"),
                response_tokens=_opt_int(obj, "response_tokens"),
                total_tokens=_opt_int(obj, "total_tokens"),
            )
        ]
    if kind == "notice":
        level = obj.get("level", "info")
        if level not in ("info", "warning"):
            raise FrameError("invalid_message", f"notice.level {level!r} is unknown")
        return [Notice(message=_field(obj, "message", str), level=level)]
    if kind == "error":
        retryable = obj.get("retryable", False)
        return [ErrorEvent(message=_field(obj, "message", str), retryable=retryable is True)]
    shown = kind[:40] if isinstance(kind, str) else kind
    raise FrameError("unknown_type", f"unknown server message type {shown!r}")


def _flag(obj: Mapping[str, Any], name: str) -> bool:
    value = obj.get(name)
    if value is not None and not isinstance(value, bool):
        raise FrameError("invalid_message", f"{name} must be true, false or null")
    return value is True


def decode_server_frame(frame: Frame, *, extended: bool, is_audio: bool) -> list[ServerItem]:
    """Decode one server frame into events (what a remote backend does with it).

    On a seeds connection in audio mode, `text/plain` frames are the agent's transcript
    (that is what the seeds' server sends then); in text mode they are agent text deltas.
    """
    if isinstance(frame, bytes | bytearray | memoryview):
        if not extended:
            raise FrameError("binary_not_enabled", "a seeds server sends no binary frames")
        if len(frame) % 2:
            raise FrameError("invalid_audio", "binary audio needs an even number of bytes")
        return [AgentAudio(pcm=bytes(frame), sample_rate=OUTPUT_RATE)]
    try:
        obj = json.loads(frame)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError("invalid_json", f"the server frame is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise FrameError("invalid_message", "a server frame must be a JSON object")
    if isinstance(obj.get("type"), str) and "mime_type" not in obj:
        return _decode_typed_server(obj)
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
        return [AgentAudio(pcm=_b64decode(data, "data"), sample_rate=OUTPUT_RATE)]
    if mime == TEXT_MIME:
        if not isinstance(data, str):
            raise FrameError("invalid_message", "text/plain data must be a string")
        if is_audio:
            return [Transcript(speaker="agent", text=data, finished=False)]
        return [AgentText(text=data, partial=True)]
    raise FrameError("invalid_message", "unknown server frame: no mime_type, type or turn flags")


# ---------------------------------------------------------------------- SSE (/chat/stream)


def encode_sse_text(text: str) -> str:
    return f"data: {_dumps({'text': text})}\n\n"


def encode_sse_error(message: str) -> str:
    return f"data: {_dumps({'error': message})}\n\n"


@dataclass(frozen=True, slots=True)
class SseDone:
    """The `[DONE]` sentinel."""


@dataclass(frozen=True, slots=True)
class SseError:
    message: str


def decode_sse_data(data: str) -> str | SseDone | SseError:
    """Decode the payload of one `data:` line: the text chunk, `[DONE]`, or an error."""
    if data.strip() == "[DONE]":
        return SseDone()
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FrameError("invalid_json", f"SSE data is not JSON or [DONE] ({exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    if isinstance(obj, dict) and isinstance(obj.get("error"), str):
        return SseError(str(obj["error"]))
    raise FrameError("invalid_message", 'SSE data must be {"text": ...} or {"error": ...}')
