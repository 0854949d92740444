"""The flags several commands share: their names, help text and parsing, in one place.

Type aliases for typer (`Annotated[...]`), so each command's signature reads as a list of
what it accepts. No asyncio and no ADK imports, so `--help` stays fast.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from adkvoice.config import ConnectSettings, VisionSettings
    from adkvoice.live_options import LiveOptions


def fail(message: str, code: int) -> None:
    """End the command with one red line and `code`; secrets in it are hidden (an error
    may quote a URL with its password, or a server's reply with a token)."""
    from rich.console import Console
    from rich.text import Text

    from adkvoice.redaction import redact

    line = Text.assemble(("adkvoice: ", "bold red"), redact(message))
    Console(stderr=True, soft_wrap=True).print(line)
    raise typer.Exit(code)


def print_traceback() -> None:
    """The current exception's traceback on stderr (--debug), secrets hidden."""
    import traceback

    from adkvoice.redaction import redact

    sys.stderr.write(redact(traceback.format_exc()))


class ProtocolOption(StrEnum):
    auto = "auto"
    seeds = "seeds"
    adkvoice_v1 = "adkvoice.v1"
    run_live = "run_live"
    bidi = "bidi"
    seeds_sse = "seeds-sse"
    run_sse = "run_sse"


class BackendOption(StrEnum):
    auto = "auto"
    gemini = "gemini"
    emulator = "emulator"


AgentArg = Annotated[
    Path | None,
    typer.Argument(
        help="The agent's directory (with agent.py exposing root_agent, and its .env), as "
        "for `adk run`. Default: the built-in assistant.",
        show_default=False,
    ),
]
BackendOpt = Annotated[
    BackendOption,
    typer.Option(
        "--backend",
        help="Where the model runs: [b]gemini[/] (needs credentials), [b]emulator[/] (the "
        "built-in offline Live API emulator) or [b]auto[/] (gemini when credentials are set).",
        case_sensitive=False,
    ),
]


def _model_name(value: str | None) -> str | None:
    # The Gemini API's own docs write "models/gemini-…"; ADK resolves only the bare name.
    return value.strip().removeprefix("models/") if value else value


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Override the agent's live model name.",
        show_default=False,
        callback=_model_name,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Talk to a remote agent instead: ws://HOST:PORT/ws/SESSION_ID (adkvoice serve, or any server speaking the ADK streaming sample's protocol), ws://HOST:PORT/ws/USER_ID/SESSION_ID (ADK's bidi-demo), ws://HOST:PORT/run_live?app_name=AGENT (adk api_server / adk web), http://HOST:PORT/events/SESSION_ID (the sample's SSE version, or adkvoice serve) or http://HOST:PORT/run_sse?app_name=AGENT (adk api_server, typed text only: chat --text).",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ADKVOICE_TOKEN",
        help="The token a remote server (--url) asks for.",
        show_default=False,
    ),
]
ProtocolOpt = Annotated[
    ProtocolOption,
    typer.Option(
        "--protocol",
        help="The transport --url speaks: [b]auto[/] (from the URL: …/ws/ID is the ADK "
        "streaming sample's protocol, upgraded to adkvoice.v1 when the server offers it; "
        "…/ws/USER/SESSION is ADK's bidi-demo; …/run_live is ADK's api_server; "
        "http…/events/ID is the sample's SSE version; http…/run_sse is ADK's text runs), or "
        "[b]seeds[/], [b]adkvoice.v1[/] (required), [b]run_live[/], [b]bidi[/], "
        "[b]seeds-sse[/], [b]run_sse[/] for a server on another path. The line "
        "'connected to …' names the one in use.",
        case_sensitive=False,
    ),
]
HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        help="A header for the remote server (--url), as 'Name: value' (repeatable), for "
        "servers behind auth, e.g. -H 'X-Serverless-Authorization: Bearer …'. Header "
        "values are never printed.",
        show_default=False,
    ),
]
AllowOriginOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-origin",
        help="A browser origin allowed besides the server's own (repeatable; * for any).",
        show_default=False,
    ),
]
AllowHostOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        help="A host name the server answers to besides loopback ones, e.g. the name a "
        "reverse proxy passes on (repeatable; * for any). Without --token only loopback "
        "names are answered, which stops DNS-rebinding sites; with it, any name is.",
        show_default=False,
    ),
]
SessionsOpt = Annotated[
    str | None,
    typer.Option(
        "--sessions",
        envvar="ADKVOICE_SESSIONS",
        help="Where conversations are kept: a SQLite file path (default: sessions.db in your "
        "data directory), [b]memory[/] (not kept), or postgresql://…. One that cannot be "
        "written ends the command with exit code 11.",
        show_default=False,
    ),
]
SessionIdOpt = Annotated[
    str | None,
    typer.Option(
        "--session",
        "--session-id",
        help="Continue (or start) the conversation with this id.",
        show_default=False,
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", "-r", help="Continue the latest conversation with this agent."),
]
CompressionOpt = Annotated[
    str,
    typer.Option(
        "--context-compression",
        metavar="on|off|TOKENS",
        help="Context window compression for long conversations: [b]on[/] (the model's "
        "defaults), [b]off[/], or the context size in tokens at which the oldest turns start "
        "to be dropped.",
    ),
]
EmulatorRulesOpt = Annotated[
    Path | None,
    typer.Option(
        "--emulator-rules",
        help="A rules file (TOML) for the emulator's replies.",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]
UserOpt = Annotated[str, typer.Option("--user-id", help="The ADK user id.")]
DebugOpt = Annotated[
    bool, typer.Option("--debug", help="Show debug logs and tracebacks on errors.")
]


class SensitivityOption(StrEnum):
    low = "low"
    high = "high"


VoiceOpt = Annotated[
    str | None,
    typer.Option(
        "--voice",
        metavar="NAME",
        help="The model's voice, e.g. Kore or Puck (`adkvoice voices` lists them).",
        show_default=False,
        rich_help_panel="Live session",
    ),
]
LanguageOpt = Annotated[
    str | None,
    typer.Option(
        "--language",
        metavar="CODE",
        help="The language to speak, as BCP-47 (en-US, de-DE, ja-JP). Native-audio and 3.x models choose it themselves; a line says so.",
        show_default=False,
        rich_help_panel="Live session",
    ),
]
VadSilenceOpt = Annotated[
    int | None,
    typer.Option(
        "--vad-silence-ms",
        metavar="MS",
        min=0,
        max=10_000,
        help="How long a pause ends your turn, in milliseconds (the model's voice detection).",
        show_default=False,
        rich_help_panel="Live session",
    ),
]
VadSensitivityOpt = Annotated[
    SensitivityOption | None,
    typer.Option(
        "--vad-sensitivity",
        help="How readily the model hears the start and end of speech: [b]low[/] for noisy rooms (fewer false starts, later ends), [b]high[/] to react quickly.",
        case_sensitive=False,
        show_default=False,
        rich_help_panel="Live session",
    ),
]
NoBargeInOpt = Annotated[
    bool,
    typer.Option(
        "--no-barge-in",
        help="Speaking does not cut the agent off: it finishes, then answers you.",
        rich_help_panel="Live session",
    ),
]
ProactiveOpt = Annotated[
    bool,
    typer.Option(
        "--proactive",
        help="Proactive audio: the model may stay silent when speech is not meant for it (native-audio models; always on for 3.8).",
        rich_help_panel="Live session",
    ),
]
AffectiveOpt = Annotated[
    bool,
    typer.Option(
        "--affective",
        help="Affective dialog: the model adapts to the tone of your voice (native-audio models).",
        rich_help_panel="Live session",
    ),
]
ThinkingOpt = Annotated[
    str | None,
    typer.Option(
        "--thinking",
        metavar="LEVEL|TOKENS",
        help="How much the model thinks: minimal, low, medium or high (3.1, 3.8 extended thinking), or a token budget (2.5 native audio; 0 turns it off).",
        show_default=False,
        rich_help_panel="Live session",
    ),
]

NoNoiseSuppressionOpt = Annotated[
    bool,
    typer.Option(
        "--no-noise-suppression",
        help="No noise suppression: the model hears the microphone as captured (after echo cancellation).",
    ),
]
GainControlOpt = Annotated[
    bool,
    typer.Option(
        "--gain-control",
        help="Automatic gain control after noise suppression, for a quiet microphone: it lifts your voice to where the model hears it, and what noise is left with it.",
    ),
]


VISION_PANEL = "Show the agent"


class FramesOption(StrEnum):
    while_speaking = "while-speaking"
    always = "always"


# --camera and --screen always take a value: an option whose value may be left out would
# take the AGENT_DIR argument after it for its value.
CameraOpt = Annotated[
    str | None,
    typer.Option(
        "--camera",
        metavar="INDEX|FILE",
        help="Show the agent a camera: its number (0 is the first), or a video file that "
        "stands in for one. The value is not optional (--camera 0), so the agent's "
        "directory after it is never taken for a file.",
        show_default=False,
        rich_help_panel=VISION_PANEL,
    ),
]
ScreenOpt = Annotated[
    str | None,
    typer.Option(
        "--screen",
        metavar="MONITOR|REGION",
        help="Show the agent the screen: a monitor (1 is the first, 0 all of them), a "
        "region X,Y,W,H in pixels, or window:TITLE (X11). The value is not optional "
        "(--screen 1), so the agent's directory after it is never taken for one.",
        show_default=False,
        rich_help_panel=VISION_PANEL,
    ),
]
FpsOpt = Annotated[
    float,
    typer.Option(
        "--fps",
        metavar="N",
        help="Camera or screen frames a second, at most (up to 10); an unchanged picture "
        "is not sent again. Each frame costs input tokens.",
        rich_help_panel=VISION_PANEL,
    ),
]
FramesOpt = Annotated[
    FramesOption,
    typer.Option(
        "--frames",
        help="When camera or screen frames are sent: [b]while-speaking[/] (while you "
        "speak or type, and a second after: the model sees what you talk about, and "
        "frames nobody asked about cost nothing) or [b]always[/].",
        case_sensitive=False,
        rich_help_panel=VISION_PANEL,
    ),
]


def image_opt(when: str) -> object:
    """`--image FILE`; `when` says when it is sent."""
    return typer.Option(
        "--image",
        metavar="FILE",
        help=f"Show the agent this image (JPEG, PNG, WebP…) {when}, fitted to 768 px.",
        show_default=False,
        rich_help_panel=VISION_PANEL,
    )


def vision_settings(
    *,
    camera: str | None = None,
    screen: str | None = None,
    image: Path | None = None,
    fps: float = 1.0,
    frames: FramesOption = FramesOption.while_speaking,
) -> VisionSettings:
    """What the model is shown, from its flags; a bad combination ends in one line (exit 2)."""
    from adkvoice.config import VisionSettings

    if camera is not None and screen is not None:
        fail("show the agent a camera or the screen, not both: drop --camera or --screen", 2)
    if not 0 < fps <= 10:
        fail(f"--fps must be above 0 and at most 10, not {fps:g}", 2)
    if camera is not None and not camera.strip():
        fail("--camera needs a camera number (0) or a video file", 2)
    return VisionSettings(camera=camera, screen=screen, image=image, fps=fps, frames=frames.value)


def live_options(
    *,
    voice: str | None,
    language: str | None,
    vad_silence_ms: int | None,
    vad_sensitivity: SensitivityOption | None,
    no_barge_in: bool,
    proactive: bool,
    affective: bool,
    thinking: str | None,
) -> LiveOptions:
    """The session options from their flags; a malformed value ends in one line (exit 2)."""
    from adkvoice.errors import ConfigError
    from adkvoice.live_options import LiveOptions, normalize_language, parse_thinking

    try:
        return LiveOptions(
            voice=voice,
            language=None if language is None else normalize_language(language),
            vad_silence_ms=vad_silence_ms,
            vad_sensitivity=None if vad_sensitivity is None else vad_sensitivity.value,
            barge_in=not no_barge_in,
            proactive=proactive,
            affective=affective,
            thinking=None if thinking is None else parse_thinking(thinking),
        )
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # not reached: fail exits


def parse_compression(value: str) -> int | None:
    from adkvoice.config import parse_context_compression
    from adkvoice.errors import ConfigError

    try:
        return parse_context_compression(value)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # not reached: fail exits


# Headers the WebSocket handshake and HTTP itself own; a `--header` may not set them.
_RESERVED_HEADERS = {"host", "connection", "upgrade", "content-length", "transfer-encoding"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_headers(given: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`--header 'Name: value'` flags, checked: one clear line (exit 2) for a bad one.
    The message never quotes a value: it may be a credential."""
    headers: list[tuple[str, str]] = []
    for item in given:
        name, colon, value = item.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _HEADER_NAME.match(name) or not value:
            fail(f"--header needs the form 'Name: value' (got a header named {name[:40]!r})", 2)
        if "\r" in value or "\n" in value:
            fail(f"--header {name}: a value cannot hold a line break", 2)
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS or lowered.startswith("sec-websocket-"):
            fail(f"--header {name}: set by the connection itself; it cannot be given", 2)
        headers.append((name, value))
    return tuple(headers)


def connect_settings(
    *,
    agent: Path | None,
    url: str | None,
    token: str | None,
    backend: BackendOption,
    headers: list[str] | None = None,
    protocol: ProtocolOption = ProtocolOption.auto,
    model: str | None,
    text: bool,
    user_id: str,
    session_id: str | None,
    resume: bool,
    sessions: str | None,
    rules: Path | None,
    compression: str = "on",
    live: LiveOptions | None = None,
) -> ConnectSettings:
    from adkvoice.config import ConnectSettings, register_settings_secrets
    from adkvoice.live_options import LiveOptions

    parsed_headers = parse_headers(headers or ())
    register_settings_secrets(token=token, url=url, sessions=sessions, headers=parsed_headers)
    context_compression = parse_compression(compression)

    if parsed_headers and url is None:
        fail("--header is for a remote server: give --url too", 2)
    if protocol != ProtocolOption.auto and url is None:
        fail("--protocol is for a remote server: give --url too", 2)
    if url is not None:
        if agent is not None:
            fail("give an agent directory or --url, not both", 2)
        if resume or session_id is not None:
            fail(
                "with --url the session id is part of the URL (…/ws/SESSION_ID); drop --resume/--session",
                2,
            )
    return ConnectSettings(
        agent_path=agent,
        url=url,
        token=token,
        headers=parsed_headers,
        protocol=protocol.value,
        backend=backend.value,
        model=model,
        text_replies=text,
        user_id=user_id,
        session_id=session_id,
        resume=resume,
        sessions=sessions,
        emulator_rules=rules,
        context_compression=context_compression,
        live=live or LiveOptions(),
    )


SessionIdArg = Annotated[str, typer.Argument(help="The conversation id (see `sessions list`).")]
AgentOpt = Annotated[
    Path | None,
    typer.Option(
        "--agent",
        "-a",
        help="The agent directory (default: the built-in assistant).",
        show_default=False,
    ),
]
