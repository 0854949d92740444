"""The FastAPI application: routes, static browser client, health, access checks."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware

from adkvoice.server.bidi_ws import bidi_endpoint
from adkvoice.server.hub import Hub
from adkvoice.server.middleware import SecurityMiddleware
from adkvoice.server.options import ServeOptions
from adkvoice.server.security import cross_site_refusal, token_ok
from adkvoice.server.seeds_sse import events_endpoint, send_endpoint
from adkvoice.server.sse import SseAgent, chat_stream
from adkvoice.server.ws import websocket_endpoint

if TYPE_CHECKING:
    from adkvoice.agents.loading import LoadedAgent


def static_dir() -> Path:
    return Path(str(resources.files("adkvoice").joinpath("static")))


def require_access(request: Request) -> None:
    """Token and cross-site checks for the HTTP API (the WebSocket does its own; the Host
    check and security headers are `SecurityMiddleware`'s, for every route)."""
    options: ServeOptions = request.app.state.hub.options
    headers = {k.lower(): v for k, v in request.headers.items()}
    refusal = cross_site_refusal(
        headers, scheme=request.url.scheme, allowed_origins=options.allowed_origins
    )
    if refusal is not None:
        raise HTTPException(403, refusal)
    if not token_ok(options.token, headers, dict(request.query_params)):
        raise HTTPException(
            401,
            "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>",
            headers={"WWW-Authenticate": "Bearer"},
        )


def create_app(loaded: LoadedAgent, options: ServeOptions) -> FastAPI:
    """The ASGI app `serve` runs; usable under any ASGI server (limits on frame size are
    also enforced in the app, not only by uvicorn's `ws_max_size`)."""
    from google.adk.sessions.in_memory_session_service import InMemorySessionService

    options.validate()
    app = FastAPI(
        title="adkvoice",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    hub = Hub(loaded, options, options.session_service or InMemorySessionService())
    app.state.hub = hub
    app.state.sse = SseAgent(hub)
    allowed = [o for o in options.allowed_origins if o != "null"]
    if allowed:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=allowed,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Session-Id"],
        )
    # Added last, so it is outermost: it sees every response, CORS ones included.
    app.add_middleware(SecurityMiddleware, options=options)
    static = static_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    # Behind a load balancer, `instance` tells which server answered.
    named = {"instance": options.instance} if options.instance else {}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", **named}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        body = {
            "status": "draining" if hub.draining else ("ready" if hub.ready else "full"),
            "sessions": hub.active,
            "max_sessions": options.max_sessions,
            **named,
        }
        return JSONResponse(body, status_code=200 if hub.ready else 503)

    app.add_api_route(
        "/chat/stream",
        chat_stream,
        methods=["GET", "POST"],
        dependencies=[Depends(require_access)],
        response_model=None,
    )
    app.add_api_websocket_route("/ws/{session_id}", websocket_endpoint)
    # ADK's bidi-demo sample: its page's binary PCM and JSON up, ADK Event JSON down.
    app.add_api_websocket_route("/ws/{user_id}/{session_id}", bidi_endpoint)
    # The seeds' SSE sample: its EventSource stream and the POSTs that feed it.
    for path, endpoint, method in (
        ("/events/{session_id}", events_endpoint, "GET"),
        ("/send/{session_id}", send_endpoint, "POST"),
    ):
        app.add_api_route(
            path,
            endpoint,
            methods=[method],
            dependencies=[Depends(require_access)],
            response_model=None,
        )
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app
