"""`ServeOptions`: everything `adkvoice serve` can be told, checked before anything binds."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adkvoice.errors import ConfigError
from adkvoice.live_options import LiveOptions
from adkvoice.server.security import host_ok, is_loopback_name

if TYPE_CHECKING:
    from google.adk.sessions.base_session_service import BaseSessionService

TOKEN_ENV = "ADKVOICE_TOKEN"  # suggested environment variable for --token
INSTANCE_ENV = "ADKVOICE_INSTANCE"  # a name for this server in /healthz, /readyz and logs
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
BYTES_PER_SECOND_16K = 2 * 16_000  # 16 kHz s16le mono: real time


def instance_from_env() -> str | None:
    return os.environ.get(INSTANCE_ENV, "").strip() or None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost; anything else (names, wildcards) is exposed."""
    return is_loopback_name(host.strip().strip("[]").lower())


@dataclass(frozen=True)
class ServeOptions:
    """How `serve` runs. Defaults are safe: loopback only, no TLS, modest limits."""

    host: str = "127.0.0.1"
    port: int = 8000  # 0 = any free port (tests)
    token: str | None = None  # required off loopback; header `Authorization: Bearer` or ?token=
    certfile: Path | None = None  # TLS: both or neither
    keyfile: Path | None = None
    log_level: str = "info"
    # Browser origins allowed besides the server's own; "*" allows any (not advised).
    allowed_origins: tuple[str, ...] = ()
    # Names the server answers to besides loopback ones and `host` ("*" = any); empty:
    # loopback names only without a token, any name with one (see `security.host_ok`).
    allowed_hosts: tuple[str, ...] = ()
    model: str | None = None  # override the agent's Live model
    sse_model: str | None = None  # model for /chat/stream; None = the agent's own
    # Where conversations live; None = in memory. Shared by all connections, so a reconnect
    # with the same session id continues the conversation.
    session_service: BaseSessionService | None = field(default=None, compare=False)
    user_id: str | None = None  # None = the session id, as the seeds' server does
    endpoint_label: str = "Gemini"  # shown in logs: "Gemini" or "emulator"
    # Where each conversation's latest live resumption handle is kept, so a client that
    # reconnects resumes the model's session instead of replaying history; None = not kept.
    handles_dir: Path | None = None
    store_label: str = ""  # part of a handle's key: handles belong to one store
    context_compression: int | None = 0  # None = off, 0 = the model's defaults, N = tokens
    # Each WebSocket session's options; its query parameters override them.
    live: LiveOptions = field(default_factory=LiveOptions)
    # Which of several servers behind a load balancer this is (shown in /healthz, /readyz
    # and logs); None = not named.
    instance: str | None = field(default_factory=instance_from_env)
    # Limits.
    max_sessions: int = 32  # WebSocket sessions + SSE streams at once
    max_frame_bytes: int = 1024 * 1024
    max_text_chars: int = 8000
    audio_rate_slack: float = 1.25  # audio may arrive this many times faster than real time
    audio_burst_s: float = 2.0  # ... plus a burst of this many seconds of audio
    max_client_errors: int = 20  # invalid messages before a connection is closed (1007)
    # Typed turns: each starts a model turn, so they are rate-limited like audio; the
    # burst covers a user pasting a few lines at once.
    text_turns_per_minute: float = 30.0
    text_turn_burst: int = 5
    # Images (adkvoice.v1 and bidi-demo): decoded size, and how many a second beyond a burst. An
    # image also travels in one frame, as base64, so `max_frame_bytes` bounds it first.
    max_image_bytes: int = 2 * 1024 * 1024
    images_per_s: float = 2.0
    image_burst: int = 4
    drain_timeout_s: float = 10.0  # graceful shutdown: how long turns may run on
    # A connection must send its whole request (HTTP headers and body, or the WebSocket
    # handshake) within this, or it is closed: half-sent requests must not hold descriptors.
    request_timeout_s: float = 10.0
    # Connections still sending a request at once; one more closes the oldest. Well under
    # the usual limit of 1,024 descriptors, so a flood cannot exhaust them.
    max_pending_connections: int = 256
    handle_signals: bool = True  # SIGINT/SIGTERM start a graceful shutdown (serve only)

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    @property
    def audio_bytes_per_s(self) -> float:
        return BYTES_PER_SECOND_16K * self.audio_rate_slack

    @property
    def audio_burst_bytes(self) -> float:
        return BYTES_PER_SECOND_16K * self.audio_burst_s

    def limits(self) -> dict[str, Any]:
        """The limits a client is told in the extension's hello."""
        return {
            "max_frame_bytes": self.max_frame_bytes,
            "max_text_chars": self.max_text_chars,
            "audio_rate_slack": self.audio_rate_slack,
            "audio_burst_s": self.audio_burst_s,
            "text_turns_per_minute": self.text_turns_per_minute,
            "text_turn_burst": self.text_turn_burst,
            "max_image_bytes": self.max_image_bytes,
            "images_per_s": self.images_per_s,
            "image_burst": self.image_burst,
        }

    def validate(self) -> None:
        """Raise `ConfigError` with one actionable line for any unusable combination."""
        if self.token is not None and not self.token.strip():
            raise ConfigError("--token is empty: give a long random string or leave it unset")
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"refusing to serve on {self.host} without a token: anyone who can reach it "
                f"could talk to the agent. Set --token (or {TOKEN_ENV}), or bind 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not a TCP port (0-65535)")
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigError("TLS needs both --certfile and --keyfile")
        for label, path in (("--certfile", self.certfile), ("--keyfile", self.keyfile)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{label} {path} does not exist or is not a file")
        if self.log_level.lower() not in LOG_LEVELS:
            raise ConfigError(f"--log-level {self.log_level!r}: use one of {', '.join(LOG_LEVELS)}")
        for name in self.allowed_hosts:
            host = name.strip()
            if not host or "/" in host or " " in host or host.count(":") == 1:
                raise ConfigError(
                    f"--allow-host {name!r}: give a host name such as voice.example.com "
                    "(no scheme, port or path), or * for any"
                )
        for origin in self.allowed_origins:
            if origin != "*" and "://" not in origin and origin != "null":
                raise ConfigError(
                    f"allowed origin {origin!r} needs a scheme, e.g. https://app.example.com"
                )
        positive = {
            "max_sessions": self.max_sessions,
            "max_frame_bytes": self.max_frame_bytes,
            "max_text_chars": self.max_text_chars,
            "audio_rate_slack": self.audio_rate_slack,
            "audio_burst_s": self.audio_burst_s,
            "max_client_errors": self.max_client_errors,
            "text_turns_per_minute": self.text_turns_per_minute,
            "text_turn_burst": self.text_turn_burst,
            "max_image_bytes": self.max_image_bytes,
            "images_per_s": self.images_per_s,
            "image_burst": self.image_burst,
            "request_timeout_s": self.request_timeout_s,
            "max_pending_connections": self.max_pending_connections,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.drain_timeout_s < 0:
            raise ConfigError("drain_timeout_s must not be negative")

    def answers_to(self, host_header: str | None) -> bool:
        """Whether a request naming `host_header` is for this server (`security.host_ok`)."""
        return host_ok(
            host_header, token=self.token, bind_host=self.host, allowed_hosts=self.allowed_hosts
        )

    @property
    def level(self) -> int:
        return int(logging.getLevelName(self.log_level.upper()))
