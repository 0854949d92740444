"""The normalized event model.

Every backend turns what it talks to (ADK events, a remote server's frames) into these
events; the view, the recorder, the audio sink and the server see nothing else. Events are
immutable and carry a monotonic timestamp taken when they were produced, so latency can be
measured anywhere downstream and sinks never read the clock themselves.

Two events are derived rather than received: `AnswerComplete` (every backend emits it
once the agent has finished answering, see `adkvoice.backends.turns`) and
`Interrupted` with `source="user"` (the conversation core emits it when the local voice
detector hears the user cut in).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from adkvoice.live_models import Scheduling

Speaker = Literal["user", "agent"]
Modality = Literal["TEXT", "AUDIO"]  # how the agent answers: text parts, or speech
# Who cut the agent's reply short: the model (it heard the user), the user (the local voice
# detector or the talk key, before the model noticed), or a lost connection.
InterruptSource = Literal["model", "user", "connection"]
# What a model that answers one prompt in several turns (Gemini 3.8) says at the end of
# each: more turns follow (in_progress), or it is done and waits for the user (idle).
InteractionStatus = Literal["in_progress", "idle"]


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
    # The ADK agent that said it ("" when not known). Like `at`, not compared: metadata.
    author: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(_Base):
    """Speech transcription. Partial ones are deltas; a finished one holds the whole text."""

    speaker: Speaker
    text: str
    finished: bool
    author: str = field(default="", compare=False)  # the agent speaking (agent transcripts)


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAudio(_Base):
    """A chunk of agent speech: 16-bit little-endian mono PCM."""

    pcm: bytes
    sample_rate: int = 24_000
    author: str = field(default="", compare=False)

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(_Base):
    """The model asks for a tool. `background`: it does not wait for the result (a
    NON_BLOCKING call) and goes on talking; the result is spoken later."""

    call_id: str
    name: str
    args: dict[str, Any]
    background: bool = False
    author: str = field(default="", compare=False)  # the agent whose tool it is


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(_Base):
    """A tool's result, tied to its call by `call_id`. `scheduling` is set for a
    background call's result: when the model will speak it."""

    call_id: str
    name: str
    response: dict[str, Any]
    duration_s: float | None
    scheduling: Scheduling | None = None
    author: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnComplete(_Base):
    """A model turn ended. `interaction` is the model's own word on whether more turns
    answer the same prompt (None: the model does not say; see `backends.turns`)."""

    interaction: InteractionStatus | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerComplete(_Base):
    """The agent has finished answering the user's turn: the model turn that ended it was
    not just a tool call's. Follows the `TurnComplete` that ends the answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(_Base):
    """The agent's reply was cut off: drop any agent audio still queued."""

    source: InterruptSource = "model"


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
class ImageSent(_Base):
    """An image the user showed the model (written by the app, not by backends): a frame
    of a running camera or screen feed (`stream`), or a one-off image (`--image`,
    `/image`, `/screen`). `data` is what was sent (views and `--json` show its size, the
    recorder stores it); `count` is how many this source has sent so far."""

    source: str  # "screen 1", "camera 0", "image red.png"
    data: bytes
    mime_type: str
    width: int
    height: int
    count: int = 1
    stream: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Handoff(_Base):
    """One agent of a team handed the conversation to another (ADK's
    `transfer_to_agent`); what follows is the new agent's."""

    from_agent: str
    to_agent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTeam(_Base):
    """The agents a conversation may hear, root first (sent once, at the start, when
    there is more than one): views then name the agent on each of its lines."""

    names: tuple[str, ...]


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
    | AnswerComplete
    | Interrupted
    | Usage
    | ResumptionHandle
    | Notice
    | ErrorEvent
    | ImageSent
    | Handoff
    | AgentTeam
)

_TYPE_NAMES: dict[type[_Base], str] = {
    UserText: "user_text",
    AgentText: "agent_text",
    Transcript: "transcript",
    AgentAudio: "agent_audio",
    ToolCall: "tool_call",
    ToolResult: "tool_result",
    TurnComplete: "turn_complete",
    AnswerComplete: "answer_complete",
    Interrupted: "interrupted",
    Usage: "usage",
    ResumptionHandle: "resumption",
    Notice: "notice",
    ErrorEvent: "error",
    ImageSent: "image_sent",
    Handoff: "handoff",
    AgentTeam: "agents",
}


