"""The `Emulator`: an offline Gemini Live API server running in the caller's event loop.

Typical use::

    async with Emulator() as emu:
        os.environ.update(emu.client_env())   # before the genai client / ADK agent is built
        ...                                    # run the agent; assert on emu.stats

The real google-genai client (inside the real ADK) connects to it over TLS; only the
model is replaced by rules (see rules.py).
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from websockets.asyncio.server import Server, ServerConnection

from adkvoice.errors import EmulatorError

from .certs import CertFiles, client_ssl_context, server_ssl_context, write_cert_files
from .connection import ConnectionOptions
from .faults import FaultController
from .handles import DEFAULT_TTL_S, IssuedHandles
from .rest import RestOptions, SniffingProtocol, WebSocketFactory, abort_all
from .rules import Rules, default_rules
from .server import ServerContext, handle_connection
from .speech import make_stt, make_tts
from .stats import EmulatorStats

MAX_FRAME_BYTES = 16 * 1024 * 1024  # Gemini accepts large client content; keep headroom


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port
    rules: Rules | None = None  # None = bundled default rules
    text_chunk_delay_s: float = 0.0  # pause between streamed text chunks
    audio_pacing: float = 0.0  # 0 = as fast as possible; 1.0 = real time
    think_time_s: float = 0.0  # delay before a reply starts
    go_away_after_s: float | None = None  # goAway this long after setup, then close
    tts: Literal["auto", "espeak", "synthetic"] = "auto"
    stt: Literal["auto", "pocketsphinx", "placeholder"] = "auto"
    cert_dir: Path | None = None  # where to write the throwaway cert; None = a temp dir
    go_away_time_left_s: float = 1.0  # timeLeft announced by go_away_after_s
    handle_ttl_s: float = DEFAULT_TTL_S  # how long a handle outlives its connection


class Emulator:
    def __init__(self, options: EmulatorOptions | None = None) -> None:
        self.options = options or EmulatorOptions()
        self.faults = FaultController()
        self.stats = EmulatorStats()
        # Resumption handles live emulator-wide, so a new connection can resume any of them.
        self.handles = IssuedHandles(self.options.handle_ttl_s)
        self._server: Server | None = None
        self._rest: RestOptions | None = None
        self._certs: CertFiles | None = None
        self._own_dir: Path | None = None
        self._port = 0

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise EmulatorError("the emulator is already running")
        opts = self.options
        rules = opts.rules if opts.rules is not None else default_rules()
        context = ServerContext(
            rules=rules,
            tts=make_tts(opts.tts),
            stt=make_stt(opts.stt),
            faults=self.faults,
            stats=self.stats,
            handles=self.handles,
            options=ConnectionOptions(
                text_chunk_delay_s=opts.text_chunk_delay_s,
                audio_pacing=opts.audio_pacing,
                think_time_s=opts.think_time_s,
                go_away_after_s=opts.go_away_after_s,
                go_away_time_left_s=opts.go_away_time_left_s,
            ),
        )
        if opts.cert_dir is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="adkvoice-emulator-"))
        cert_dir = opts.cert_dir or self._own_dir
        assert cert_dir is not None
        try:
            # Key generation and file writes are quick, but keep them off the loop anyway.
            self._certs = await asyncio.to_thread(write_cert_files, cert_dir)
        except OSError as exc:
            self._cleanup_dir()
            raise EmulatorError(
                f"cannot write the emulator certificate to {cert_dir}: {exc.strerror or exc}"
            ) from None

        async def handler(ws: ServerConnection) -> None:
            await handle_connection(ws, context)

        # One port for both APIs: the Live WebSocket (GET) and REST generateContent (POST),
        # so GOOGLE_GEMINI_BASE_URL covers run_live and run_async alike (see rest.py).
        ws_server = Server(handler)
        websocket = WebSocketFactory(ws_server, MAX_FRAME_BYTES)
        self._rest = RestOptions(
            rules=rules,
            faults=self.faults,
            stats=self.stats,
            text_chunk_delay_s=opts.text_chunk_delay_s,
            think_time_s=opts.think_time_s,
            max_body_bytes=MAX_FRAME_BYTES,
        )
        rest = self._rest
        loop = asyncio.get_running_loop()
        try:
            listener = await loop.create_server(
                lambda: SniffingProtocol(websocket, rest),
                opts.host,
                opts.port,
                ssl=server_ssl_context(self._certs),
                ssl_handshake_timeout=10,
                ssl_shutdown_timeout=10,
            )
        except OSError as exc:
            self._cleanup_dir()
            if exc.errno == errno.EADDRINUSE:
                raise EmulatorError(
                    f"port {opts.port} on {opts.host} is busy: {exc.strerror}; "
                    "choose another port or 0 for any free one"
                ) from None
            raise EmulatorError(
                f"cannot listen on {opts.host}:{opts.port}: {exc.strerror or exc}"
            ) from None
        ws_server.wrap(listener)
        self._server = ws_server
        sockname = next(iter(self._server.sockets)).getsockname()
        self._port = int(sockname[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if self._rest is not None:
            abort_all(self._rest)  # REST replies in flight end with the server
        if server is not None:
            server.close()  # closes live connections with 1001 (going away)
            await server.wait_closed()
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    # Where clients connect ------------------------------------------------------------------
    def _require_certs(self) -> CertFiles:
        if self._certs is None or self._server is None:
            raise EmulatorError("the emulator is not running: call start() first")
        return self._certs

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        self._require_certs()
        return self._port

    @property
    def base_url(self) -> str:
        host = self.options.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"  # a wildcard bind is reachable on loopback, which the cert names
        elif ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        """certifi's CAs plus the emulator CA: use as SSL_CERT_FILE."""
        return self._require_certs().bundle

    @property
    def ca_cert(self) -> Path:
        """The emulator CA alone."""
        return self._require_certs().ca

    def client_env(self) -> dict[str, str]:
        """Environment that points an unmodified google-genai / ADK app at this emulator."""
        return {
            "GOOGLE_API_KEY": "emulator",
            "GOOGLE_GENAI_USE_VERTEXAI": "FALSE",
            # genai 2.x reads this first; a stray TRUE in the user's shell would win.
            "GOOGLE_GENAI_USE_ENTERPRISE": "FALSE",
            "GOOGLE_GEMINI_BASE_URL": self.base_url,
            "SSL_CERT_FILE": str(self.ca_bundle),
        }

    def client_ssl_context(self) -> ssl.SSLContext:
        """A context trusting the emulator: `HttpOptions(async_client_args={"ssl": ctx})`."""
        return client_ssl_context(self._require_certs())
