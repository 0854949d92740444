"""The ADK bidi-demo's WebSocket (google/adk-samples `python/agents/bidi-demo`), pure.

``ws://HOST/ws/{user_id}/{session_id}?proactivity=true&affective_dialog=true`` (both
optional). Client → server::

    binary frame: raw 16 kHz s16le mono PCM (`send_realtime` of an audio blob)
    {"type": "text", "text": "..."}              (`send_content`)
    {"type": "image", "data": "<base64>", "mimeType": "image/jpeg"}

Nothing else: the server ignores other types, so there is no activity start/end (its
model's own voice detection takes the turns) and no goodbye (closing the socket ends the
session). Server → client: one ADK `Event` per text frame,
`event.model_dump_json(exclude_none=True, by_alias=True)`, as `/run_live` sends it.

The server, not the client, picks the reply modality: speech with transcripts for a model
named "native-audio", text for any other. A client that wants text therefore takes the
speech's transcript as the text reply whenever it comes (a text server sends none).

`BidiDemoServerCodec` is the other side, for `adkvoice serve`: it reads those client frames
(and `{"type": "activity_start"}` / `{"type": "activity_end"}`, which the ADK dev guide
shows) and writes adkvoice's events in the shape ADK's `Event` dumps to, so that the demo's
page and `BidiDemoClientCodec` both read them. What the shape has no field for travels in
`customMetadata` (a notice: `{"adkvoice_notice": {"message", "level"}}`); a frame the
server cannot take is answered with an Event carrying `errorCode` and `errorMessage`.
"""

from __future__ import annotations

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
)
from adkvoice.wire.adk_events import AGENTS_KEY, NOTICE_KEY, AdkEventMapper
from adkvoice.wire.base import (
    ActivityInput,
    AudioInput,
    ErrorCode,
    Frame,
    FrameError,
    ImageInput,
    ServerItem,
    TextInput,
    b64encode,
    dumps,
    image_input,
    loads_object,
    pcm_input,
    text_input,
)
from adkvoice.wire.run_live import decode_event

NAME = "bidi-demo"
USER = "user"  # the author ADK gives the user's transcripts


def encode_text(text: str) -> str:
    return dumps({"type": "text", "text": text})


def encode_image(data: bytes, mime_type: str) -> str:
    return dumps({"type": "image", "data": b64encode(data), "mimeType": mime_type})


class BidiDemoClientCodec:
    """A client of bidi-demo: binary PCM and typed JSON up, ADK Event JSON down."""

    name = NAME
    tool_events = True

    def __init__(self, *, speech_as_text: bool = False) -> None:
        self._mapper = AdkEventMapper(speech_as_text=speech_as_text)

    def encode_text(self, text: str) -> Frame:
        return encode_text(text)

    def encode_audio(self, pcm: bytes) -> Frame:
        return bytes(pcm)

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        return encode_image(data, mime_type)

    def encode_activity(self, start: bool) -> Frame | None:
        return None

    def encode_goodbye(self) -> Frame | None:
        return None

    def decode(self, frame: Frame) -> list[ServerItem]:
        return decode_event(self._mapper, frame, sender=NAME)


# ---------------------------------------------------------------- the server's side

BidiClientMessage = TextInput | AudioInput | ImageInput | ActivityInput


def decode_client_frame(frame: Frame) -> BidiClientMessage:
    """One frame from a bidi-demo client; `FrameError` says what is wrong with it."""
    if isinstance(frame, bytes):
        return pcm_input(frame)
    obj = loads_object(frame, "frame")
    kind = obj.get("type")
    if kind == "text":
        return text_input(obj.get("text"), '"text"')
    if kind == "image":
        # The demo's server assumes JPEG too.
        return image_input(obj.get("data"), obj.get("mimeType", "image/jpeg"), '"data"')
    if kind in ("activity_start", "activity_end"):
        return ActivityInput(start=kind == "activity_start")
    raise FrameError(
        "unknown_type",
        f"unknown message type {str(kind)[:40]!r}: send binary PCM, or JSON of type "
        '"text" or "image"',
    )


