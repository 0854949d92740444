"""Where conversations are kept: ADK session services from a `--sessions` URL, and
summaries of past conversations for `adkvoice sessions` and `--resume`.

`--sessions` takes:
- nothing: a SQLite file in the user's data directory, so `adkvoice chat` remembers;
- `memory`: nothing is kept after the process ends;
- a path or `sqlite:///path/to/file.db`: that SQLite file;
- `postgresql://user:pass@host:port/db` (or `postgresql+asyncpg://…`): PostgreSQL through
  ADK's DatabaseSessionService (needs `pip install "adkvoice[postgres]"`); several
  `adkvoice serve` instances can share one.
"""

from __future__ import annotations

import datetime as dt
import errno
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from adkvoice.errors import ConfigError, StoreError
from adkvoice.redaction import redact as redact_secrets

if TYPE_CHECKING:
    from google.adk.sessions.base_session_service import BaseSessionService
    from google.adk.sessions.session import Session

MEMORY = "memory"


def new_session_id() -> str:
    """An id for a new conversation."""
    return f"adkvoice-{uuid.uuid4().hex[:12]}"


def default_store_path() -> Path:
    import platformdirs

    return platformdirs.user_data_path("adkvoice") / "sessions.db"


def redact(url: str) -> str:
    """The store URL as it may be printed: any password replaced by ***."""
    return redact_secrets(url)


@dataclass(frozen=True)
class SessionStore:
    service: BaseSessionService
    label: str  # safe to print


def open_store(spec: str | None, *, write: bool = True, long_lived: bool = False) -> SessionStore:
    """Build the session service a `--sessions` value names; with `write`, a SQLite file
    that cannot be written is a `StoreError` now rather than at the conversation's first
    turn. `long_lived`: a SQLite file keeps one connection (`store.sqlite`) that the caller
    closes with `close_store`."""
    from google.adk.sessions.in_memory_session_service import InMemorySessionService

    if spec is not None and spec.strip().lower() == MEMORY:
        return SessionStore(InMemorySessionService(), "memory (not kept)")
    if spec is not None and spec.startswith(("postgresql:", "postgresql+", "postgres:")):
        return _postgres(spec)
    if spec is not None and "://" in spec and not spec.startswith("sqlite:"):
        scheme = spec.split("://", 1)[0]
        raise ConfigError(
            f"--sessions: unsupported store {scheme!r}; use memory, a SQLite file path, "
            "sqlite:///path.db or postgresql://…"
        )
    path = default_store_path() if spec is None else Path(_sqlite_path(spec)).expanduser()
    if not write and not path.exists():
        # Nothing stored yet: reading must not create the file (nor fail where it cannot).
        return SessionStore(InMemorySessionService(), str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if write:
            _check_writable(path)
    except OSError as exc:
        raise store_failure(str(path), exc) or exc from None
    from adkvoice.store.sqlite import SqliteSessions, SqliteStore

    try:
        if long_lived:
            return SessionStore(SqliteStore(str(path)), str(path))
        return SessionStore(SqliteSessions(str(path)), str(path))
    except RuntimeError as exc:  # an old schema that needs ADK's migration
        raise ConfigError(f"--sessions: {str(exc).splitlines()[0]}") from None


async def close_store(store: SessionStore) -> None:
    """Close what a long-lived store holds open (nothing for the others)."""
    from adkvoice.store.sqlite import SqliteStore

    if isinstance(store.service, SqliteStore):
        await store.service.close()


def _check_writable(path: Path) -> None:
    """Raise the OSError SQLite would meet writing `path`: it writes the file and, for
    its journal, creates files next to it. Nothing is left behind."""
    with tempfile.TemporaryFile(dir=path.parent):
        pass
    if path.exists():
        with path.open("r+b"):
            pass


def store_failure(label: str, exc: BaseException) -> StoreError | None:
    """The one line for a file system or SQLite error met opening or writing the store at
    `label`; None for any other error."""
    if isinstance(exc, OSError):
        reason = (exc.strerror or str(exc)).lower()
    elif isinstance(exc, sqlite3.Error):
        reason = str(exc)
    else:
        return None
    full = (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "full" in reason
    fix = "free some space" if full else "fix the permissions"
    return StoreError(
        f"cannot write the conversation store {label}: {reason}; pass --sessions memory or {fix}"
    )


def _sqlite_path(spec: str) -> str:
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if spec.startswith(prefix):
            return spec[len(prefix) :]
    return spec


def _postgres(url: str) -> SessionStore:
    import importlib.util

    install = 'pip install "adkvoice[postgres]"'
    scheme, rest = url.split("://", 1)
    driver = scheme.partition("+")[2] or "asyncpg"
    for module in ("sqlalchemy", driver):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"--sessions postgresql needs {module}: {install}")
    from adkvoice.store.postgres import PostgresSessionService

    label = redact(url)
    try:
        urlsplit(url).port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ConfigError(f"--sessions: the port in {label} is not a number") from None
    try:
        service = PostgresSessionService(f"postgresql+{driver}://{rest}", label=label)
    except Exception as exc:  # a malformed URL: ADK's message already hides the password
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"--sessions: cannot use {label}: {reason}") from None
    return SessionStore(service, label)


async def prepare_store(service: BaseSessionService) -> None:
    """Connect to a database store and create its tables now, so that a server whose
    database is unreachable or misconfigured fails at startup, not at the first
    conversation. Raises `BackendError` (PostgreSQL); other stores need nothing."""
    from google.adk.sessions.database_session_service import DatabaseSessionService

    if isinstance(service, DatabaseSessionService):
        await service.prepare_tables()


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    user_id: str
    updated: dt.datetime
    turns: int
    first_line: str


def summarize(session: Session) -> SessionSummary:
    """Turns are the user's typed or spoken messages; the first line is the first of them."""
    turns = 0
    first = ""
    for event in session.events:
        text = _user_text(event)
        if text:
            turns += 1
            first = first or text
    return SessionSummary(
        session_id=session.id,
        user_id=session.user_id,
        updated=dt.datetime.fromtimestamp(session.last_update_time).astimezone(),
        turns=turns,
        first_line=first.splitlines()[0] if first else "",
    )


def _user_text(event: object) -> str:
    from google.adk.events.event import Event

    if not isinstance(event, Event):
        return ""
    if event.author == "user" and event.content and event.content.parts:
        return " ".join(p.text for p in event.content.parts if p.text).strip()
    if event.input_transcription and event.input_transcription.finished:
        return (event.input_transcription.text or "").strip()
    return ""


async def list_summaries(
    service: BaseSessionService, app_name: str, user_id: str
) -> list[SessionSummary]:
    """Past conversations with this agent, newest first."""
    listed = await service.list_sessions(app_name=app_name, user_id=user_id)
    summaries = []
    for brief in listed.sessions:
        session = await service.get_session(app_name=app_name, user_id=user_id, session_id=brief.id)
        if session is not None:
            summaries.append(summarize(session))
    summaries.sort(key=lambda s: s.updated, reverse=True)
    return summaries


async def latest_session_id(service: BaseSessionService, app_name: str, user_id: str) -> str | None:
    listed = await service.list_sessions(app_name=app_name, user_id=user_id)
    if not listed.sessions:
        return None
    return max(listed.sessions, key=lambda s: s.last_update_time).id
