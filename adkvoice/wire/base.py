"""What every wire codec shares: frames, the error a bad frame raises, base64, JSON.

Codecs (`seeds`, `adkvoice_v1`, `chat_sse`, `run_live`, `run_sse`, `bidi_demo`) and the
`event_stream` reader are pure: no asyncio, no sockets.
Decoding bad input raises `FrameError` (a `ProtocolError`) with a message a user can act on
and a machine-readable `code`; decoders never return None for bad input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from adkvoice.errors import ProtocolError
from adkvoice.events import Event

TEXT_MIME = "text/plain"
AUDIO_MIME = "audio/pcm"
INPUT_RATE = 16_000  # what clients send: 16 kHz s16le mono
OUTPUT_RATE = 24_000  # what the agent speaks
# What a client may show the model (Gemini takes HEIC/HEIF too; browsers cannot make them).
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")

Frame = str | bytes

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
    "activity_not_enabled",  # activity start/end where the model detects turns itself
    # Raised by the server, not by the codec:
    "text_too_long",
    "audio_rate_exceeded",
    "text_rate_exceeded",  # typed turns faster than the server allows; the excess dropped
    "image_too_large",
    "image_rate_exceeded",
    "after_end",
    "shutting_down",
    "agent_error",
]


class FrameError(ProtocolError):
    """A frame that does not decode: `str(err)` says what to fix; `code` names the kind."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code


# ------------------------------------------------------- what a client sends a server


@dataclass(frozen=True, slots=True)
class TextInput:
    text: str


@dataclass(frozen=True, slots=True)
class AudioInput:
    pcm: bytes  # 16 kHz s16le mono


@dataclass(frozen=True, slots=True)
class EndInput:
    """The client is done sending (extension only)."""


@dataclass(frozen=True, slots=True)
class ImageInput:
    """A still image for the model to see (a camera or screen frame)."""

    data: bytes
    mime_type: str  # one of IMAGE_TYPES


ClientMessage = TextInput | AudioInput | ImageInput | EndInput


@dataclass(frozen=True, slots=True)
class ActivityInput:
    """The user started (or stopped) speaking, as the client marks it."""

    start: bool


# -------------------------------------------------------------------------- helpers


def dumps(obj: Mapping[str, Any]) -> str:
    # The seeds' server uses json.dumps with its defaults; so do we, byte for byte.
    return json.dumps(obj)


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON from a peer. Every way it can be unreadable is the peer's fault and one
    `FrameError`: bad syntax, bytes that are not UTF-8, an integer over Python's 4,300-digit
    conversion limit (a plain ValueError) and nesting deep enough to exhaust the stack."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        reason = str(exc).split(";")[0][:120]
        raise FrameError("invalid_json", f"the {what} is not valid JSON ({reason})") from None


def loads_object(frame: str, what: str) -> dict[str, Any]:
    """One JSON object from a text frame (`what` names it in errors: "frame", "SSE data")."""
    obj = parse_json(frame, what)
    if not isinstance(obj, dict):
        raise FrameError("invalid_message", f"a {what} must be a JSON object")
    return obj


def b64decode(data: Any, where: str) -> bytes:
    """Standard or URL-safe base64, padded or not (browsers and ADK differ)."""
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


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def image_input(data: Any, mime: Any, where: str) -> ImageInput:
    """An image message's base64 `data` (named `where` in errors) and its `mime` type."""
    if mime not in IMAGE_TYPES:
        raise FrameError(
            "unsupported_mime_type",
            f"images must be {', '.join(IMAGE_TYPES)}, not {str(mime)[:40]!r}",
        )
    image = b64decode(data, where)
    if not image:
        raise FrameError("invalid_message", f"the image's {where} is empty")
    return ImageInput(data=image, mime_type=mime)


def pcm_input(pcm: bytes) -> AudioInput:
    if len(pcm) % 2:
        raise FrameError(
            "invalid_audio",
            f"16-bit PCM needs an even number of bytes, got {len(pcm)}: send whole samples",
        )
    return AudioInput(pcm)


def text_input(value: Any, where: str) -> TextInput:
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


# ------------------------------------------------------- a client's codec, sans I/O


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame of an adkvoice.v1 server (see `adkvoice_v1`)."""

    session_id: str
    modality: Literal["TEXT", "AUDIO"]
    resumed: bool
    limits: Mapping[str, float | int]
    agent: str = ""
    awaiting_reply: bool = False
    input_rate: int = INPUT_RATE
    output_rate: int = OUTPUT_RATE
    protocol: str = "adkvoice.v1"


ServerItem = Event | Hello


class ClientCodec(Protocol):
    """How a remote backend speaks one transport: frames out, events in. No I/O."""

    @property
    def name(self) -> str:
        """The transport's name, for the line that says what the client talks to."""
        ...

    @property
    def tool_events(self) -> bool:
        """The server sends tool calls and results (else a turn that asked for a tool
        looks like an empty turn)."""
        ...

    def encode_text(self, text: str) -> Frame: ...

    def encode_audio(self, pcm: bytes) -> Frame | None:
        """16 kHz s16le mono PCM; None where the transport carries no audio (refused
        before connecting, see `Capabilities.audio`)."""
        ...

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        """A still image (one of `IMAGE_TYPES`) for the model to see; None where the
        transport has no image message (refused before sending, see `Capabilities.images`)."""
        ...

    def encode_activity(self, start: bool) -> Frame | None:
        """Activity start/end (push-to-talk); None where the transport has none."""
        ...

    def encode_goodbye(self) -> Frame | None:
        """What tells the server the client is leaving; None where there is nothing."""
        ...

    def decode(self, frame: Frame) -> list[ServerItem]: ...
