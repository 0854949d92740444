"""Sans-I/O builders for the server frames of the Gemini Live API.

Top-level keys are camelCase (`serverContent`, `toolCall`, ...): google-genai's
`_LiveServerMessage_from_mldev` only maps those spellings, so a snake_case key would make
the client raise. Audio is standard base64 (genai accepts either alphabet).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .client_messages import OUTPUT_MIME, JsonObject

InteractionStatus = Literal["IN_PROGRESS", "IDLE"]


@dataclass(frozen=True)
class FunctionCall:
    id: str
    name: str
    args: JsonObject


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    response_tokens: int

    def to_json(self) -> JsonObject:
        return {
            "promptTokenCount": self.prompt_tokens,
            "responseTokenCount": self.response_tokens,
            "totalTokenCount": self.prompt_tokens + self.response_tokens,
        }


def encode(frame: JsonObject) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def setup_complete() -> JsonObject:
    return {"setupComplete": {}}


def model_text(text: str) -> JsonObject:
    return {"serverContent": {"modelTurn": {"role": "model", "parts": [{"text": text}]}}}


def model_audio(pcm: bytes, transcription: str | None = None) -> JsonObject:
    """One audio chunk; a transcription chunk may ride in the same message (3.x style)."""
    part = {"inlineData": {"mimeType": OUTPUT_MIME, "data": base64.b64encode(pcm).decode("ascii")}}
    content: JsonObject = {"modelTurn": {"role": "model", "parts": [part]}}
    if transcription is not None:
        content["outputTranscription"] = {"text": transcription}
    return {"serverContent": content}


def output_transcription(text: str | None, *, finished: bool = False) -> JsonObject:
    body: JsonObject = {}
    if text is not None:
        body["text"] = text
    if finished:
        body["finished"] = True
    return {"serverContent": {"outputTranscription": body}}


def input_transcription(text: str, *, finished: bool = False) -> JsonObject:
    body: JsonObject = {"text": text}
    if finished:
        body["finished"] = True
    return {"serverContent": {"inputTranscription": body}}


def generation_complete() -> JsonObject:
    return {"serverContent": {"generationComplete": True}}


def turn_complete(
    usage: Usage | None = None, status: InteractionStatus | None = None
) -> JsonObject:
    """The end of a model turn. `status` (models that report it): IN_PROGRESS when more
    turns answer the same prompt, IDLE when the model is done and waits for the user."""
    content: JsonObject = {"turnComplete": True}
    if status is not None:
        content["interactionStatus"] = status
    # Gemini sends the turn's usage in the same message as turnComplete.
    frame: JsonObject = {"serverContent": content}
    if usage is not None:
        frame["usageMetadata"] = usage.to_json()
    return frame


def interrupted() -> JsonObject:
    return {"serverContent": {"interrupted": True}}


def tool_call(calls: Sequence[FunctionCall]) -> JsonObject:
    return {
        "toolCall": {"functionCalls": [{"id": c.id, "name": c.name, "args": c.args} for c in calls]}
    }


def tool_call_cancellation(ids: Sequence[str]) -> JsonObject:
    return {"toolCallCancellation": {"ids": list(ids)}}


def format_duration(seconds: float) -> str:
    """Proto3 JSON Duration, e.g. 1.5 -> "1.5s"."""
    return f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".") + "s"


def go_away(time_left_s: float) -> JsonObject:
    return {"goAway": {"timeLeft": format_duration(time_left_s)}}


def resumption_update(handle: str | None, *, resumable: bool) -> JsonObject:
    body: JsonObject = {"resumable": resumable}
    if handle is not None:
        body["newHandle"] = handle
    return {"sessionResumptionUpdate": body}
