"""A reference server of the ADK streaming sample, both versions (adk-docs "Custom Audio
Streaming app", WebSocket, and `examples/python/snippets/streaming/adk-streaming`, SSE),
for tests: what the sample's FastAPI app does, around any agent, on 127.0.0.1 at a free
port.

- `WS /ws/{user_id}?is_audio=true|false`: the same run and messages as /events, both ways
  over one socket (a text frame per message).
- `GET /events/{user_id}?is_audio=true|false` starts a new session and one `run_live`
  (AUDIO with the agent's speech transcribed, or TEXT) and streams the sample's messages
  as `data: <json>` events: partial text as `{"mime_type": "text/plain"}`, audio as
  `{"mime_type": "audio/pcm"}` (base64), and `{"turn_complete": …, "interrupted": …}`.
  A second GET for the same id replaces the first's queue, as the sample's dictionary of
  active sessions does.
- `POST /send/{user_id}` with `{"mime_type", "data"}` feeds that run; with no stream for
  the id it answers 200 `{"error": "Session not found"}`, as the sample does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.agents.run_config import RunConfig
from google.adk.runners import Runner
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from adkvoice.tasks import cancel_and_wait
from tests.integration.bidi_demo_server import free_socket, serving_asgi

APP_NAME = "sse-sample"


def sample_app(agent: BaseAgent) -> Starlette:
    sessions = InMemorySessionService()
    runner = Runner(app_name=APP_NAME, agent=agent, session_service=sessions)
    queues: dict[str, LiveRequestQueue] = {}

    def start(user_id: str, is_audio: bool) -> AsyncIterator[dict[str, object]]:
        """A new run for `user_id`, taking its messages at once; the sample's messages
        for each of its events."""
        queue = LiveRequestQueue()
        queues[user_id] = queue
        return run(user_id, is_audio, queue)

    async def run(
        user_id: str, is_audio: bool, queue: LiveRequestQueue
    ) -> AsyncIterator[dict[str, object]]:
        session = await sessions.create_session(app_name=APP_NAME, user_id=user_id)
        config = RunConfig(
            response_modalities=[types.Modality.AUDIO if is_audio else types.Modality.TEXT],
            output_audio_transcription=types.AudioTranscriptionConfig() if is_audio else None,
        )
        try:
            async for event in runner.run_live(
                user_id=user_id, session_id=session.id, live_request_queue=queue, run_config=config
            ):
                for message in _messages(event):
                    yield message
        finally:
            queue.close()
            if queues.get(user_id) is queue:
                del queues[user_id]

    def feed(user_id: str, message: dict[str, str]) -> str | None:
        """Give a client's message to its run; the sample's error, if any."""
        queue = queues.get(user_id)
        if queue is None:
            return "Session not found"
        if message["mime_type"] == "text/plain":
            queue.send_content(
                types.Content(role="user", parts=[types.Part.from_text(text=message["data"])])
            )
        elif message["mime_type"] == "audio/pcm":
            data = base64.b64decode(message["data"])
            queue.send_realtime(types.Blob(data=data, mime_type="audio/pcm"))
        else:
            return f"Mime type not supported: {message['mime_type']}"
        return None

    async def events(request: Request) -> StreamingResponse:
        user_id = request.path_params["user_id"]
        is_audio = request.query_params.get("is_audio", "false") == "true"

        messages = start(user_id, is_audio)

        async def stream() -> AsyncIterator[str]:
            async for message in messages:
                yield f"data: {json.dumps(message)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def send(request: Request) -> JSONResponse:
        error = feed(request.path_params["user_id"], await request.json())
        return JSONResponse({"error": error} if error else {"status": "sent"})

    async def socket(websocket: WebSocket) -> None:
        user_id = websocket.path_params["user_id"]
        is_audio = websocket.query_params.get("is_audio", "false") == "true"
        await websocket.accept()
        messages = start(user_id, is_audio)

        async def down() -> None:
            async for message in messages:
                await websocket.send_text(json.dumps(message))

        async def up() -> None:
            with contextlib.suppress(WebSocketDisconnect):
                while True:
                    feed(user_id, json.loads(await websocket.receive_text()))

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(tasks)

    return Starlette(
        routes=[
            Route("/events/{user_id}", events, methods=["GET"]),
            Route("/send/{user_id}", send, methods=["POST"]),
            WebSocketRoute("/ws/{user_id}", socket),
        ]
    )


def _messages(event: object) -> list[dict[str, object]]:
    """What the sample sends for one ADK event."""
    turn_complete = getattr(event, "turn_complete", None)
    interrupted = getattr(event, "interrupted", None)
    if turn_complete or interrupted:
        return [{"turn_complete": turn_complete, "interrupted": interrupted}]
    out: list[dict[str, object]] = []
    content = getattr(event, "content", None)
    part = content.parts[0] if content and content.parts else None
    if part is not None and part.inline_data and part.inline_data.data:
        if (part.inline_data.mime_type or "").startswith("audio/pcm"):
            data = base64.b64encode(part.inline_data.data).decode("ascii")
            out.append({"mime_type": "audio/pcm", "data": data})
    elif part is not None and part.text and getattr(event, "partial", None):
        out.append({"mime_type": "text/plain", "data": part.text})
    transcript = getattr(event, "output_transcription", None)
    if transcript is not None and transcript.text and not transcript.finished:
        # Newer ADK sends the agent's speech as a transcription, not as partial text;
        # the sample's newest version showed it as text.
        out.append({"mime_type": "text/plain", "data": transcript.text})
    return out


@asynccontextmanager
async def sample_server(agent: BaseAgent) -> AsyncIterator[str]:
    """The reference sample server for `agent`; yields its ws:// base (the same host
    serves the SSE routes over http://)."""
    with free_socket() as sock:
        async with serving_asgi(sample_app(agent), sock) as url:
            yield url
