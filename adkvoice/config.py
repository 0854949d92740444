"""Settings from flags and the environment; where the model is; secrets never printed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from adkvoice.errors import ConfigError
from adkvoice.live_options import LiveOptions
from adkvoice.redaction import register_secret, register_url_password

BackendChoice = Literal["auto", "gemini", "emulator"]
OutputMode = Literal["rich", "plain", "json"]


# `serve --loop`: "auto" is uvloop when it is installed.
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]
# `--protocol`: the remote agent's transport; "auto" follows from the URL.
ProtocolChoice = Literal["auto", "seeds", "adkvoice.v1", "run_live", "bidi", "seeds-sse", "run_sse"]


@dataclass(frozen=True)
class ConnectSettings:
    """Which agent to talk to and how: embedded (an agent directory or the built-in one)
    or remote (`url`)."""

    agent_path: Path | None = None
    url: str | None = None  # a remote agent: ws://…/ws/ID, …/ws/USER/SESSION, …/run_live?…
    token: str | None = None  # for a remote agent
    headers: tuple[tuple[str, str], ...] = ()  # `--header`s for a remote agent, in order
    protocol: ProtocolChoice = "auto"
    backend: BackendChoice = "auto"
    model: str | None = None
    text_replies: bool = False
    user_id: str = "user"
    session_id: str | None = None
    resume: bool = False
    sessions: str | None = None  # the --sessions store; None = the default SQLite file
    emulator_rules: Path | None = None
    # Context window compression: None = off, 0 = the model's defaults, N = trigger tokens.
    context_compression: int | None = 0
    # Voice, language, voice activity detection, proactive audio, affective dialog, thinking.
    live: LiveOptions = field(default_factory=LiveOptions)


@dataclass(frozen=True)
class VisionSettings:
    """What the model is shown: a camera or the screen as a feed of frames (talk), and an
    image sent once (talk: at the start; chat: with the first message)."""

    camera: str | None = None  # a device number ("0") or a video file's path
    screen: str | None = None  # a monitor number, "X,Y,W,H" or "window:TITLE"
    image: Path | None = None
    fps: float = 1.0
    frames: Literal["while-speaking", "always"] = "while-speaking"


@dataclass(frozen=True)
class ChatSettings:
    connect: ConnectSettings
    output: OutputMode = "rich"
    timeout_s: float | None = None
    debug: bool = False
    vision: VisionSettings = field(default_factory=VisionSettings)

    @property
    def text_chunk_delay_s(self) -> float:
        """The emulator's pause between text chunks: in a terminal, replies stream."""
        return 0.03 if self.output == "rich" else 0.0


@dataclass(frozen=True)
class TalkSettings:
    connect: ConnectSettings
    input_device: str | None = None
    output_device: str | None = None
    push_to_talk: bool = False
    echo_cancellation: bool = True
    noise_suppression: bool = True
    gain_control: bool = False  # lifts a quiet voice, and the noise with it
    record_dir: Path | None = None
    input_wav: Path | None = None
    debug: bool = False
    vision: VisionSettings = field(default_factory=VisionSettings)


@dataclass(frozen=True)
class SessionsSettings:
    agent_path: Path | None
    sessions: str | None = None
    user_id: str = "user"
    debug: bool = False


@dataclass(frozen=True)
class ServeSettings:
    agent_path: Path | None
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    backend: BackendChoice = "auto"
    model: str | None = None
    sessions: str | None = None
    max_sessions: int = 32
    log_level: str = "info"
    event_loop: EventLoopChoice = "auto"
    emulator_rules: Path | None = None
    debug: bool = False
    context_compression: int | None = 0  # as ConnectSettings.context_compression
    # Each connection's defaults; its query parameters override them.
    live: LiveOptions = field(default_factory=LiveOptions)


@dataclass(frozen=True)
class EmulatorSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    rules: Path | None = None
    debug: bool = False


