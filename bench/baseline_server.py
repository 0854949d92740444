"""A baseline for serve's cost: a server written the way ADK's "Custom Audio Streaming
app (WebSocket)" sample is written, serving the agent `adkvoice serve` serves.

The sample's shape, nothing more: FastAPI on uvicorn's defaults, one WebSocket route
`/ws/{session_id}?is_audio=true|false`, and per socket one `Runner` (sharing one
`InMemorySessionService`), one ADK session, one `LiveRequestQueue` and one
`Runner.run_live`, with two tasks relaying frames:

- client → agent: `{"mime_type": "audio/pcm", "data": <base64 16 kHz PCM>}` becomes
  `send_realtime(Blob(...))`; `{"mime_type": "text/plain", "data": ...}` becomes
  `send_content(...)`;
- agent → client: audio parts as `{"mime_type": "audio/pcm", "data": <base64>}`, the
  agent's partial text (here its output transcript) as `{"mime_type": "text/plain",
  "data": ...}`, and `{"turn_complete": ..., "interrupted": ...}` as ADK's event says.

The seeds' load generator in serve_bench_clients.py talks to it unchanged. Differences
from the sample, none of which adds work per frame: it does not print a line per frame
(the sample does); the session id is a string; a model that only speaks (Gemini 3.8) is
asked for AUDIO even when `is_audio=false`; output transcription is on in audio mode;
`GET /readyz` says how many sockets are open (so a benchmark can wait for the last
step's sessions to end); and when a socket closes, the run is ended and awaited (bounded)
before the count drops. With --serve-run-config it also asks ADK for what serve's
RunConfig asks for (input transcription, session resumption), to tell what serve asks of
ADK from what its own code costs.

Run: python bench/baseline_server.py [--port 0]   (127.0.0.1; the emulator's or the
Gemini API's environment as for `adkvoice serve`). It prints
"baseline serving at http://127.0.0.1:PORT" on stderr when it accepts connections, and
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.agents.run_config import RunConfig
from google.adk.runners import Runner
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.genai import types

from adkvoice.agents.loading import live_model_of, load_bundled_agent
from adkvoice.live_models import family_of

LOADED = load_bundled_agent()
APP_NAME = LOADED.app_name
ROOT_AGENT = LOADED.agent
MODEL = live_model_of(LOADED)
_FAMILY = family_of(MODEL)
SPEAKS_ONLY = _FAMILY is not None and not _FAMILY.text_replies
END_TIMEOUT_S = 5.0  # for a run to end once its socket closed

session_service = InMemorySessionService()
open_sockets = 0


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    port = app.state.port
    print(f"baseline serving {MODEL} at http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, Any]:
    return {"ready": True, "sessions": open_sockets}


async def start_agent_session(
    session_id: str, is_audio: bool
) -> tuple[AsyncIterator[Any], LiveRequestQueue]:
    """A runner, an ADK session, a queue, and the live run's events."""
    runner = Runner(app_name=APP_NAME, agent=ROOT_AGENT, session_service=session_service)
    session = await runner.session_service.create_session(app_name=APP_NAME, user_id=session_id)
    audio = is_audio or SPEAKS_ONLY
    extra: dict[str, Any] = {}
    if app.state.serve_run_config:
        extra = {
            "input_audio_transcription": types.AudioTranscriptionConfig(),
            "session_resumption": types.SessionResumptionConfig(),
        }
    run_config = RunConfig(
        response_modalities=[types.Modality.AUDIO if audio else types.Modality.TEXT],
        output_audio_transcription=types.AudioTranscriptionConfig() if audio else None,
        **extra,
    )
    queue = LiveRequestQueue()
    events = runner.run_live(
        user_id=session_id,
        session_id=session.id,
        live_request_queue=queue,
        run_config=run_config,
    )
    return events, queue


async def agent_to_client(websocket: WebSocket, events: AsyncIterator[Any]) -> None:
    async for event in events:
        part = event.content.parts[0] if event.content and event.content.parts else None
        inline = part.inline_data if part is not None else None
        if inline is not None and inline.data and (inline.mime_type or "").startswith("audio/pcm"):
            data = base64.b64encode(inline.data).decode("ascii")
            await websocket.send_text(json.dumps({"mime_type": "audio/pcm", "data": data}))
        transcript = event.output_transcription
        if transcript is not None and transcript.text and not transcript.finished:
            await websocket.send_text(
                json.dumps({"mime_type": "text/plain", "data": transcript.text})
            )
        elif part is not None and part.text and event.partial:
            await websocket.send_text(json.dumps({"mime_type": "text/plain", "data": part.text}))
        if event.turn_complete or event.interrupted:
            message = {"turn_complete": event.turn_complete, "interrupted": event.interrupted}
            await websocket.send_text(json.dumps(message))


async def client_to_agent(websocket: WebSocket, queue: LiveRequestQueue) -> None:
    while True:
        message = json.loads(await websocket.receive_text())
        mime_type, data = message["mime_type"], message["data"]
        if mime_type == "text/plain":
            queue.send_content(types.Content(role="user", parts=[types.Part.from_text(text=data)]))
        elif mime_type == "audio/pcm":
            queue.send_realtime(types.Blob(data=base64.b64decode(data), mime_type=mime_type))
        else:
            raise ValueError(f"mime type not supported: {mime_type}")


@app.websocket("/ws/{session_id}")
async def websocket_endpoint(
    websocket: WebSocket, session_id: str, is_audio: str = "false"
) -> None:
    global open_sockets
    await websocket.accept()
    open_sockets += 1
    try:
        events, queue = await start_agent_session(session_id, is_audio == "true")
        down = asyncio.create_task(agent_to_client(websocket, events))
        up = asyncio.create_task(client_to_agent(websocket, queue))
        await asyncio.wait([down, up], return_when=asyncio.FIRST_EXCEPTION)
        queue.close()
        up.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(END_TIMEOUT_S):
                await asyncio.wait([down])
        down.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
    finally:
        open_sockets -= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--serve-run-config",
        action="store_true",
        help="ask ADK for what serve asks for too: input transcription, session resumption",
    )
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="uvicorn's event loop (the sample's `pip install uvicorn` has asyncio's)",
    )
    args = parser.parse_args()
    app.state.serve_run_config = args.serve_run_config
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    app.state.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=3, loop=args.loop, http="h11"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
