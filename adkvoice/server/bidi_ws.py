"""`WS /ws/{user_id}/{session_id}?proactivity=true&affective_dialog=true`: ADK's bidi-demo
protocol (google/adk-samples `python/agents/bidi-demo`; the frames are in
`adkvoice.wire.bidi_demo`) on the same embedded backend, hub and limits as
`/ws/{session_id}` (ws.py, whose `WsSession` this route's session extends).

- The reply modality follows the agent's model, as in the demo: speech with both
  transcripts from a model that only speaks (the catalogue in `live_models`; for a name it
  does not know, one with "native-audio"), text from any other.
- `proactivity` and `affective_dialog` are serve's `proactive` and `affective` session
  options; serve's other option parameters (`voice`, `language`, ...) work here too. What
  the model rejects closes the connection with 1008, saying why.
- Up: binary frames of 16 kHz PCM, `{"type": "text"}`, `{"type": "image"}` (JPEG, PNG or
  WebP; over `max_image_bytes` decoded: error `image_too_large`; faster than
  `images_per_s` beyond `image_burst`: dropped, error `image_rate_exceeded`).
  `{"type": "activity_start"}` / `activity_end` are refused (error
  `activity_not_enabled`): the model's own voice detection takes the turns here, and a
  model with it on closes the session on an activity signal.
- Down: one ADK `Event` per text frame. Errors (every code of ws.py) are Events with
  `errorCode` and `errorMessage`; notices (reconnecting, shutting down) go in
  `customMetadata`. Limits and closes (1007, 1008, 1009, 1011, 1013, 1001) are ws.py's.
- The conversation is stored under the path's user and session: a reconnect continues it,
  and a newer connection to it closes the older (1000). `/ws/ID` with the same user
  (`--user-id`, or the id itself) is the same conversation, and replaces it alike.
"""

from __future__ import annotations

import logging
import uuid

from starlette.websockets import WebSocket

from adkvoice.agents.loading import live_model_of, root_agent
from adkvoice.backends.base import Backend
from adkvoice.errors import AdkVoiceError, ConfigError
from adkvoice.events import Event, Notice
from adkvoice.live_models import family_of
from adkvoice.live_options import LiveOptions, from_query
from adkvoice.server.hub import Hub
from adkvoice.server.ws import (
    SESSION_ID,
    CloseRequest,
    WsSession,
    refuse,
    refused_access,
    refused_for_room,
)
from adkvoice.wire.base import ActivityInput, ErrorCode, Frame, FrameError
from adkvoice.wire.bidi_demo import BidiDemoServerCodec

log = logging.getLogger("adkvoice.server")

# The demo's query parameters, and the serve option each one is.
_RENAMED = (("proactivity", "proactive"), ("affective_dialog", "affective"))
ACTIVITY_REFUSED = (
    "activity_start and activity_end are not taken here: the model detects when you speak; "
    "send audio as it is captured"
)


def speaks_only(model: str) -> bool:
    """Whether `model` answers in speech only (then the session asks for AUDIO)."""
    family = family_of(model) if model else None
    if family is None:
        return "native-audio" in model.lower()  # the demo's own rule
    return not family.text_replies


def live_options(query: dict[str, str], defaults: LiveOptions) -> LiveOptions:
    """The session options of a bidi-demo URL (ConfigError names a bad one)."""
    renamed = dict(query)
    for theirs, ours in _RENAMED:
        if theirs in query:
            renamed[ours] = query[theirs]
    return from_query(renamed, defaults)


def hub_key(hub: Hub, user_id: str, session_id: str) -> str:
    """The hub's name for a conversation: `/ws/{session_id}`'s name when that route keeps
    it under the same user, so the two routes never run one conversation at once."""
    return session_id if user_id == hub.user_id(session_id) else f"{user_id}/{session_id}"


async def bidi_endpoint(ws: WebSocket, user_id: str, session_id: str) -> None:
    hub: Hub = ws.app.state.hub
    if await refused_access(ws, hub):
        return
    if not SESSION_ID.match(user_id) or not SESSION_ID.match(session_id):
        await refuse(ws, 1008, "user and session ids: 1-128 letters, digits, . _ ~ or -", None)
        return
    try:
        live = live_options(dict(ws.query_params), hub.options.live)
        model = live_model_of(hub.loaded, hub.options.model)
    except ConfigError as exc:
        await refuse(ws, 1008, str(exc), None)
        return
    except AdkVoiceError as exc:
        log.error("bidi-demo session refused: %s", exc)
        await refuse(ws, 1011, "the agent could not start", None)
        return
    key = hub_key(hub, user_id, session_id)
    if await refused_for_room(ws, hub, key):
        return
    await ws.accept()
    author = str(getattr(root_agent(hub.loaded), "name", "") or hub.loaded.app_name)
    codec = BidiDemoServerCodec(author=author, invocation_id=f"e-{uuid.uuid4()}")
    session = BidiSession(
        ws, hub, user_id, session_id, audio=speaks_only(model), live=live, codec=codec
    )
    await session.run()


class BidiSession(WsSession):
    """One bidi-demo connection: `WsSession` with the demo's frames."""

    protocol_name = "bidi-demo"

    def __init__(
        self,
        ws: WebSocket,
        hub: Hub,
        user_id: str,
        session_id: str,
        *,
        audio: bool,
        live: LiveOptions,
        codec: BidiDemoServerCodec,
    ) -> None:
        super().__init__(
            ws, hub, hub_key(hub, user_id, session_id), audio=audio, extended=False, live=live
        )
        self.user_id = user_id
        self.adk_session_id = session_id
        # The demo's page has one socket: a newer connection is another page or a reload.
        self.stays_open_when_replaced = False
        self._codec = codec

    def notify(self, message: str) -> None:
        self._spawn(self._send_events([Notice(message=message, level="warning")]))

    def _new_backend(self) -> Backend:
        return self.hub.session_backend(
            self.adk_session_id, audio=self.audio, live=self.live, user_id=self.user_id
        )

    def _encode(self, event: Event) -> list[Frame]:
        return self._codec.encode(event)

    def _error_frame(self, code: ErrorCode, message: str) -> Frame:
        return self._codec.encode_error(code, message)

    async def _agent_failed(self, message: str, *, retryable: bool) -> None:
        await self._send(self._codec.encode_error("agent_error", message))

    async def _dispatch(self, frame: Frame, backend: Backend) -> CloseRequest | None:
        try:
            msg = self._codec.decode(frame)
        except FrameError as exc:
            return await self._client_error(exc.code, str(exc))
        if isinstance(msg, ActivityInput):
            return await self._client_error("activity_not_enabled", ACTIVITY_REFUSED)
        return await self._handle(msg, backend)  # images too: `WsSession._on_image`
