"""Pure mapping from ADK `Event`s to adkvoice events.

Kept apart from the backend's I/O so it can be tested with real ADK `Event` objects and
no connection. The mapper is stateful only to tie tool results to their calls (duration,
and whether the call ran in the background).

Every agent output carries the ADK event's `author` (the agent's name), and a handoff
between the agents of a team (`EventActions.transfer_to_agent`, which ADK's
`transfer_to_agent` tool sets on its response event) becomes a `Handoff` after that
response.

`speech_as_text`: the user asked for text replies from a model that only speaks (every
Gemini Live model since native audio): the speech's transcript becomes the agent's text
and the audio is dropped, so every view shows a text reply.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from google.adk.events.event import Event as AdkEvent

from adkvoice.events import (
    AgentAudio,
    AgentTeam,
    AgentText,
    ErrorEvent,
    Event,
    Handoff,
    InteractionStatus,
    Interrupted,
    Notice,
    ResumptionHandle,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
    Usage,
    UserText,
)
from adkvoice.live_models import DEFAULT_SCHEDULING, SCHEDULINGS, Scheduling

_RATE = re.compile(r"rate=(\d+)")
# Where `adkvoice serve`'s bidi-demo route puts a notice, which ADK's Event has no field for
# (`customMetadata`; see `wire.bidi_demo`).
NOTICE_KEY = "adkvoice_notice"
TRANSFER_TOOL = "transfer_to_agent"  # ADK's handoff tool
# Where `serve`'s bidi-demo route names a team's agents (`AgentTeam`), likewise.
AGENTS_KEY = "adkvoice_agents"


def audio_rate(mime_type: str | None, default: int = 24_000) -> int:
    """The sample rate in an `audio/pcm;rate=N` mime type."""
    match = _RATE.search(mime_type or "")
    return int(match.group(1)) if match else default


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if value is None:
        return {}
    return {"result": value}


_STATUSES: dict[str, InteractionStatus] = {
    "IN_PROGRESS": "in_progress",
    "IDLE": "idle",
    "REQUIRES_ACTION": "idle",  # google-genai: "Deprecated: Use IDLE instead."
}
_SCHEDULINGS: dict[str, Scheduling] = {name: name for name in SCHEDULINGS}


def _enum_name(value: Any) -> str:
    """An ADK/genai enum (or its string) as its name: IN_PROGRESS, WHEN_IDLE, ..."""
    return str(getattr(value, "value", value) or "").upper()


def interaction_of(status: Any) -> InteractionStatus | None:
    """What `interaction_status` says; None when the model does not report it."""
    return _STATUSES.get(_enum_name(status))


def _never(_name: str) -> bool:
    return False


class AdkEventMapper:
    """Maps one ADK event to zero or more adkvoice events, in display order.

    `runs_in_background(name)`: the model does not wait for this tool's result (see
    `backends.embedded`); its calls are marked background and their results scheduled.
    """

    def __init__(
        self,
        *,
        speech_as_text: bool = False,
        runs_in_background: Callable[[str], bool] = _never,
    ) -> None:
        self.speech_as_text = speech_as_text
        self._runs_in_background = runs_in_background
        self._tool_started: dict[str, tuple[float, bool]] = {}  # id -> (time, background)
        self._transfers: dict[str, str] = {}  # transfer_to_agent call id -> agent named

    def map(self, event: AdkEvent) -> list[Event]:
        out: list[Event] = []
        author = "" if event.author == "user" else (event.author or "")
        if event.error_code or event.error_message:
            message = event.error_message or f"model error {event.error_code}"
            out.append(ErrorEvent(message=message))
        if event.input_transcription and (
            event.input_transcription.text or event.input_transcription.finished
        ):
            out.append(
                Transcript(
                    speaker="user",
                    text=event.input_transcription.text or "",
                    finished=bool(event.input_transcription.finished),
                )
            )
        if event.output_transcription and (
            event.output_transcription.text or event.output_transcription.finished
        ):
            text = event.output_transcription.text or ""
            finished = bool(event.output_transcription.finished)
            if self.speech_as_text:
                out.append(AgentText(text=text, partial=not finished, author=author))
            else:
                out.append(Transcript(speaker="agent", text=text, finished=finished, author=author))
        if event.content and event.content.parts:
            out.extend(self._map_parts(event, author))
        handoff = self._handoff_of(event, author)
        if handoff is not None:
            out.append(handoff)
        if event.usage_metadata:
            usage = event.usage_metadata
            out.append(
                Usage(
                    prompt_tokens=usage.prompt_token_count,
                    response_tokens=usage.candidates_token_count,
                    total_tokens=usage.total_token_count,
                )
            )
        update = event.live_session_resumption_update
        if update and update.new_handle:
            out.append(ResumptionHandle(handle=update.new_handle, resumable=bool(update.resumable)))
        notice = _notice_of(event.custom_metadata)
        if notice is not None:
            out.append(notice)
        team = (event.custom_metadata or {}).get(AGENTS_KEY)
        if isinstance(team, list) and all(isinstance(name, str) for name in team):
            out.append(AgentTeam(names=tuple(team)))
        if event.go_away:
            left = event.go_away.time_left
            when = f" in {left}" if left else ""
            out.append(Notice(message=f"the model will end this connection{when}", level="warning"))
        if event.interrupted:
            out.append(Interrupted())
        if event.turn_complete:
            out.append(TurnComplete(interaction=interaction_of(event.interaction_status)))
        return out

    def _map_parts(self, event: AdkEvent, author: str) -> list[Event]:
        assert event.content is not None
        assert event.content.parts is not None
        out: list[Event] = []
        for part in event.content.parts:
            if part.thought:
                continue
            if part.text:
                if event.author == "user":
                    continue  # the user's own typed turn, echoed back by ADK
                out.append(AgentText(text=part.text, partial=bool(event.partial), author=author))
            elif part.inline_data and part.inline_data.data:
                mime = part.inline_data.mime_type or ""
                if mime.startswith("audio/") and not self.speech_as_text:
                    rate = audio_rate(mime)
                    out.append(
                        AgentAudio(pcm=part.inline_data.data, sample_rate=rate, author=author)
                    )
            elif part.function_call:
                call = part.function_call
                call_id = call.id or call.name or ""
                if call.name == TRANSFER_TOOL and isinstance(
                    (call.args or {}).get("agent_name"), str
                ):
                    self._transfers[call_id] = str((call.args or {})["agent_name"])
                # ADK runs a handoff at once, whatever the model's default for tools.
                handoff = call.name == TRANSFER_TOOL
                background = not handoff and self._runs_in_background(call.name or "")
                self._tool_started[call_id] = (time.monotonic(), background)
                out.append(
                    ToolCall(
                        call_id=call_id,
                        name=call.name or "",
                        args=dict(call.args or {}),
                        background=background,
                        author=author,
                    )
                )
            elif part.function_response:
                out.append(self._tool_result(part.function_response, author))
        return out

    def _handoff_of(self, event: AdkEvent, author: str) -> Handoff | None:
        """The handoff an event records: its `transfer_to_agent` action, or (from a
        transport that drops the actions) the response to a `transfer_to_agent` call."""
        target = event.actions.transfer_to_agent if event.actions else None
        for response in event.get_function_responses():
            if response.name == TRANSFER_TOOL:
                named = self._transfers.pop(response.id or response.name, None)
                target = target or named
        if not target:
            return None
        return Handoff(from_agent=author, to_agent=target)

    def _tool_result(self, response: Any, author: str) -> ToolResult:
        call_id = response.id or response.name or ""
        started = self._tool_started.pop(call_id, None)
        duration = None if started is None else time.monotonic() - started[0]
        scheduling = _SCHEDULINGS.get(_enum_name(response.scheduling))
        if scheduling is None and started is not None and started[1]:
            scheduling = DEFAULT_SCHEDULING
        return ToolResult(
            call_id=call_id,
            name=response.name or "",
            response=_as_dict(response.response),
            duration_s=duration,
            scheduling=scheduling,
            author=author,
        )


def _notice_of(metadata: dict[str, Any] | None) -> Notice | None:
    value = (metadata or {}).get(NOTICE_KEY)
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        return None
    if value.get("level") == "warning":
        return Notice(message=value["message"], level="warning")
    return Notice(message=value["message"], level="info")


def stored_events(history: Iterable[AdkEvent]) -> list[Event]:
    """A stored conversation as adkvoice events, for showing it again: the user's typed
    turns (`UserText`), finished transcripts, whole texts, tool calls and results."""
    mapper = AdkEventMapper()
    out: list[Event] = []
    for adk_event in history:
        if adk_event.author == "user" and adk_event.content and adk_event.content.parts:
            out.extend(
                UserText(text=part.text)
                for part in adk_event.content.parts
                if part.text and not part.thought
            )
        for event in mapper.map(adk_event):
            if (
                (isinstance(event, Transcript) and event.finished)
                or (isinstance(event, AgentText) and not event.partial)
                or isinstance(event, ToolCall | ToolResult | Handoff)
            ):
                out.append(event)
    return out
