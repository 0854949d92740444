"""Which agent to talk to, and over what: a started backend for chat, talk and serve.

Remote for `--url`; otherwise the agent embedded in this process, with its conversations
in the `--sessions` store and the in-process Live API emulator when there are no Google
credentials (one visible line says so).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from adkvoice.config import BackendChoice, ConnectSettings, choose_backend, point_genai_at
from adkvoice.errors import ConfigError
from adkvoice.events import Modality, Notice
from adkvoice.live_options import LiveOptions, plan_session
from adkvoice.store.handles import HandleStore, conversation_key
from adkvoice.store.sessions import SessionStore, latest_session_id, new_session_id, open_store

if TYPE_CHECKING:
    from google.adk.sessions.base_session_service import BaseSessionService

    from adkvoice.agents.loading import LoadedAgent
    from adkvoice.backends.base import Backend
    from adkvoice.backends.embedded import EmbeddedBackend
    from adkvoice.backends.emulator_process import EmulatorProcess
    from adkvoice.emulator import Emulator


# Where the factory's notices go: the command's conversation (its views), or stderr.
Notify = Callable[[Notice], None]


def _info(notify: Notify, message: str) -> None:
    notify(Notice(message=message, level="info"))


@contextlib.asynccontextmanager
async def live_endpoint(
    backend: BackendChoice,
    rules_file: Path | None,
    notify: Notify,
    *,
    text_chunk_delay_s: float = 0.0,
    audio_pacing: float = 0.0,
    started: EmulatorProcess | None = None,
) -> AsyncIterator[tuple[str, Emulator | None]]:
    """Start the in-process emulator when there are no credentials (or when forced), or
    use `started` (see `start_emulator_early`), which is stopped here when not needed or
    on exit. The emulator is yielded when it runs in this process."""
    which = choose_backend(backend, os.environ)
    if which == "gemini":
        if started is not None:  # the agent's .env had the credentials
            await started.stop()
        yield "Gemini", None
        return
    if started is not None:
        env = await started.client_env()
        if env is not None:
            try:
                point_genai_at(env)
                _emulator_notice(backend, notify)
                yield "emulator", None
            finally:
                await started.stop()
            return
    from adkvoice.emulator import Emulator, EmulatorOptions, load_rules

    rules = load_rules(rules_file) if rules_file else None
    emulator = Emulator(
        EmulatorOptions(
            rules=rules, text_chunk_delay_s=text_chunk_delay_s, audio_pacing=audio_pacing
        )
    )
    await emulator.start()
    try:
        point_genai_at(emulator.client_env())
        _emulator_notice(backend, notify)
        yield "emulator", emulator
    finally:
        await emulator.stop()


def _emulator_notice(backend: BackendChoice, notify: Notify) -> None:
    if backend == "auto":
        _info(
            notify,
            "No Google credentials found: using the built-in Live API emulator (scripted "
            "replies). Set GOOGLE_API_KEY to talk to Gemini.",
        )
    else:
        _info(notify, "Using the built-in Live API emulator (scripted replies).")


def start_emulator_early(
    connect: ConnectSettings, *, text_chunk_delay_s: float, debug: bool
) -> EmulatorProcess | None:
    """The emulator `open_backend` will likely need, started in a child process before
    the caller imports ADK (see `emulator_process`); None when it will not be needed (a
    remote agent, credentials in the environment). Pass it to `open_backend`, which
    stops it, and `close` it in the end anyway: an error may come before."""
    if connect.url is not None:
        return None
    try:
        if choose_backend(connect.backend, os.environ) != "emulator":
            return None
    except ConfigError:  # open_backend says it, in its turn
        return None
    from adkvoice.backends.emulator_process import EmulatorProcess

    return EmulatorProcess.spawn(
        rules_file=connect.emulator_rules,
        text_chunk_delay_s=text_chunk_delay_s,
        audio_pacing=0.0,
        debug=debug,
    )


async def choose_session(
    connect: ConnectSettings, app_name: str, store: SessionStore, notify: Notify
) -> str | None:
    """The session to continue: `--session ID`, the latest with `--resume`, or a new one."""
    if connect.session_id is not None or not connect.resume:
        return connect.session_id
    latest = await latest_session_id(store.service, app_name, connect.user_id)
    if latest is None:
        _info(
            notify, f"no earlier conversation with {app_name} in {store.label}: starting a new one"
        )
        return None
    _info(notify, f"resuming conversation {latest}")
    return latest


def is_ephemeral(store: SessionStore) -> bool:
    """True when the store keeps nothing after the process ends (`--sessions memory`)."""
    from google.adk.sessions.in_memory_session_service import InMemorySessionService

    return isinstance(store.service, InMemorySessionService)


def default_handles_dir() -> Path:
    import platformdirs

    return platformdirs.user_data_path("adkvoice") / "live-handles"


@contextlib.asynccontextmanager
async def open_backend(
    connect: ConnectSettings,
    notify: Notify,
    *,
    text_chunk_delay_s: float = 0.0,
    manual_activity: bool = False,
    emulator: EmulatorProcess | None = None,
) -> AsyncIterator[Backend]:
    """A started backend: remote for `--url`, otherwise the agent embedded in this process
    (with the emulator when there are no credentials: `emulator` if it was started early,
    which is stopped here). Closed on exit."""
    modality: Modality = "TEXT" if connect.text_replies else "AUDIO"
    if connect.url is not None:
        from adkvoice.backends.remote import remote_backend

        remote = remote_backend(
            connect.url,
            modality=modality,
            token=connect.token,
            headers=connect.headers,
            live=connect.live,
            protocol=connect.protocol,
        )
        if manual_activity and not remote.capabilities.push_to_talk:
            raise ConfigError(
                "--push-to-talk needs activity signals, which remote servers do not take "
                "(the seeds protocol, adkvoice.v1 and bidi-demo carry none; ADK's /run_live "
                "keeps the model's voice detection on): drop --push-to-talk with --url"
            )
        await remote.start()
        try:
            _info(notify, f"connected to {remote.description}")
            for line in remote.endpoint.notices():
                _info(notify, line)
            yield remote
        finally:
            await remote.close()
        return

    from adkvoice.agents.loading import live_model_of, load_agent_dir, load_bundled_agent

    # The agent's .env is loaded first, as `adk run` does, so it can hold the credentials.
    loaded = load_agent_dir(connect.agent_path) if connect.agent_path else load_bundled_agent()
    # A model name ADK cannot run, or an option the model refuses, ends here, before
    # anything starts (the backend says the plan's notices when it starts).
    plan_session(
        connect.live, live_model_of(loaded, connect.model), text_replies=connect.text_replies
    )
    store = open_store(connect.sessions)
    session_id = await choose_session(connect, loaded.app_name, store, notify)
    async with live_endpoint(
        connect.backend,
        connect.emulator_rules,
        notify,
        text_chunk_delay_s=text_chunk_delay_s,
        started=emulator,
    ) as (label, _emulator):
        session_id = session_id or new_session_id()
        embedded = embedded_backend(
            loaded,
            modality=modality,
            model=connect.model,
            session_service=store.service,
            store_label=store.label,
            # A conversation that is not kept cannot be resumed by a later process either.
            handles_dir=None if is_ephemeral(store) else default_handles_dir(),
            user_id=connect.user_id,
            session_id=session_id,
            endpoint_label=label,
            manual_activity=manual_activity,
            context_compression=connect.context_compression,
            live=connect.live,
        )
        await embedded.start()
        try:
            _info(notify, f"{embedded.description}")
            _info(
                notify,
                f"conversation {embedded.session_id} (continue it with --resume or "
                f"--session {embedded.session_id})",
            )
            yield embedded
        finally:
            await embedded.close()


def embedded_backend(
    loaded: LoadedAgent,
    *,
    modality: Modality,
    model: str | None,
    session_service: BaseSessionService,
    store_label: str,
    handles_dir: Path | None,
    user_id: str,
    session_id: str | None,
    endpoint_label: str,
    context_compression: int | None,
    manual_activity: bool = False,
    live: LiveOptions | None = None,
) -> EmbeddedBackend:
    """The agent embedded in this process, for one conversation: how `chat`, `talk` and
    every `serve` session build it. Resumption handles are kept under `handles_dir`
    (None: not kept), keyed by everything that identifies the conversation."""
    from adkvoice.backends.embedded import EmbeddedBackend

    session_id = session_id or new_session_id()
    return EmbeddedBackend(
        loaded,
        modality=modality,
        model=model,
        session_service=session_service,
        store_label=store_label,
        user_id=user_id,
        session_id=session_id,
        endpoint_label=endpoint_label,
        manual_activity=manual_activity,
        handles=HandleStore(handles_dir) if handles_dir is not None else None,
        handle_key=conversation_key(
            model=model or "",
            store=store_label,
            app=loaded.app_name,
            user=user_id,
            session=session_id,
        ),
        context_compression=context_compression,
        live=live,
    )
