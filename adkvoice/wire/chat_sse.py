"""Server-Sent Events for ``/chat/stream``, as in the ADK SSE tutorial (pure).

``data: {"text": "<chunk>"}`` events, then ``data: [DONE]``; each event ends with a blank
line. A failure mid-stream is ``data: {"error": "<message>"}`` before ``[DONE]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adkvoice.wire.base import FrameError, dumps, parse_json

SSE_DONE = "data: [DONE]\n\n"


def encode_sse_text(text: str) -> str:
    return f"data: {dumps({'text': text})}\n\n"


def encode_sse_error(message: str) -> str:
    return f"data: {dumps({'error': message})}\n\n"


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
    obj = parse_json(data, "SSE data (JSON or [DONE])")
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    if isinstance(obj, dict) and isinstance(obj.get("error"), str):
        return SseError(str(obj["error"]))
    raise FrameError("invalid_message", 'SSE data must be {"text": ...} or {"error": ...}')
