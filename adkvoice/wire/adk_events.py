"""Pure mapping from ADK `Event`s to adkvoice events.

Kept apart from the backend's I/O so it can be tested with real ADK `Event` objects and
no connection. The mapper is stateful only to time tool calls (call → response).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from google.adk.events.event import Event as AdkEvent

from adkvoice.events import (
    AgentAudio,
    AgentText,
    ErrorEvent,
    Event,
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

_RATE = re.compile(r"rate=(\d+)")


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


class AdkEventMapper:
    """Maps one ADK event to zero or more adkvoice events, in display order."""

    def __init__(self) -> None:
        self._tool_started: dict[str, float] = {}

    def map(self, event: AdkEvent) -> list[Event]:
        out: list[Event] = []
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
            out.append(
                Transcript(
                    speaker="agent",
                    text=event.output_transcription.text or "",
                    finished=bool(event.output_transcription.finished),
                )
            )
        if event.content and event.content.parts:
            out.extend(self._map_parts(event))
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
        if event.go_away:
            left = event.go_away.time_left
            when = f" in {left}" if left else ""
            out.append(Notice(message=f"the model will end this connection{when}", level="warning"))
        if event.interrupted:
            out.append(Interrupted())
        if event.turn_complete:
            out.append(TurnComplete())
        return out

    def _map_parts(self, event: AdkEvent) -> list[Event]:
        assert event.content is not None
        assert event.content.parts is not None
        out: list[Event] = []
        for part in event.content.parts:
            if part.thought:
                continue
            if part.text:
                if event.author == "user":
                    continue  # the user's own typed turn, echoed back by ADK
                out.append(AgentText(text=part.text, partial=bool(event.partial)))
            elif part.inline_data and part.inline_data.data:
                mime = part.inline_data.mime_type or ""
                if mime.startswith("audio/"):
                    out.append(AgentAudio(pcm=part.inline_data.data, sample_rate=audio_rate(mime)))
            elif part.function_call:
                call = part.function_call
                call_id = call.id or call.name or ""
                self._tool_started[call_id] = time.monotonic()
                out.append(
                    ToolCall(call_id=call_id, name=call.name or "", args=dict(call.args or {}))
                )
            elif part.function_response:
                response = part.function_response
                call_id = response.id or response.name or ""
                started = self._tool_started.pop(call_id, None)
                duration = None if started is None else time.monotonic() - started
                out.append(
                    ToolResult(
                        call_id=call_id,
                        name=response.name or "",
                        response=_as_dict(response.response),
                        duration_s=duration,
                    )
                )
        return out


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
                or isinstance(event, ToolCall | ToolResult)
            ):
                out.append(event)
    return out
