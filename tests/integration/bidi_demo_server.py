"""A reference server of ADK's bidi-demo protocol (google/adk-samples
`python/agents/bidi-demo`), for tests: what the demo's FastAPI app does on
`/ws/{user_id}/{session_id}`, around any agent, on 127.0.0.1 at a free port.

- The reply modality follows the agent's model name, as in the demo: a name with
  "native-audio" gets AUDIO with both transcriptions (and proactivity / affective dialog
  when the query asks), any other name TEXT. Both get session resumption.
- Up: a binary frame is 16 kHz PCM (`send_realtime`); a text frame is JSON,
  `{"type": "text"}` → `send_content`, `{"type": "image"}` → `send_realtime`; other types
  are ignored.
- Down: every ADK Event as `model_dump_json(exclude_none=True, by_alias=True)`.
- An error in either direction ends the handler without a close frame of its own, as the
  demo's does (it logs and returns).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import uvicorn
from google.adk.agents._streaming_mode import StreamingMode
from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.agents.run_config import RunConfig
from google.adk.runners import Runner
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from adkvoice.tasks import cancel_and_wait

log = logging.getLogger(__name__)

APP_NAME = "bidi-demo"
STARTUP_S = 10.0


def _flag(value: str | None) -> bool:
    # FastAPI's reading of a `bool` query parameter.
    return (value or "").lower() in ("1", "true", "on", "yes")


def demo_run_config(model: str, *, proactivity: bool, affective_dialog: bool) -> RunConfig:
    """The demo's RunConfig for `model`: speech for native-audio names, text otherwise."""
    if "native-audio" in model.lower():
        return RunConfig(
            streaming_mode=StreamingMode.BIDI,
            response_modalities=[types.Modality.AUDIO],
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(),
            proactivity=types.ProactivityConfig(proactive_audio=True) if proactivity else None,
            enable_affective_dialog=True if affective_dialog else None,
        )
    # The demo ignores proactivity and affective dialog here (it logs a warning).
    return RunConfig(
        streaming_mode=StreamingMode.BIDI,
        response_modalities=[types.Modality.TEXT],
        session_resumption=types.SessionResumptionConfig(),
    )


def bidi_demo_app(agent: BaseAgent) -> Starlette:
    sessions = InMemorySessionService()
    runner = Runner(app_name=APP_NAME, agent=agent, session_service=sessions)
    model = str(getattr(agent, "model", ""))

    async def endpoint(websocket: WebSocket) -> None:
        user_id = websocket.path_params["user_id"]
        session_id = websocket.path_params["session_id"]
        run_config = demo_run_config(
            model,
            proactivity=_flag(websocket.query_params.get("proactivity")),
            affective_dialog=_flag(websocket.query_params.get("affective_dialog")),
        )
        await websocket.accept()
        found = await sessions.get_session(
            app_name=APP_NAME, user_id=user_id, session_id=session_id
        )
        if found is None:
            await sessions.create_session(app_name=APP_NAME, user_id=user_id, session_id=session_id)
        queue = LiveRequestQueue()

        async def upstream() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    blob = types.Blob(mime_type="audio/pcm;rate=16000", data=message["bytes"])
                    queue.send_realtime(blob)
                elif message.get("text") is not None:
                    request = json.loads(message["text"])
                    if request.get("type") == "text":
                        queue.send_content(types.Content(parts=[types.Part(text=request["text"])]))
                    elif request.get("type") == "image":
                        image = types.Blob(
                            mime_type=request.get("mimeType", "image/jpeg"),
                            data=base64.b64decode(request["data"]),
                        )
                        queue.send_realtime(image)

        async def downstream() -> None:
            async for event in runner.run_live(
                user_id=user_id,
                session_id=session_id,
                live_request_queue=queue,
                run_config=run_config,
            ):
                await websocket.send_text(event.model_dump_json(exclude_none=True, by_alias=True))

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("bidi-demo session ended: %r", task.exception())
        finally:
            queue.close()
            for task in tasks:
                await cancel_and_wait(task)

    return Starlette(routes=[WebSocketRoute("/ws/{user_id}/{session_id}", endpoint)])


class _QuietUvicorn(uvicorn.Server):
    """uvicorn that leaves the test process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving_asgi(app: ASGIApp, sock: socket.socket) -> AsyncIterator[str]:
    """`app` under uvicorn on a bound socket, in this process; yields its ws:// base."""
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_config=None, log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    server = _QuietUvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="asgi-server")
    try:
        async with asyncio.timeout(STARTUP_S):
            while not server.started:
                if task.done():
                    task.result()
                    raise AssertionError("the server stopped while starting")
                await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            async with asyncio.timeout(STARTUP_S):
                await task
        except TimeoutError:
            await cancel_and_wait(task)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def bidi_demo_server(agent: BaseAgent) -> AsyncIterator[str]:
    """The reference bidi-demo server for `agent`; yields its ws:// base."""
    with free_socket() as sock:
        async with serving_asgi(bidi_demo_app(agent), sock) as url:
            yield url
