"""`adkvoice sessions list|show|delete`: past conversations."""

from __future__ import annotations

from pathlib import Path

import typer

from adkvoice.cli_app import run_action
from adkvoice.cli_help import HelpCommand, HelpGroup
from adkvoice.cli_options import AgentArg, AgentOpt, DebugOpt, SessionIdArg, SessionsOpt, UserOpt

sessions_app = typer.Typer(
    help="Past conversations: list them, show one, delete one.",
    cls=HelpGroup,
    no_args_is_help=True,
)


def _sessions(
    action: str,
    agent: Path | None,
    session_id: str | None,
    sessions: str | None,
    user_id: str,
    debug: bool,
) -> None:
    from adkvoice.config import SessionsSettings

    settings = SessionsSettings(agent_path=agent, sessions=sessions, user_id=user_id, debug=debug)

    def run() -> int:
        from adkvoice.commands.sessions import run_sessions

        return run_sessions(settings, action, session_id)

    run_action(run, debug)


@sessions_app.command("list", cls=HelpCommand)
def sessions_list(
    agent: AgentArg = None,
    sessions: SessionsOpt = None,
    user_id: UserOpt = "user",
    debug: DebugOpt = False,
) -> None:
    """List past conversations with an agent, newest first: id, time, turns, first line."""
    _sessions("list", agent, None, sessions, user_id, debug)


@sessions_app.command("show", cls=HelpCommand)
def sessions_show(
    session_id: SessionIdArg,
    agent: AgentOpt = None,
    sessions: SessionsOpt = None,
    user_id: UserOpt = "user",
    debug: DebugOpt = False,
) -> None:
    """Print one conversation: your turns, the agent's replies and its tool calls."""
    _sessions("show", agent, session_id, sessions, user_id, debug)


@sessions_app.command("delete", cls=HelpCommand)
def sessions_delete(
    session_id: SessionIdArg,
    agent: AgentOpt = None,
    sessions: SessionsOpt = None,
    user_id: UserOpt = "user",
    debug: DebugOpt = False,
) -> None:
    """Delete one conversation."""
    _sessions("delete", agent, session_id, sessions, user_id, debug)
