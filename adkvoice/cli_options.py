"""The flags several commands share: their names, help text and parsing, in one place.

Type aliases for typer (`Annotated[...]`), so each command's signature reads as a list of
what it accepts. No asyncio and no ADK imports, so `--help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from adkvoice.config import ConnectSettings


def fail(message: str, code: int) -> None:
    """End the command with one red line and `code`."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, soft_wrap=True).print(Text.assemble(("adkvoice: ", "bold red"), message))
    raise typer.Exit(code)


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
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Override the agent's live model name.", show_default=False),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Talk to a remote agent instead: ws://HOST:PORT/ws/SESSION_ID (adkvoice serve, or any server speaking the ADK streaming sample's protocol) or ws://HOST:PORT/run_live?app_name=AGENT (adk api_server / adk web).",
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
SessionsOpt = Annotated[
    str | None,
    typer.Option(
        "--sessions",
        envvar="ADKVOICE_SESSIONS",
        help="Where conversations are kept: a SQLite file path (default: sessions.db in your "
        "data directory), [b]memory[/] (not kept), or postgresql://…",
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


def parse_compression(value: str) -> int | None:
    from adkvoice.config import parse_context_compression
    from adkvoice.errors import ConfigError

    try:
        return parse_context_compression(value)
    except ConfigError as exc:
        fail(str(exc), 2)
        raise  # not reached: fail exits


def connect_settings(
    *,
    agent: Path | None,
    url: str | None,
    token: str | None,
    backend: BackendOption,
    model: str | None,
    text: bool,
    user_id: str,
    session_id: str | None,
    resume: bool,
    sessions: str | None,
    rules: Path | None,
    compression: str = "on",
) -> ConnectSettings:
    from adkvoice.config import ConnectSettings

    context_compression = parse_compression(compression)

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
        backend=backend.value,
        model=model,
        text_replies=text,
        user_id=user_id,
        session_id=session_id,
        resume=resume,
        sessions=sessions,
        emulator_rules=rules,
        context_compression=context_compression,
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
