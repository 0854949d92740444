"""Run the app under uvicorn: bind, TLS, logging, signals and the graceful shutdown.

`serve` is what `adkvoice serve` calls; `AgentServer` is the same machinery as an async
context manager, for tests and benchmarks that need the port and a programmatic stop.

Shutdown (SIGINT/SIGTERM or `AgentServer.shutdown`): `/readyz` turns 503 and new
sessions are refused while running turns may finish (up to `drain_timeout_s`); then every
WebSocket is closed with 1001 and uvicorn stops. A second SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import ssl
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

import uvicorn

from adkvoice.errors import ConfigError
from adkvoice.redaction import redact_log_handlers
from adkvoice.server.app import create_app
from adkvoice.server.guard import ConnectionGuard, guarded_protocols
from adkvoice.server.hub import GOING_AWAY, Hub
from adkvoice.server.options import ServeOptions
from adkvoice.server.security import RedactTokens
from adkvoice.store.sessions import prepare_store

if TYPE_CHECKING:
    from adkvoice.agents.loading import LoadedAgent

log = logging.getLogger("adkvoice.server")

STARTUP_TIMEOUT_S = 15.0
# asyncio accepts up to `backlog` connections at a time, each holding a descriptor before
# the guard sees it: uvicorn's 2,048 lets one burst use them all. With 128, a flood stays
# near max_pending_connections plus a few batches, well under the usual 1,024.
ACCEPT_BACKLOG = 128
_NOISY = ("google_adk", "google_genai", "google.adk", "google.genai", "websockets", "httpx")


def configure_server_logging(level_name: str) -> None:
    """Levels for our loggers and uvicorn's; third-party chatter stays at WARNING unless
    debugging. A handler is added only if nobody configured logging yet. Every handler
    writes redacted text: at debug, uvicorn and websockets log request headers."""
    level = logging.getLevelName(level_name.upper())
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    redact_log_handlers()
    for name in ("adkvoice", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)


def _install_redaction() -> None:
    """Secrets out of the server's logs: the handlers configured so far redact what they
    write, and uvicorn's loggers redact their records for handlers added later."""
    redact_log_handlers()
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def _bind(options: ServeOptions) -> socket.socket:
    host = options.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, options.port), family=family)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {options.host}: cannot resolve it ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {options.port} on {options.host} is in use: stop the other server or "
                "pick another --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"not allowed to listen on port {options.port}: use a port above 1023"
            ) from None
        raise ConfigError(
            f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}"
        ) from None
    # asyncio turns on TCP_NODELAY only for sockets whose proto is IPPROTO_TCP, and accepted
    # sockets copy the listener's proto; create_server leaves it 0. Without NODELAY, Nagle
    # holds a reply's first audio frame behind the small JSON frame sent just before it
    # until the client's delayed ACK: ~40 ms added to every reply. Same socket, right proto.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, fileno=sock.detach())
    sock.setblocking(False)
    return sock


def _check_tls(options: ServeOptions) -> None:
    if options.certfile is None or options.keyfile is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(options.certfile), str(options.keyfile))
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise ConfigError(
            f"cannot use --certfile {options.certfile} with --keyfile {options.keyfile}: {reason}"
        ) from None


class _Uvicorn(uvicorn.Server):
    """uvicorn, with its exit signals turned into our graceful drain."""

    def __init__(
        self, config: uvicorn.Config, on_exit: Callable[[bool], None], handle_signals: bool
    ) -> None:
        super().__init__(config)
        self._on_exit = on_exit
        self._handle_signals = handle_signals
        self._exit_requested = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if not self._handle_signals:
            yield
            return
        with super().capture_signals():
            yield

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not recorded in _captured_signals: serve() returns instead of re-raising it.
        force = self._exit_requested and sig == signal.SIGINT
        self._exit_requested = True
        self._on_exit(force)


class AgentServer:
    """`async with AgentServer(loaded, options) as server:` ... `server.url` ..."""

    def __init__(self, loaded: LoadedAgent, options: ServeOptions) -> None:
        options.validate()
        self.options = options
        self.app = create_app(loaded, options)
        self.hub: Hub = self.app.state.hub
        self._uvicorn: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.guard = ConnectionGuard(options.request_timeout_s, options.max_pending_connections)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Where a local client reaches the server (`http(s)://host:port`)."""
        host = self.options.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://{host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def start(self) -> None:
        _check_tls(self.options)
        _install_redaction()
        # A database store is checked before binding: a load balancer must not route to
        # a server that cannot keep conversations.
        await prepare_store(self.hub.session_service)
        sock = _bind(self.options)
        self._port = int(sock.getsockname()[1])
        self._loop = asyncio.get_running_loop()
        opts = self.options
        # uvicorn's h11 and websockets-sansio protocols, closing slow requests (guard.py).
        http, ws = guarded_protocols(self.guard)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level=opts.level,
            ws=ws,
            http=http,
            lifespan="off",
            backlog=ACCEPT_BACKLOG,
            ws_max_size=opts.max_frame_bytes,
            ssl_certfile=str(opts.certfile) if opts.certfile else None,
            ssl_keyfile=str(opts.keyfile) if opts.keyfile else None,
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        self._uvicorn = _Uvicorn(config, self._exit_requested, opts.handle_signals)
        self._task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]), name="uvicorn")
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_S):
                while not self._uvicorn.started:
                    if self._task.done():
                        break
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise ConfigError("the server did not start within 15 s") from None
        if self._task.done():
            sock.close()
            exc = self._task.exception() if not self._task.cancelled() else None
            raise ConfigError(f"the server failed to start: {exc or 'stopped'}")
        named = f" as instance {opts.instance}" if opts.instance else ""
        log.info("serving %s at %s%s", opts.endpoint_label, self.url, named)

    def _exit_requested(self, force: bool) -> None:
        """From a signal handler: start the drain on the loop (or stop now on a second ^C)."""
        if self._loop is None:
            return
        if force:
            self._loop.call_soon_threadsafe(self._force_stop)
        else:
            self._loop.call_soon_threadsafe(self._begin_shutdown)

    def _begin_shutdown(self) -> asyncio.Task[None]:
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._drain_and_stop(), name="drain")
        return self._stopping

    def _force_stop(self) -> None:
        log.warning("stopping now")
        for session in list(self.hub.sessions.values()):
            session.request_close(1001, GOING_AWAY)
        if self._uvicorn is not None:
            self._uvicorn.force_exit = True
            self._uvicorn.should_exit = True

    async def _drain_and_stop(self) -> None:
        try:
            await self.hub.drain()
        finally:
            if self._uvicorn is not None:
                self._uvicorn.should_exit = True

    async def shutdown(self) -> None:
        """Graceful stop: drain (turns finish, sockets close 1001), then stop uvicorn."""
        if self._task is None:
            return
        await asyncio.shield(self._begin_shutdown())
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Until the server has stopped (after a signal or `shutdown`)."""
        if self._task is not None:
            await asyncio.shield(self._task)
            self.guard.stop()


async def serve(
    loaded: LoadedAgent,
    options: ServeOptions,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve `loaded` until SIGINT/SIGTERM, then shut down gracefully.

    Raises `ConfigError` (one clear line) for unusable options, a busy port or bad TLS
    files before anything is served; `on_ready(url)` is called once it listens.
    """
    configure_server_logging(options.log_level)
    server = AgentServer(loaded, options)
    await server.start()
    try:
        if on_ready is not None:
            on_ready(server.url)
        await server.wait_closed()
    finally:
        await server.shutdown()
