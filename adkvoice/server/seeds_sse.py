"""`GET /events/{id}?is_audio=true|false` and `POST /send/{id}`: the seeds' SSE sample.

The SSE version of ADK's streaming sample: its page opens an EventSource on /events/ID
and POSTs each typed message, and each 0.2 s of microphone audio, to /send/ID. The
messages are the seeds WebSocket's (`wire.seeds`): down, one ``data: <json>\\n\\n`` per
frame the WebSocket would send; up, one frame per POST body. Each stream is one
conversation with one `EmbeddedBackend`, registered in the hub as a WebSocket session is
(the session limit, the drain, one `run_live` per conversation).

What a client can get wrong is answered on its own request, in the sample's
``{"error": "..."}`` shape (the sample answers 200 to everything; its page only logs a
failed POST, so these statuses change nothing for it and tell scripts what happened):

- /events: a bad session id, is_audio or session option: 400; server shutting down or
  full: 503 with Retry-After; the agent cannot start: 400 (an option its model rejects)
  or 503;
- /send: a body over `max_frame_bytes`: 413; not JSON, not a seeds message, bad base64
  or PCM: 400; no open stream for the id: 404 ("Session not found", the sample's
  message: the stream, not the request, is missing, so a client reopens /events and
  sends again); text over `max_text_chars`: 413; typed turns or audio over the WebSocket's
  rate limits: 429, the message dropped; server shutting down: 503; the agent failed: 503.

Token and cross-site checks are `app.require_access` (``?token=``: an EventSource cannot
send headers). A comment line goes down every `KEEPALIVE_S` so proxies keep an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from adkvoice.backends.base import Backend
from adkvoice.conversation.core import Conversation
from adkvoice.errors import AdkVoiceError, BackendError, ConfigError
from adkvoice.events import AnswerComplete, ErrorEvent, UserText
from adkvoice.live_options import LiveOptions, from_query
from adkvoice.server.hub import REPLACED, Hub
from adkvoice.server.limits import ErrorTally, InputRates
from adkvoice.server.uplink import AudioUplink
from adkvoice.server.ws import SESSION_ID, audio_flag
from adkvoice.wire.adkvoice_v1 import decode_client_frame
from adkvoice.wire.base import AudioInput, ClientMessage, FrameError, TextInput
from adkvoice.wire.seeds import SeedEncoder

log = logging.getLogger("adkvoice.server")

KEEPALIVE_S = 15.0  # read at each wait, so tests can shorten it
NO_SESSION = "Session not found"
BAD_SESSION_ID = "session id: 1-128 letters, digits, . _ ~ or -"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RETRY = {"Retry-After": "5"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _body(text: str, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": text.encode("utf-8"), "more_body": more}


class SseSession:
    """One /events stream bridged to one embedded backend; POST /send feeds it."""

    # A newer /events stream for the same id takes the conversation over and this one
    # ends. Unlike the WebSocket sample, the SSE page closes its EventSource before it
    # opens the audio one on Start Audio, and POSTs go to the id, not to a stream, so
    # only the newest stream can be the one the page reads.
    stays_open_when_replaced = False

    def __init__(self, hub: Hub, session_id: str, *, audio: bool, live: LiveOptions) -> None:
        self.hub = hub
        self.session_id = session_id
        self.audio = audio
        self.live = live
        self.conversation = Conversation()
        self.idle = self.conversation.idle
        self._opts = hub.options
        self._tally = ErrorTally(log, f"session {session_id}")
        self._rates = InputRates(hub.options, self._tally)
        self._encoder = SeedEncoder()
        self._backend: Backend | None = None  # set while POSTs may reach it
        self._uplink: AudioUplink | None = None  # its audio, coalesced (set with it)
        self._close_requested: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._gone = asyncio.Event()  # the client went away
        self._released = asyncio.Event()  # the backend is closed
        self._done = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._started = False  # the 200 and its headers went out

    # Hub interface -----------------------------------------------------------------------
    def request_close(self, code: int, reason: str) -> None:
        # An SSE stream has no close code: it ends, and the page reconnects if it wants.
        if not self._close_requested.done():
            log.info("session %s: stream ends: %s", self.session_id, reason)
            self._close_requested.set_result(None)

    def request_quiet(self) -> None:
        self.request_close(1000, REPLACED)  # not asked: `stays_open_when_replaced` is False

    def notify(self, message: str) -> None:
        pass  # the seeds messages have no notice

    async def wait_released(self) -> None:
        await self._released.wait()

    async def wait_done(self) -> None:
        await self._done.wait()

    # Client → agent (POST /send) ---------------------------------------------------------
    @property
    def accepting(self) -> bool:
        return self._backend is not None and not self._close_requested.done()

    def record_error(self, exc: FrameError) -> None:
        self._tally.record(exc.code, str(exc), level=logging.INFO)

    async def deliver(self, msg: ClientMessage) -> JSONResponse:
        backend, uplink = self._backend, self._uplink
        if backend is None or uplink is None or not self.accepting:
            return _error(404, NO_SESSION)
        now = time.monotonic()
        try:
            if not isinstance(msg, AudioInput):
                await uplink.flush()  # what follows the audio reaches the model after it
            if isinstance(msg, TextInput):
                if self.hub.draining:
                    return _error(503, "the server is shutting down; reconnect shortly", RETRY)
                limit = self._opts.max_text_chars
                if len(msg.text) > limit:
                    message = f"the text has {len(msg.text)} characters; the limit is {limit}"
                    self._tally.record("text_too_long", message, level=logging.INFO)
                    return _error(413, message)
                refusal = self._rates.text_turn(now)
                if refusal is not None:
                    return _error(429, refusal.message)
                self.conversation.publish(UserText(text=msg.text))
                await backend.send_text(msg.text)
            elif isinstance(msg, AudioInput):
                if msg.pcm:
                    refusal = self._rates.audio(len(msg.pcm), now)
                    if refusal is not None:
                        return _error(429, refusal.message)
                    await uplink.add(msg.pcm)  # coalesced into 40 ms chunks (uplink.py)
            else:  # EndInput or ImageInput: the seeds decoder never yields them
                return _error(400, "this route takes text/plain and audio/pcm messages")
        except BackendError:
            return _error(503, "the agent failed; reopen the stream to try again")
        return JSONResponse({"status": "sent"})

    # Lifecycle (GET /events) -------------------------------------------------------------
    async def run(
        self, headers: list[tuple[bytes, bytes]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        await self.hub.register(self)
        mode = "audio" if self.audio else "text"
        log.info("session %s connected (%s, seeds SSE)", self.session_id, mode)
        try:
            await self._run(headers, scope, receive, send)
        except Exception:
            log.exception("session %s failed", self.session_id)
            if not self._started:
                await self._answer(_error(500, "internal server error"), scope, receive, send)
        finally:
            self._backend = None
            self.hub.unregister(self)
            self.idle.set()
            self._released.set()
            self._done.set()
            if self._started:
                await self._write(send, _body("", more=False))
            summary = f"; client errors: {self._tally.summary()}" if self._tally.total else ""
            log.info("session %s closed%s", self.session_id, summary)

    async def _run(
        self, headers: list[tuple[bytes, bytes]], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Stream until the client goes, the agent stops or the hub asks."""
        backend = self.hub.session_backend(self.session_id, audio=self.audio, live=self.live)
        # Started before the response, so a failure is a status the client can see.
        try:
            await backend.start()
        except ConfigError as exc:
            log.info("session %s: refused: %s", self.session_id, exc)
            await self._answer(_error(400, str(exc)), scope, receive, send)
            return
        except AdkVoiceError as exc:
            log.error("session %s: the agent could not start: %s", self.session_id, exc)
            error = _error(503, "the agent could not start", RETRY)
            await self._answer(error, scope, receive, send)
            return
        uplink = AudioUplink.for_serve(backend.send_audio)
        try:
            self._backend, self._uplink = backend, uplink
            self._started = True
            await self._write(
                send, {"type": "http.response.start", "status": 200, "headers": headers}
            )
            tasks = [
                asyncio.create_task(self._pump(backend, send), name="sse-pump"),
                asyncio.create_task(self._keepalive(send), name="sse-keepalive"),
                asyncio.create_task(self._watch_client(receive), name="sse-client"),
            ]
            try:
                waits: list[asyncio.Future[Any]] = [tasks[0], tasks[2], self._close_requested]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.wait(tasks)
            for task in tasks:
                if not task.cancelled() and (crash := task.exception()) is not None:
                    log.error("session %s failed", self.session_id, exc_info=crash)
        finally:
            self._backend = self._uplink = None
            await uplink.close()
            await backend.close()
            self._released.set()

    async def _answer(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            await response(scope, receive, send)

    async def _watch_client(self, receive: Receive) -> None:
        """Until the client goes away (or the server drops the connection)."""
        while not self._gone.is_set():
            try:
                message = await receive()
            except (OSError, RuntimeError):
                break
            if message["type"] == "http.disconnect":
                break
        self._gone.set()

    async def _keepalive(self, send: Send) -> None:
        while not self._gone.is_set():
            await asyncio.sleep(KEEPALIVE_S)
            await self._write(send, _body(": keepalive\n\n"))

    async def _write(self, send: Send, message: Message) -> None:
        if self._gone.is_set():
            return
        try:
            async with self._send_lock:
                await send(message)
        except (OSError, RuntimeError):
            self._gone.set()  # the peer is gone; the client watch ends the stream

    # Agent → client ----------------------------------------------------------------------
    async def _pump(self, backend: Backend, send: Send) -> None:
        try:
            async for event in backend.events():
                self.conversation.publish(event)
                if isinstance(event, AnswerComplete):
                    self._rates.answered()
                if isinstance(event, ErrorEvent):
                    # ADK fills error messages with exception text; seeds carry no errors.
                    self._tally.record("model_error", event.message)
                    continue
                for frame in self._encoder.encode(event):
                    await self._write(send, _body(f"data: {frame}\n\n"))
        except BackendError as exc:
            log.warning("session %s: %s", self.session_id, exc)


class _EventStream(Response):
    """The /events response: the session writes it, from headers to the last line."""

    media_type = "text/event-stream"

    def __init__(self, session: SseSession) -> None:
        # Not Response.__init__: it would add a Content-Length for an empty body.
        self.status_code = 200
        self.background = None
        self.init_headers(SSE_HEADERS)
        self._session = session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._session.run(self.raw_headers, scope, receive, send)


async def events_endpoint(request: Request, session_id: str) -> Response:
    hub: Hub = request.app.state.hub
    if not SESSION_ID.match(session_id):
        return _error(400, BAD_SESSION_ID)
    query = dict(request.query_params)
    is_audio = audio_flag(query)
    if is_audio is None:
        return _error(400, "is_audio must be true or false")
    try:
        live = from_query(query, hub.options.live)
    except ConfigError as exc:
        return _error(400, str(exc))
    if hub.draining:
        return _error(503, "the server is shutting down; try again shortly", RETRY)
    if not hub.has_room(replacing=session_id):
        log.warning("refused session %s: %d sessions is the limit", session_id, hub.active)
        return _error(503, "too many sessions on this server; try again later", RETRY)
    return _EventStream(SseSession(hub, session_id, audio=is_audio, live=live))


async def send_endpoint(request: Request, session_id: str) -> JSONResponse:
    hub: Hub = request.app.state.hub
    if not SESSION_ID.match(session_id):
        return _error(400, BAD_SESSION_ID)
    limit = hub.options.max_frame_bytes
    too_big = _error(413, f"the request body is over the {limit}-byte limit")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return too_big
    body = bytearray()
    async for chunk in request.stream():  # stop reading at the limit, not after the body
        body += chunk
        if len(body) > limit:
            return too_big
    session = hub.sessions.get(session_id)
    live = session if isinstance(session, SseSession) else None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "the body must be UTF-8 JSON")
    try:
        msg = decode_client_frame(text, extended=False)
    except FrameError as exc:
        if live is not None:
            live.record_error(exc)
        return _error(400, str(exc))
    if live is None:
        return _error(404, NO_SESSION)
    return await live.deliver(msg)
