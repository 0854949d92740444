"""`WS /ws/{session_id}?is_audio=true|false`: one connection, one `EmbeddedBackend`.

The seeds' protocol by default, the adkvoice.v1 extension when the client asks for the
subprotocol (see `adkvoice.wire.adkvoice_v1`). What a client can get wrong is answered on its own
connection only:

- malformed JSON, unknown mime type or type, bad base64, odd PCM, empty text, binary
  without the extension: an error frame (`{"type": "error", "code": ...}`), the frame is
  dropped; after `max_client_errors` of them, close 1007;
- text over `max_text_chars`: error frame `text_too_long`;
- an image (adkvoice.v1) over `max_image_bytes` decoded: error frame `image_too_large`;
  images faster than `images_per_s` beyond `image_burst`: the excess is dropped, error
  frame `image_rate_exceeded` at most once a second;
- a frame over `max_frame_bytes`: close 1009;
- audio faster than real time plus a burst: the excess is dropped, error frame
  `audio_rate_exceeded` at most once a second;
- typed turns sent without waiting for answers, beyond a burst and then faster than
  `text_turns_per_minute`: the excess is dropped, error frame `text_rate_exceeded` at
  most once a second (each answer refills the burst, so a client that waits for
  answers is never limited);
- anything after `{"type": "end"}`: error frame `after_end`;
- bad token, Origin, session id or is_audio, or a session option (`voice`, `language`,
  `vad_silence_ms`, `vad_sensitivity`, `barge_in`, `proactive`, `affective`, `thinking`)
  that is malformed or that the agent's model rejects: close 1008 with the reason;
- a newer connection with the same session id takes the conversation over: an older
  adkvoice.v1 connection is closed (1000); an older seeds one stays open and quiet until
  the newer one closes (the sample's page keeps its first socket when Start Audio opens a
  second, and reconnects 5 s after any close), and a message on it closes it (1000);
- too many sessions: close 1013; server shutting down: close 1001 after the turn;
- the agent fails (model connection lost): error frame (extension) and close 1011;
  reconnecting with the same id continues the conversation.

Each kind of error is logged once per connection; internal exception text never goes to
the peer. Audio up reaches the model in chunks of 40 ms or more (`server/uplink.py`), and
what is held goes before any other message and at close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Coroutine, Mapping
from typing import Any, NamedTuple

from starlette.websockets import WebSocket, WebSocketDisconnect

from adkvoice.backends.base import Backend
from adkvoice.conversation.core import Conversation
from adkvoice.errors import (
    AdkVoiceError,
    BackendError,
    ConfigError,
    ConnectionLostError,
    ModelRejectedError,
)
from adkvoice.events import (
    AnswerComplete,
    ErrorEvent,
    Event,
    Notice,
    UserText,
)
from adkvoice.live_options import LiveOptions, from_query
from adkvoice.server.hub import REPLACED, Hub
from adkvoice.server.limits import ErrorTally, InputRates, Refusal
from adkvoice.server.security import cross_site_refusal, host_name, token_ok
from adkvoice.server.uplink import AudioUplink
from adkvoice.wire.adkvoice_v1 import (
    SUBPROTOCOL,
    decode_client_frame,
    encode_error,
    encode_extended,
    encode_hello,
)
from adkvoice.wire.base import (
    AudioInput,
    ClientMessage,
    EndInput,
    ErrorCode,
    Frame,
    FrameError,
    Hello,
    ImageInput,
    TextInput,
)
from adkvoice.wire.seeds import SeedEncoder

log = logging.getLogger("adkvoice.server")

SESSION_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
MAX_REASON_BYTES = 123
NOTIFY_EVERY_S = 1.0
MODEL_ERROR = "the model reported an error for this turn"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class CloseRequest(NamedTuple):
    code: int
    reason: str


# Not a close: let the conversation go and keep the socket open and quiet (see
# `Hub.register`).
GO_QUIET = CloseRequest(0, "quiet")


def audio_flag(query: Mapping[str, str]) -> bool | None:
    """The `is_audio` query parameter (false when absent); None when it is not a flag."""
    value = query.get("is_audio", "false").strip().lower()
    if value in _TRUE:
        return True
    return False if value in _FALSE else None


def close_reason(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def peer_message(exc: BackendError) -> str:
    """What a client may be told about an agent failure: no internal details."""
    if isinstance(exc, ConnectionLostError):
        return "the agent lost its connection to the model; reconnect to continue"
    if isinstance(exc, ModelRejectedError):
        return "the model service rejected the agent's model; tell the server's operator"
    return "the agent failed; reconnect to try again"


def _frame_size(frame: Frame, limit: int) -> int:
    if isinstance(frame, bytes):
        return len(frame)
    if len(frame) * 4 <= limit:  # cannot be over the limit: skip the encode
        return len(frame)
    return len(frame.encode("utf-8", "surrogatepass"))


async def refuse(ws: WebSocket, code: int, reason: str, subprotocol: str | None) -> None:
    """Accept, then close with a code and reason: browsers only show those, never the HTTP
    status of a refused handshake."""
    with contextlib.suppress(Exception):
        await ws.accept(subprotocol=subprotocol)
        await ws.close(code, close_reason(reason))


async def refused_access(ws: WebSocket, hub: Hub, subprotocol: str | None = None) -> bool:
    """The Host, Origin and token checks of every WebSocket route: True when the
    connection was refused (and closed, saying why)."""
    options = hub.options
    headers = {k.lower(): v for k, v in ws.headers.items()}
    if not options.answers_to(headers.get("host")):
        log.warning("refused a WebSocket for host %r", host_name(headers.get("host"))[:100])
        await refuse(ws, 1008, "this server does not answer to that host name", subprotocol)
        return True
    refusal = cross_site_refusal(
        headers, scheme=ws.url.scheme, allowed_origins=options.allowed_origins
    )
    if refusal is not None:
        log.warning("refused a WebSocket from origin %r", headers.get("origin", "")[:100])
        await refuse(ws, 1008, refusal, subprotocol)
        return True
    if not token_ok(options.token, headers, dict(ws.query_params)):
        log.warning("refused a WebSocket without a valid token")
        await refuse(ws, 1008, "missing or wrong token: add ?token=...", subprotocol)
        return True
    return False


async def refused_for_room(
    ws: WebSocket, hub: Hub, key: str, subprotocol: str | None = None
) -> bool:
    """The server is shutting down or full (a connection that replaces the session `key`
    takes its place): True when the connection was refused."""
    if hub.draining:
        await refuse(ws, 1001, "the server is shutting down; try again shortly", subprotocol)
        return True
    if not hub.has_room(replacing=key):
        log.warning("refused session %s: %d sessions is the limit", key, hub.active)
        await refuse(ws, 1013, "too many sessions on this server; try again later", subprotocol)
        return True
    return False


async def websocket_endpoint(ws: WebSocket, session_id: str) -> None:
    hub: Hub = ws.app.state.hub
    options = hub.options
    extended = SUBPROTOCOL in ws.scope.get("subprotocols", [])
    subprotocol = SUBPROTOCOL if extended else None
    query = dict(ws.query_params)
    if await refused_access(ws, hub, subprotocol):
        return
    if not SESSION_ID.match(session_id):
        await refuse(ws, 1008, "session id: 1-128 letters, digits, . _ ~ or -", subprotocol)
        return
    is_audio = audio_flag(query)
    if is_audio is None:
        await refuse(ws, 1008, "is_audio must be true or false", subprotocol)
        return
    try:
        live = from_query(query, options.live)
    except ConfigError as exc:
        await refuse(ws, 1008, str(exc), subprotocol)
        return
    if await refused_for_room(ws, hub, session_id, subprotocol):
        return
    await ws.accept(subprotocol=subprotocol)
    session = WsSession(ws, hub, session_id, audio=is_audio, extended=extended, live=live)
    await session.run()


class WsSession:
    """One client connection bridged to one embedded backend. Another protocol on a
    WebSocket (bidi-demo) subclasses it, replacing `_new_backend`, `_dispatch` (reading a
    frame), `_encode`, `_error_frame`, `_agent_failed` and `notify`."""

    protocol_name = "seeds protocol"

    def __init__(
        self,
        ws: WebSocket,
        hub: Hub,
        session_id: str,
        *,
        audio: bool,
        extended: bool,
        live: LiveOptions | None = None,
    ) -> None:
        self.ws = ws
        self.live = live or LiveOptions()
        self.hub = hub
        self.session_id = session_id
        self.audio = audio
        self.extended = extended
        # Whether an answer is owed (a graceful shutdown waits for it): the conversation
        # core's rule, the same as every other consumer's.
        self.conversation = Conversation()
        self.idle = self.conversation.idle
        opts = hub.options
        self._opts = opts
        self._close_requested: asyncio.Future[CloseRequest | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._done = asyncio.Event()
        self._released = asyncio.Event()  # the backend is closed
        self.stays_open_when_replaced = not extended
        self._closed = False
        self._ended = False
        self._tally = ErrorTally(log, f"session {session_id}")
        self._rates = InputRates(opts, self._tally)
        self._client_errors = 0
        self._encoder = SeedEncoder()
        self._send_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._uplink: AudioUplink | None = None  # the audio on its way to the backend

    # Hub interface -----------------------------------------------------------------------
    def request_close(self, code: int, reason: str) -> None:
        if not self._close_requested.done():
            self._close_requested.set_result(CloseRequest(code, reason))

    def notify(self, message: str) -> None:
        if self.extended:  # the seeds protocol has no frame for it
            self._spawn(self._send_events([Notice(message=message, level="warning")]))

    def request_quiet(self) -> None:
        if not self._close_requested.done():
            self._close_requested.set_result(GO_QUIET)

    async def wait_released(self) -> None:
        await self._released.wait()

    async def wait_done(self) -> None:
        await self._done.wait()

    # Lifecycle ---------------------------------------------------------------------------
    async def run(self) -> None:
        await self.hub.register(self)
        mode = "audio" if self.audio else "text"
        proto = SUBPROTOCOL if self.extended else self.protocol_name
        log.info("session %s connected (%s, %s)", self.session_id, mode, proto)
        try:
            await self._run()
        except Exception:
            log.exception("session %s failed", self.session_id)
            await self._close(1011, "internal server error")
        finally:
            for task in self._background:
                task.cancel()
            self.hub.unregister(self)
            self.idle.set()
            self._released.set()
            self._done.set()
            summary = f"; client errors: {self._tally.summary()}" if self._tally.total else ""
            log.info("session %s closed%s", self.session_id, summary)

    def _new_backend(self) -> Backend:
        return self.hub.session_backend(self.session_id, audio=self.audio, live=self.live)

    async def _run(self) -> None:
        opts = self._opts
        backend = self._new_backend()
        try:
            await backend.start()
        except ConfigError as exc:
            # A session option the agent's model rejects: the client's to fix.
            log.info("session %s: refused: %s", self.session_id, exc)
            await self._close(1008, str(exc))
            return
        except AdkVoiceError as exc:
            log.error("session %s: the agent could not start: %s", self.session_id, exc)
            await self._close(1011, "the agent could not start")
            return
        request: CloseRequest | None = None
        uplink = self._uplink = AudioUplink.for_serve(backend.send_audio)
        try:
            if self.extended:
                resumed, awaiting_reply = await self.hub.history_state(self.session_id)
                hello = Hello(
                    session_id=self.session_id,
                    modality="AUDIO" if self.audio else "TEXT",
                    resumed=resumed,
                    awaiting_reply=awaiting_reply,
                    limits=opts.limits(),
                    agent=self.hub.loaded.app_name,
                )
                await self._send(encode_hello(hello))
            pump = asyncio.create_task(self._pump(backend), name="ws-pump")
            receive = asyncio.create_task(self._receive(backend), name="ws-receive")
            try:
                waits = [pump, receive, self._close_requested]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (pump, receive):
                    task.cancel()
                await asyncio.wait([pump, receive])
            request = self._outcome(pump, receive)
            if request is not None and request is not GO_QUIET:
                await self._close(request.code, request.reason)
        finally:
            await uplink.close()
            await backend.close()
            self._released.set()
        if request is GO_QUIET:
            await self._stay_quiet()

    async def _stay_quiet(self) -> None:
        """Replaced by a newer connection of the same id, whose conversation this was:
        nothing more is sent here. The socket stays open until its client closes it, the
        hub closes it (the newer connection closed, shutdown), or a message arrives on it:
        its client still uses it, so it is closed saying why rather than the message lost."""
        self._close_requested = asyncio.get_running_loop().create_future()
        receive = asyncio.create_task(self._first_message(), name="ws-quiet")
        waits: list[asyncio.Future[Any]] = [receive, self._close_requested]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            receive.cancel()
        if self._close_requested.done():
            request = self._close_requested.result()
            if request is not None:
                await self._close(request.code, request.reason)
        elif not receive.cancelled() and receive.result():
            await self._close(1000, REPLACED)

    async def _first_message(self) -> bool:
        """True when a message arrives; False when the client goes away."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError, OSError):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            self._closed = True
            return False
        return True

    def _outcome(
        self, pump: asyncio.Task[CloseRequest | None], receive: asyncio.Task[CloseRequest | None]
    ) -> CloseRequest | None:
        """How to close: a request from the hub wins, then the client side, then the agent's.
        A task that crashed is logged here and closes the connection with 1011."""
        crashed = False
        results: list[CloseRequest | None] = []
        for task in (receive, pump):
            if not task.done() or task.cancelled():
                results.append(None)
            elif (exc := task.exception()) is not None:
                log.error("session %s failed", self.session_id, exc_info=exc)
                crashed = True
                results.append(None)
            else:
                results.append(task.result())
        if self._close_requested.done():
            return self._close_requested.result()
        if crashed:
            return CloseRequest(1011, "internal server error")
        return results[0] or results[1]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Sending -----------------------------------------------------------------------------
    async def _send(self, frame: Frame) -> None:
        if self._closed:
            return
        try:
            async with self._send_lock:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                else:
                    await self.ws.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed = True  # the peer is gone; the receive loop sees it too

    def _encode(self, event: Event) -> list[Frame]:
        if self.extended:
            return encode_extended(event)
        return list(self._encoder.encode(event))

    def _error_frame(self, code: ErrorCode, message: str) -> Frame:
        return encode_error(code, message)

    async def _send_events(self, events: list[Event]) -> None:
        for event in events:
            for frame in self._encode(event):
                await self._send(frame)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            async with self._send_lock:
                await self.ws.close(code, close_reason(reason))

    # Agent → client ----------------------------------------------------------------------
    async def _pump(self, backend: Backend) -> CloseRequest | None:
        try:
            async for event in backend.events():
                self.conversation.publish(event)
                if isinstance(event, AnswerComplete):
                    self._rates.answered()
                if isinstance(event, ErrorEvent):
                    # ADK fills error messages with exception text: log it, send a summary.
                    self._tally.record("model_error", event.message)
                    event = ErrorEvent(message=MODEL_ERROR, retryable=event.retryable)
                await self._send_events([event])
        except BackendError as exc:
            log.warning("session %s: %s", self.session_id, exc)
            message = peer_message(exc)
            await self._agent_failed(message, retryable=exc.retryable)
            return CloseRequest(1011, message)
        return CloseRequest(1011, "the agent session ended; reconnect to continue")

    async def _agent_failed(self, message: str, *, retryable: bool) -> None:
        """Say why the agent ended before closing (the seeds protocol cannot)."""
        if self.extended:
            await self._send(encode_error("agent_error", message, retryable=retryable))

    # Client → agent ----------------------------------------------------------------------
    async def _receive(self, backend: Backend) -> CloseRequest | None:
        limit = self._opts.max_frame_bytes
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError, OSError):
                self._closed = True
                return None
            if message["type"] == "websocket.disconnect":
                self._closed = True
                return None
            frame: Frame | None = message.get("text")
            if frame is None:
                frame = message.get("bytes")
            if frame is None:
                continue
            size = _frame_size(frame, limit)
            if size > limit:
                self._tally.record("frame_too_large", f"a {size}-byte frame")
                return CloseRequest(1009, f"frame of {size} bytes is over the {limit}-byte limit")
            close = await self._dispatch(frame, backend)
            if close is not None:
                return close

    async def _dispatch(self, frame: Frame, backend: Backend) -> CloseRequest | None:
        """Decode one frame from the client and act on it."""
        try:
            decoded = decode_client_frame(frame, extended=self.extended)
        except FrameError as exc:
            return await self._client_error(exc.code, str(exc))
        return await self._handle(decoded, backend)

    async def _client_error(self, code: ErrorCode, message: str) -> CloseRequest | None:
        self._tally.record(code, message, level=logging.INFO)
        self._client_errors += 1
        await self._send(self._error_frame(code, message))
        if self._client_errors >= self._opts.max_client_errors:
            return CloseRequest(1007, f"too many invalid messages ({self._client_errors})")
        return None

    async def _handle(self, msg: ClientMessage, backend: Backend) -> CloseRequest | None:
        if self._ended:
            return await self._client_error(
                "after_end", "this session was ended by the client; open a new connection"
            )
        assert self._uplink is not None  # made before the receive loop starts
        try:
            if not isinstance(msg, AudioInput):
                await self._uplink.flush()  # what follows the audio reaches the model after it
            if isinstance(msg, TextInput):
                return await self._on_text(msg.text, backend)
            if isinstance(msg, AudioInput):
                await self._on_audio(msg.pcm, backend)
                return None
            if isinstance(msg, ImageInput):
                return await self._on_image(msg, backend)
            assert isinstance(msg, EndInput)
            self._ended = True
            self._spawn(self._finish_after_turn())
        except BackendError:
            pass  # the agent failed; the pump reports it and closes
        return None

    async def _on_text(self, text: str, backend: Backend) -> CloseRequest | None:
        if self.hub.draining:
            await self._send(
                self._error_frame("shutting_down", "the server is shutting down; reconnect shortly")
            )
            return None
        limit = self._opts.max_text_chars
        if len(text) > limit:
            return await self._client_error(
                "text_too_long", f"the text has {len(text)} characters; the limit is {limit}"
            )
        now = time.monotonic()
        refusal = self._rates.text_turn(now)
        if refusal is not None:
            await self._refused(refusal, now)
            return None
        self.conversation.publish(UserText(text=text))
        await backend.send_text(text)
        return None

    async def _on_audio(self, pcm: bytes, backend: Backend) -> None:
        if not pcm:
            return
        now = time.monotonic()
        refusal = self._rates.audio(len(pcm), now)
        if refusal is not None:
            await self._refused(refusal, now)
            return
        assert self._uplink is not None  # made before the receive loop starts
        await self._uplink.add(pcm)  # coalesced into 40 ms chunks (server/uplink.py)

    async def _on_image(self, image: ImageInput, backend: Backend) -> CloseRequest | None:
        limit = self._opts.max_image_bytes
        if len(image.data) > limit:
            return await self._client_error(
                "image_too_large", f"the image has {len(image.data)} bytes; the limit is {limit}"
            )
        now = time.monotonic()
        refusal = self._rates.image(now)
        if refusal is not None:
            await self._refused(refusal, now)
            return None
        await backend.send_image(image.data, image.mime_type)
        return None

    async def _refused(self, refusal: Refusal, now: float) -> None:
        """A message over a rate limit was dropped: say so at most once a second."""
        if self._tally.should_notify(refusal.code, now, NOTIFY_EVERY_S):
            await self._send(self._error_frame(refusal.code, refusal.message))

    async def _finish_after_turn(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._opts.drain_timeout_s):
                await self.idle.wait()
        self.request_close(1000, "the client ended the session")