def uses_vertex(env: Mapping[str, str]) -> bool:
    """Whether google-genai will talk to Vertex AI (Agent Platform): it reads
    GOOGLE_GENAI_USE_ENTERPRISE first, then GOOGLE_GENAI_USE_VERTEXAI (true or 1)."""
    for name in ("GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_GENAI_USE_VERTEXAI"):
        value = env.get(name)
        if value is not None:
            return value.strip().lower() in ("true", "1")
    return False


def credentials_source(env: Mapping[str, str]) -> str | None:
    """Which Google credentials the environment holds, as a label safe to print; None
    if none. Mirrors how google-genai picks them."""
    if uses_vertex(env):
        if env.get("GOOGLE_CLOUD_PROJECT") or env.get("GOOGLE_API_KEY"):
            return "Vertex AI"
        return None
    if env.get("GOOGLE_API_KEY"):
        return "GOOGLE_API_KEY"
    if env.get("GEMINI_API_KEY"):
        return "GEMINI_API_KEY"
    return None


# Secrets adkvoice reads from the environment. "emulator" is the key `adkvoice emulator`
# tells apps to use: not a secret, and hiding it would shred every line naming it.
_SECRET_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "ADKVOICE_TOKEN")
_SECRET_URL_VARS = ("ADKVOICE_SESSIONS",)
_NOT_SECRET = "emulator"


def register_env_secrets(env: Mapping[str, str]) -> None:
    """Hide the environment's credentials from logs and messages (call it at start, and
    again once an agent's .env is loaded)."""
    for name in _SECRET_VARS:
        value = env.get(name)
        if value != _NOT_SECRET:
            register_secret(value)
    for name in _SECRET_URL_VARS:
        register_url_password(env.get(name))


def register_settings_secrets(
    *,
    token: str | None = None,
    url: str | None = None,
    sessions: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    """Hide the secrets flags carry: a token, `--header` values, a `--url` password, a
    `--sessions` password."""
    register_secret(token)
    for _name, value in headers:
        register_secret(value)
    register_url_password(url)
    register_url_password(sessions)


def choose_backend(choice: BackendChoice, env: Mapping[str, str]) -> Literal["gemini", "emulator"]:
    """Resolve `--backend auto|gemini|emulator` against the credentials present."""
    if choice == "emulator":
        return "emulator"
    has_credentials = credentials_source(env) is not None
    if choice == "gemini":
        if not has_credentials:
            raise ConfigError(
                "--backend gemini needs Google credentials: set GOOGLE_API_KEY (or "
                "GEMINI_API_KEY), or GOOGLE_GENAI_USE_ENTERPRISE=TRUE (or the older "
                "GOOGLE_GENAI_USE_VERTEXAI=TRUE) and GOOGLE_CLOUD_PROJECT, in the environment "
                "or the agent's .env"
            )
        return "gemini"
    return "gemini" if has_credentials else "emulator"


def point_genai_at(env_overrides: Mapping[str, str]) -> None:
    """Point the google-genai client that ADK creates at another Live endpoint.

    google-genai reads these variables when an agent's model first builds its client,
    so this must run before the first turn. Vertex mode is switched off so the API-key
    URL form is used.
    """
    for key in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GEMINI_API_KEY"):
        os.environ.pop(key, None)
    os.environ.update(env_overrides)


# Below this, compression would drop turns the model still needs within a few exchanges.
MIN_COMPRESSION_TOKENS = 1_000


def parse_context_compression(value: str) -> int | None:
    """`--context-compression`: on (0: the model's defaults), off (None), or trigger tokens."""
    word = value.strip().lower()
    if word == "on":
        return 0
    if word == "off":
        return None
    try:
        tokens = int(word.replace("_", "").replace(",", ""))
    except ValueError:
        raise ConfigError(
            f"--context-compression: expected on, off or a token count, got {value!r}"
        ) from None
    if tokens < MIN_COMPRESSION_TOKENS:
        raise ConfigError(
            f"--context-compression: {tokens} tokens is too small; use at least "
            f"{MIN_COMPRESSION_TOKENS:,}"
        )
    return tokens
