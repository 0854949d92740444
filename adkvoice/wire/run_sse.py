"""ADK's `/run_sse`, as `adk api_server` and `adk web` serve it (pure).

Not a live connection: each typed turn is one ``POST /run_sse`` whose body is a
`RunAgentRequest` (snake_case)::

    {"app_name": "...", "user_id": "...", "session_id": "...", "streaming": true,
     "new_message": {"role": "user", "parts": [{"text": "..."}]}}

and whose answer is a `text/event-stream` of ADK `Event`s (``data: <Event JSON>``,
camelCase, as `/run_live` sends them): with ``streaming`` the text comes as partial
deltas and then once whole. A failure is ``data: {"error": "<Type>: <message>", ...}``.
The run carries text only (`run_async` with generateContent): no audio either way, no
transcripts, no activity signals. ADK sends no turn-complete flag: the stream's end is
the answer's end, which the channel marks with `RUN_END`.
"""

from __future__ import annotations

from typing import Any

from adkvoice.events import AgentText, ErrorEvent, TurnComplete
from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.base import Frame, ServerItem, dumps, parse_json
from adkvoice.wire.run_live import parse_event

NAME = "adk run_sse"
# Not JSON, so no server's data can be mistaken for it.
RUN_END = "[adkvoice: end of run]"


def run_request(*, app_name: str, user_id: str, session_id: str, text: str) -> str:
    """The body of one `/run_sse` POST: the user's typed turn, answered as a stream."""
    request: dict[str, Any] = {
        "app_name": app_name,
        "user_id": user_id,
        "session_id": session_id,
        "new_message": {"role": "user", "parts": [{"text": text}]},
        "streaming": True,
    }
    return dumps(request)


def run_failure(message: str) -> str:
    """A failed run (an HTTP error before the stream), in the shape ADK reports one."""
    return dumps({"error": message})


class RunSseClientCodec:
    """A client of `/run_sse`: a run request per typed turn, ADK Events back."""

    name = NAME
    tool_events = True

    def __init__(self, *, app_name: str, user_id: str, session_id: str) -> None:
        self._app = app_name
        self._user = user_id
        self._session = session_id
        self._mapper = AdkEventMapper()
        self._errors: list[str] = []  # what this run's events reported failing

    def encode_text(self, text: str) -> Frame:
        return run_request(
            app_name=self._app, user_id=self._user, session_id=self._session, text=text
        )

    def encode_audio(self, pcm: bytes) -> Frame | None:
        return None  # refused before connecting (no audio capability)

    def encode_image(self, data: bytes, mime_type: str) -> Frame | None:
        return None  # a run takes one typed message

    def encode_activity(self, start: bool) -> Frame | None:
        return None

    def encode_goodbye(self) -> Frame | None:
        return None

    def decode(self, frame: Frame) -> list[ServerItem]:
        if frame == RUN_END:
            # The run is over, whatever the model said about its turn.
            self._errors.clear()
            return [TurnComplete(interaction="idle")]
        if isinstance(frame, str) and '"error"' in frame[:200]:
            obj = parse_json(frame, "run_sse data")
            if isinstance(obj, dict) and isinstance(obj.get("error"), str):
                failure = str(obj["error"])
                if any(seen in failure for seen in self._errors):
                    return []  # ADK's error event already said it
                return [ErrorEvent(message=f"the agent's run failed: {failure}")]
        event = parse_event(frame, sender=NAME)
        mapped = self._mapper.map(event)
        self._errors.extend(e.message for e in mapped if isinstance(e, ErrorEvent))
        if not event.partial:
            return list(mapped)
        # A streamed run sends each part as it comes and then the whole event again:
        # only text is taken from the partial one (a delta), tool calls and token
        # counts from the whole one, so each is seen once.
        return [e for e in mapped if isinstance(e, AgentText | ErrorEvent)]
