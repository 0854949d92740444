"""`adkvoice serve`: host an ADK agent for browsers and remote terminals.

- `create_app(loaded, options)` — the FastAPI app: `GET /` (browser client), `WS /ws/{id}`
  (the seeds' protocol, and the adkvoice.v1 extension on request), `POST|GET /chat/stream`
  (Server-Sent Events), `/healthz`, `/readyz`.
- `serve(loaded, options, on_ready=...)` — run it under uvicorn until a signal, then drain.
- `AgentServer` — the same as an async context manager (tests, benchmarks).
- `ServeOptions` — host, port, token, TLS, origins, limits, session store.

Modules: options (ServeOptions), security (token, Origin), limits (rate, error tally),
hub (shared state, drain), ws (WebSocket sessions), sse (chat stream), app (routes),
guard (uvicorn's protocols: a connection must finish its request within a deadline, and
a flood of unfinished ones closes the oldest), runner (uvicorn, signals).
"""

from adkvoice.server.app import create_app
from adkvoice.server.options import TOKEN_ENV, ServeOptions, is_loopback
from adkvoice.server.runner import AgentServer, configure_server_logging, serve

__all__ = [
    "TOKEN_ENV",
    "AgentServer",
    "ServeOptions",
    "configure_server_logging",
    "create_app",
    "is_loopback",
    "serve",
]
