"""`POST /chat/stream` and `GET /chat/stream?query=...`: a text reply as Server-Sent Events.

As in the ADK SSE tutorial (seed 001): `Runner.run_async` with
`RunConfig(streaming_mode=StreamingMode.SSE)`, one ``data: {"text": "..."}`` event per
chunk, then ``data: [DONE]``. Unlike the tutorial, the aggregated final text ADK emits
after the chunks is not sent again, and function-call events (no text) are skipped.

Request: JSON ``{"query": "...", "session_id": "..."}`` (``text`` is accepted for
``query``; ``session_id`` is optional) or the tutorial's ``?query=`` on either method.
With a session id the conversation continues, in the same store the WebSocket uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from adkvoice.backends.embedded import translate_exception
from adkvoice.events import AgentText, ErrorEvent, SegmentText
from adkvoice.server.hub import Hub
from adkvoice.server.ws import SESSION_ID
from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.base import FrameError, parse_json
from adkvoice.wire.chat_sse import SSE_DONE, encode_sse_error, encode_sse_text

if TYPE_CHECKING:
    from google.adk.runners import Runner

log = logging.getLogger("adkvoice.server")

AGENT_FAILED = "the agent failed; try again"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class SseAgent:
    """One `Runner` for all SSE requests, over the hub's shared session store."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._runner: Runner | None = None
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # lock, requests using it

    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = self._build()
        return self._runner

    def _build(self) -> Runner:
        from google.adk.runners import Runner

        from adkvoice.agents.loading import with_model

        loaded = with_model(self._hub.loaded, self._hub.options.sse_model)
        service = self._hub.session_service
        if loaded.app is not None:
            return Runner(app=loaded.app, session_service=service, auto_create_session=True)
        if loaded.agent is None:
            raise HTTPException(500, "no agent loaded")
        return Runner(
            app_name=loaded.app_name,
            agent=loaded.agent,
            session_service=service,
            auto_create_session=True,
        )

    @contextlib.asynccontextmanager
    async def turn(self, session_id: str) -> AsyncIterator[None]:
        """Turns of one conversation run one after the other; different ones in parallel."""
        lock, users = self._locks.get(session_id, (asyncio.Lock(), 0))
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users <= 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)

    async def stream(self, query: str, session_id: str) -> AsyncGenerator[str, None]:
        from google.adk.agents._streaming_mode import StreamingMode
        from google.adk.agents.run_config import RunConfig
        from google.genai import types

        hub = self._hub
        runner = self.runner()
        deltas = SegmentText()
        mapper = AdkEventMapper()
        failed = False
        try:
            async with self.turn(session_id):
                events = runner.run_async(
                    user_id=hub.user_id(session_id),
                    session_id=session_id,
                    new_message=types.Content(role="user", parts=[types.Part(text=query)]),
                    run_config=RunConfig(streaming_mode=StreamingMode.SSE),
                )
                async with contextlib.aclosing(events) as stream:
                    async for adk_event in stream:
                        for event in mapper.map(adk_event):
                            if isinstance(event, AgentText):
                                shown = deltas.feed(event.text, final=not event.partial)
                                if shown:
                                    yield encode_sse_text(shown)
                            elif isinstance(event, ErrorEvent) and not failed:
                                # ADK puts exception text here: log it, never send it.
                                log.warning("chat stream %s: %s", session_id, event.message)
                                failed = True
                                yield encode_sse_error(AGENT_FAILED)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("chat stream %s failed: %s", session_id, translate_exception(exc, ""))
            log.debug("chat stream failure", exc_info=True)
            if not failed:
                yield encode_sse_error(AGENT_FAILED)
        yield SSE_DONE


async def _query_from(request: Request) -> tuple[str, str | None]:
    query = request.query_params.get("query")
    session_id = request.query_params.get("session_id")
    if request.method == "POST" and query is None:
        limit = request.app.state.hub.options.max_frame_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the request body is over the {limit}-byte limit")
        body = await request.body()
        if len(body) > limit:
            raise HTTPException(413, f"the request body is over the {limit}-byte limit")
        try:
            obj: Any = parse_json(body, "body")
        except FrameError:
            raise HTTPException(400, 'the body must be JSON such as {"query": "Hello"}') from None
        if not isinstance(obj, dict):
            raise HTTPException(400, 'the body must be a JSON object such as {"query": "Hello"}')
        query = obj.get("query", obj.get("text"))
        raw_id = obj.get("session_id", session_id)
        if raw_id is not None and not isinstance(raw_id, str):
            raise HTTPException(400, "session_id must be a string")
        session_id = raw_id
    if not isinstance(query, str) or not query.strip():
        raise HTTPException(400, 'give the text as {"query": "..."} or ?query=...')
    return query, session_id


async def chat_stream(request: Request) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    sse: SseAgent = request.app.state.sse
    query, session_id = await _query_from(request)
    limit = hub.options.max_text_chars
    if len(query) > limit:
        raise HTTPException(413, f"the text has {len(query)} characters; the limit is {limit}")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPException(400, "the text holds invalid Unicode") from None
    if session_id is None:
        session_id = uuid.uuid4().hex
    elif not SESSION_ID.match(session_id):
        raise HTTPException(400, "session_id: 1-128 letters, digits, . _ ~ or -")
    if hub.draining:
        raise HTTPException(503, "the server is shutting down", headers={"Retry-After": "5"})
    if not hub.has_room():
        raise HTTPException(503, "too many sessions on this server", headers={"Retry-After": "5"})
    hub.sse_started()
    headers = {**SSE_HEADERS, "X-Session-Id": session_id}
    return _EventStream(sse.stream(query, session_id), on_close=hub.sse_finished, headers=headers)


class _EventStream(StreamingResponse):
    """A streaming response that always closes its generator and reports that it ended,
    also when the client went away before or during the stream."""

    def __init__(
        self,
        content: AsyncGenerator[str, None],
        *,
        on_close: Callable[[], None],
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._content.aclose()
            finally:
                self._on_close()
