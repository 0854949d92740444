"""`adkvoice sessions list|show|delete`: the conversations kept in a store."""

from __future__ import annotations

from rich.console import Console

from adkvoice.app import configure_logging, run_main
from adkvoice.config import SessionsSettings, register_settings_secrets
from adkvoice.errors import ConfigError
from adkvoice.store.sessions import open_store


async def sessions(settings: SessionsSettings, action: str, session_id: str | None) -> int:
    from adkvoice.agents.loading import app_name_for
    from adkvoice.store.sessions import list_summaries
    from adkvoice.ui.chat_view import session_transcript, sessions_table

    out = Console()
    store = open_store(settings.sessions, write=action == "delete")  # a read-only store lists
    app_name = app_name_for(settings.agent_path)
    service = store.service
    if action == "list":
        summaries = await list_summaries(service, app_name, settings.user_id)
        if not summaries:
            out.print(f"No conversations with {app_name} in {store.label} yet.", highlight=False)
        else:
            out.print(sessions_table(summaries, store_label=store.label))
        return 0
    assert session_id is not None
    session = await service.get_session(
        app_name=app_name, user_id=settings.user_id, session_id=session_id
    )
    if session is None:
        raise ConfigError(
            f"no conversation {session_id!r} with {app_name} in {store.label}; "
            "`adkvoice sessions list` shows them"
        )
    if action == "show":
        out.print(session_transcript(session))
    else:
        await service.delete_session(
            app_name=app_name, user_id=settings.user_id, session_id=session_id
        )
        out.print(f"Deleted conversation {session_id}.", highlight=False)
    return 0


def run_sessions(settings: SessionsSettings, action: str, session_id: str | None = None) -> int:
    register_settings_secrets(sessions=settings.sessions)
    configure_logging(settings.debug)
    return run_main(lambda: sessions(settings, action, session_id))