class BidiDemoServerCodec:
    """adkvoice's events as ADK `Event` JSON, the way bidi-demo's server sends them.

    `author` is the agent's name (ADK puts it on every event but the user's transcripts);
    `invocation_id` ties one connection's events together, as one `run_live` does."""

    def __init__(self, *, author: str, invocation_id: str = "") -> None:
        self.author = author
        self.invocation_id = invocation_id

    def decode(self, frame: Frame) -> BidiClientMessage:
        return decode_client_frame(frame)

    def encode(self, event: Event) -> list[Frame]:
        fields = _event_fields(event)
        if fields is None:
            return []
        author = getattr(event, "author", "")
        if author and isinstance(author, str):  # a team's agent; else the app's name
            fields.setdefault("author", author)
        return [self._dump(fields)]

    def encode_error(self, code: ErrorCode | str, message: str) -> Frame:
        return self._dump({"error_code": code, "error_message": message})

    def _dump(self, fields: dict[str, Any]) -> str:
        from google.adk.events.event import Event as AdkEvent

        fields.setdefault("author", self.author)
        adk_event = AdkEvent(invocation_id=self.invocation_id, **fields)
        return adk_event.model_dump_json(exclude_none=True, by_alias=True)


def _event_fields(event: Event) -> dict[str, Any] | None:
    """The ADK `Event` fields that say what `event` says; None for what is not sent
    (the user's own text, answer ends and resumption handles are the server's business)."""
    from google.adk.events.event_actions import EventActions
    from google.genai import types

    if isinstance(event, AgentText):
        return {"content": _model_part(types.Part(text=event.text)), "partial": event.partial}
    if isinstance(event, Transcript):
        said = types.Transcription(text=event.text, finished=event.finished)
        if event.speaker == "user":
            return {"input_transcription": said, "partial": not event.finished, "author": USER}
        return {"output_transcription": said, "partial": not event.finished}
    if isinstance(event, AgentAudio):
        blob = types.Blob(mime_type=f"audio/pcm;rate={event.sample_rate}", data=event.pcm)
        return {"content": _model_part(types.Part(inline_data=blob))}
    if isinstance(event, ToolCall):
        call = types.FunctionCall(id=event.call_id, name=event.name, args=event.args)
        return {"content": _model_part(types.Part(function_call=call))}
    if isinstance(event, ToolResult):
        result = types.FunctionResponse(
            id=event.call_id,
            name=event.name,
            response=event.response,
            scheduling=None
            if event.scheduling is None
            else types.FunctionResponseScheduling(event.scheduling),
        )
        # ADK sends a tool's result as the user's part of the conversation.
        content = types.Content(role="user", parts=[types.Part(function_response=result)])
        return {"content": content}
    if isinstance(event, TurnComplete):
        status = None if event.interaction is None else event.interaction.upper()
        return {"turn_complete": True, "interaction_status": status}
    if isinstance(event, Interrupted):
        return {"interrupted": True}
    if isinstance(event, Usage):
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=event.prompt_tokens,
            candidates_token_count=event.response_tokens,
            total_token_count=event.total_tokens,
        )
        return {"usage_metadata": usage}
    if isinstance(event, ErrorEvent):
        return {"error_code": "model_error", "error_message": event.message}
    if isinstance(event, Notice):
        return {"custom_metadata": {NOTICE_KEY: {"message": event.message, "level": event.level}}}
    if isinstance(event, Handoff):
        # As ADK records it: the transfer action, on an event of the agent handing over.
        actions = EventActions(transfer_to_agent=event.to_agent)
        return {"actions": actions, "author": event.from_agent or None}
    if isinstance(event, AgentTeam):
        return {"custom_metadata": {AGENTS_KEY: list(event.names)}}
    return None


def _model_part(part: Any) -> Any:
    from google.genai import types

    return types.Content(role="model", parts=[part])