def event_type(event: Event) -> str:
    """The stable name of an event's type, as written in JSON output."""
    return _TYPE_NAMES[type(event)]


def event_fields(event: Event) -> dict[str, Any]:
    """An event's own fields as JSON values, under their wire names (audio: its size and
    duration only). One definition for `--json`, the recorder and the adkvoice.v1 wire.
    An agent's output names its `author` when it is known (older logs stay the same)."""
    fields = _own_fields(event)
    author = getattr(event, "author", "")
    if author:
        fields["author"] = author
    return fields


def _own_fields(event: Event) -> dict[str, Any]:
    if isinstance(event, UserText):
        return {"text": event.text}
    if isinstance(event, AgentText):
        return {"text": event.text, "partial": event.partial}
    if isinstance(event, Transcript):
        return {"speaker": event.speaker, "text": event.text, "finished": event.finished}
    if isinstance(event, AgentAudio):
        return {
            "sample_rate": event.sample_rate,
            "bytes": len(event.pcm),
            "duration_s": round(event.duration_s, 4),
        }
    if isinstance(event, ToolCall):
        call: dict[str, Any] = {"id": event.call_id, "name": event.name, "args": event.args}
        if event.background:
            call["background"] = True
        return call
    if isinstance(event, ToolResult):
        duration = None if event.duration_s is None else round(event.duration_s, 4)
        result: dict[str, Any] = {
            "id": event.call_id,
            "name": event.name,
            "response": event.response,
            "duration_s": duration,
        }
        if event.scheduling is not None:
            result["scheduling"] = event.scheduling
        return result
    if isinstance(event, TurnComplete):
        # Only models that report it (Gemini 3.8); older logs stay the same.
        return {} if event.interaction is None else {"interaction_status": event.interaction}
    if isinstance(event, Usage):
        return {
            "prompt_tokens": event.prompt_tokens,
            "response_tokens": event.response_tokens,
            "total_tokens": event.total_tokens,
        }
    if isinstance(event, ResumptionHandle):
        return {"handle": event.handle, "resumable": event.resumable}
    if isinstance(event, Notice):
        return {"message": event.message, "level": event.level}
    if isinstance(event, ErrorEvent):
        return {"message": event.message, "retryable": event.retryable}
    if isinstance(event, ImageSent):
        return {
            "source": event.source,
            "stream": event.stream,
            "mime_type": event.mime_type,
            "width": event.width,
            "height": event.height,
            "bytes": len(event.data),
            "count": event.count,
        }
    if isinstance(event, Handoff):
        return {"from": event.from_agent, "to": event.to_agent}
    if isinstance(event, AgentTeam):
        return {"names": list(event.names)}
    if isinstance(event, Interrupted):
        # The model is the usual source; logs written before sources existed stay the same.
        return {} if event.source == "model" else {"source": event.source}
    return {}


def to_json_dict(event: Event, *, include_audio: bool = False) -> dict[str, Any]:
    """A JSON-ready dict for `--json` output and the recorder.

    Audio payloads are large; by default only their size and duration are written.
    """
    out: dict[str, Any] = {"type": event_type(event), "t": round(event.at, 6)}
    out.update(event_fields(event))
    if include_audio and isinstance(event, AgentAudio):
        out["data"] = base64.b64encode(event.pcm).decode("ascii")
    return out


class SegmentText:
    """One streamed segment of agent text or a transcript: deltas, then (usually) the
    whole text once. What is new is shown once: the whole text is passed on only when no
    delta of it was, so nothing shows twice and nothing is lost when a producer sends no
    deltas."""

    def __init__(self) -> None:
        self._deltas: list[str] = []

    @property
    def streamed(self) -> bool:
        """A delta of the current segment has been passed on."""
        return bool(self._deltas)

    @property
    def text(self) -> str:
        """The deltas of the current segment so far."""
        return "".join(self._deltas)

    def feed(self, text: str, *, final: bool) -> str | None:
        """The text to show for one piece; a final (whole) piece ends the segment."""
        if not final:
            if text:
                self._deltas.append(text)
            return text or None
        shown = None if self._deltas else (text or None)
        self._deltas.clear()
        return shown

    def reset(self) -> None:
        self._deltas.clear()
