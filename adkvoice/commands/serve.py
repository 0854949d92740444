"""`adkvoice serve`: host the agent for browsers and remote terminals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console

from adkvoice.app import configure_logging, run_main
from adkvoice.backends.factory import default_handles_dir, is_ephemeral, live_endpoint
from adkvoice.config import EventLoopChoice, ServeSettings, register_settings_secrets
from adkvoice.errors import ConfigError
from adkvoice.events import Notice
from adkvoice.live_options import plan_session
from adkvoice.store.sessions import SessionStore, close_store, open_store

if TYPE_CHECKING:
    from adkvoice.agents.loading import LoadedAgent


async def serve_agent(settings: ServeSettings) -> int:
    from adkvoice.agents.loading import live_model_of, load_agent_dir, load_bundled_agent

    err = Console(stderr=True)

    def say(notice: Notice) -> None:
        err.print(notice.message, style="cyan", highlight=False, soft_wrap=True)

    loaded = load_agent_dir(settings.agent_path) if settings.agent_path else load_bundled_agent()
    # The session options every connection starts from, checked against the model now.
    plan = plan_session(settings.live, live_model_of(loaded, settings.model), text_replies=False)
    for message in plan.notices:
        say(Notice(message=message))
    # One SQLite connection for the whole server: ADK opens one per stored event otherwise.
    store = open_store(settings.sessions, long_lived=True)
    try:
        await _serve_with(settings, loaded, store, say)
    finally:
        await close_store(store)
    return 0


async def _serve_with(
    settings: ServeSettings, loaded: LoadedAgent, store: SessionStore, say: Callable[[Notice], None]
) -> None:
    from adkvoice.server import ServeOptions, serve

    async with live_endpoint(
        settings.backend, settings.emulator_rules, say, text_chunk_delay_s=0.03, audio_pacing=1.0
    ) as (label, _emulator):
        options = ServeOptions(
            host=settings.host,
            port=settings.port,
            token=settings.token,
            certfile=settings.certfile,
            keyfile=settings.keyfile,
            log_level="debug" if settings.debug else settings.log_level,
            allowed_origins=settings.allowed_origins,
            allowed_hosts=settings.allowed_hosts,
            model=settings.model,
            session_service=store.service,
            endpoint_label=label,
            max_sessions=settings.max_sessions,
            handles_dir=None if is_ephemeral(store) else default_handles_dir(),
            store_label=store.label,
            context_compression=settings.context_compression,
            live=settings.live,
        )

        def ready(url: str) -> None:
            say(
                Notice(message=f"Serving {loaded.source} at {url} (conversations in {store.label})")
            )
            say(Notice(message="Ctrl-C stops it after running turns finish."))

        # This process is the server for its whole life: settle its heap first.
        from adkvoice.server.heap import settle_before_sessions

        settle_before_sessions()
        await serve(loaded, options, on_ready=ready)


def event_loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when asked for or (auto) installed; None for asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("--loop uvloop needs uvloop: pip install 'adkvoice[fast]'") from None
        return None
    return uvloop.new_event_loop


def run_serve(settings: ServeSettings) -> int:
    register_settings_secrets(token=settings.token, sessions=settings.sessions)
    configure_logging(settings.debug)
    loop_factory = event_loop_factory(settings.event_loop)
    # While serving, uvicorn turns SIGINT/SIGTERM into a graceful drain; stopping it is
    # the normal way to end, so an interrupt is not a failure.
    return run_main(
        lambda: serve_agent(settings),
        own_signals=False,
        interrupted_exit=0,
        loop_factory=loop_factory,
    )
