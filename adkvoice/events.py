"""The normalized event model.

Every backend turns what it talks to (ADK events, a remote server's frames) into these
events; the view, the recorder, the audio sink and the server see nothing else. Events are
immutable and carry a monotonic timestamp taken when the backend produced them, so latency
can be measured anywhere downstream.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any, Literal

Speaker = Literal["user", "agent"]


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True, slots=True, kw_only=True)
class _Base:
    at: float = field(default_factory=_now, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserText(_Base):
    """A typed user turn, as sent to the agent (written by the app, not by backends)."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentText(_Base):
    """Agent text. `partial=True` is a streamed delta; `partial=False` is the whole text
    of a segment, sent once after its deltas (views that showed the deltas ignore it)."""

    text: str
    partial: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(_Base):
    """Speech transcription. Partial ones are deltas; a finished one holds the whole text."""

    speaker: Speaker
    text: str
    finished: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAudio(_Base):
    """A chunk of agent speech: 16-bit little-endian mono PCM."""

    pcm: bytes
    sample_rate: int = 24_000

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(_Base):
    call_id: str
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(_Base):
    call_id: str
    name: str
    response: dict[str, Any]
    duration_s: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnComplete(_Base):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(_Base):
    """The agent's reply was cut off: drop any agent audio still queued."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage(_Base):
    prompt_tokens: int | None
    response_tokens: int | None
    total_tokens: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumptionHandle(_Base):
    handle: str
    resumable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(_Base):
    """Something the user should see that is not part of the conversation
    (reconnecting, the model is going away, audio dropped)."""

    message: str
    level: Literal["info", "warning"] = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(_Base):
    message: str
    retryable: bool = False


Event = (
    UserText
    | AgentText
    | Transcript
    | AgentAudio
    | ToolCall
    | ToolResult
    | TurnComplete
    | Interrupted
    | Usage
    | ResumptionHandle
    | Notice
    | ErrorEvent
)

_TYPE_NAMES: dict[type[_Base], str] = {
    UserText: "user_text",
    AgentText: "agent_text",
    Transcript: "transcript",
    AgentAudio: "agent_audio",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
    TurnComplete: "turn_complete",
    Interrupted: "interrupted",
    Usage: "usage",
    ResumptionHandle: "resumption",
    Notice: "notice",
    ErrorEvent: "error",
}


def event_type(event: Event) -> str:
    """The stable name of an event's type, as written in JSON output."""
    return _TYPE_NAMES[type(event)]


def to_json_dict(event: Event, *, include_audio: bool = False) -> dict[str, Any]:
    """A JSON-ready dict for `--json` output and the recorder.

    Audio payloads are large; by default only their size and duration are written.
    """
    out: dict[str, Any] = {"type": event_type(event), "t": round(event.at, 6)}
    if isinstance(event, UserText):
        out.update(text=event.text)
    elif isinstance(event, AgentText):
        out.update(text=event.text, partial=event.partial)
    elif isinstance(event, Transcript):
        out.update(speaker=event.speaker, text=event.text, finished=event.finished)
    elif isinstance(event, AgentAudio):
        out.update(
            sample_rate=event.sample_rate,
            bytes=len(event.pcm),
            duration_s=round(event.duration_s, 4),
        )
        if include_audio:
            out["data"] = base64.b64encode(event.pcm).decode("ascii")
    elif isinstance(event, ToolCall):
        out.update(id=event.call_id, name=event.name, args=event.args)
    elif isinstance(event, ToolResult):
        duration = None if event.duration_s is None else round(event.duration_s, 4)
        out.update(id=event.call_id, name=event.name, response=event.response, duration_s=duration)
    elif isinstance(event, Usage):
        out.update(
            prompt_tokens=event.prompt_tokens,
            response_tokens=event.response_tokens,
            total_tokens=event.total_tokens,
        )
    elif isinstance(event, ResumptionHandle):
        out.update(handle=event.handle, resumable=event.resumable)
    elif isinstance(event, Notice):
        out.update(message=event.message, level=event.level)
    elif isinstance(event, ErrorEvent):
        out.update(message=event.message, retryable=event.retryable)
    return out
