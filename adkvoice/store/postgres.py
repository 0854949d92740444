"""Conversations in PostgreSQL: ADK's DatabaseSessionService (SQLAlchemy + asyncpg), with
failures turned into one line a user can act on and the password never shown.

Imported only for `--sessions postgresql://…`: it needs the `postgres` extra
(`pip install "adkvoice[postgres]"`: SQLAlchemy's asyncio extension and asyncpg).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.base_session_service import GetSessionConfig, ListSessionsResponse
from google.adk.sessions.database_session_service import DatabaseSessionService
from google.adk.sessions.session import Session
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from adkvoice.errors import BackendError
from adkvoice.store.appends import finish_even_if_cancelled

CONNECT_TIMEOUT_S = 10.0  # asyncpg waits 60 s by default for a host that does not answer
SCHEMA_LOCK_KEY = 0x61646B766F696365  # "adkvoice": the advisory lock for creating tables
# SQLSTATE classes (https://www.postgresql.org/docs/current/errcodes-appendix.html) that
# mean the settings in the URL are wrong, not that the server is having a moment.
_SETTINGS_SQLSTATES = {
    "28000": "check the user name in --sessions",
    "28P01": "check the user and password in --sessions",
    "3D000": "create the database (createdb) or fix its name in --sessions",
}


def store_error(exc: BaseException, label: str) -> BackendError | None:
    """The one-line error for a failure talking to PostgreSQL, or None if `exc` is not one.

    `label` is the store URL with its password already hidden."""
    if isinstance(exc, DBAPIError):
        orig = exc.orig if exc.orig is not None else exc
        message = str(orig).splitlines()[0] if str(orig) else type(orig).__name__
        sqlstate = getattr(orig, "sqlstate", None)
        hint = _SETTINGS_SQLSTATES.get(sqlstate or "")
        if hint is not None:
            return BackendError(f"PostgreSQL at {label} refused: {message} ({hint})")
        if exc.connection_invalidated or sqlstate is None:
            return BackendError(f"lost the connection to PostgreSQL at {label}: {message}")
        return BackendError(f"PostgreSQL at {label} failed: {message}")
    if isinstance(exc, socket.gaierror):
        return BackendError(f"cannot reach PostgreSQL at {label}: unknown host")
    if isinstance(exc, ConnectionRefusedError):
        return BackendError(
            f"cannot reach PostgreSQL at {label}: connection refused (is it running, "
            "and listening on that address and port?)"
        )
    if isinstance(exc, TimeoutError):
        return BackendError(f"cannot reach PostgreSQL at {label}: no answer within the timeout")
    if isinstance(exc, OSError):
        return BackendError(f"cannot reach PostgreSQL at {label}: {exc.strerror or exc}")
    return None


class _AlreadyReported(logging.Filter):
    """ADK logs the connection failure it then raises; adkvoice reports it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to inspect database tables")


_ADK_LOG = logging.getLogger("google_adk.google.adk.sessions.database_session_service")


class PostgresSessionService(DatabaseSessionService):
    """DatabaseSessionService whose connection and login failures are `BackendError`s
    naming the store (`label`, password hidden) instead of driver tracebacks."""

    def __init__(self, url: str, *, label: str, **engine_options: Any) -> None:
        engine_options.setdefault("connect_args", {"timeout": CONNECT_TIMEOUT_S})
        super().__init__(url, **engine_options)
        self.label = label
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        if not any(isinstance(f, _AlreadyReported) for f in _ADK_LOG.filters):
            _ADK_LOG.addFilter(_AlreadyReported())

    @contextlib.asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            error = store_error(exc, self.label)
            if error is None:
                raise
            raise error from exc

    async def prepare_tables(self) -> None:
        if self._schema_ready:
            await super().prepare_tables()  # returns at once
            return
        async with self._schema_lock, self._translated():
            if self._schema_ready:
                return
            # Instances started together on an empty database would race to create the
            # tables, and one could read the schema before the other has recorded its
            # version. A transaction-scoped advisory lock makes them take turns.
            async with self.db_engine.begin() as connection:
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY}
                )
                await super().prepare_tables()
            self._schema_ready = True

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        async with self._translated():
            return await super().create_session(
                app_name=app_name, user_id=user_id, state=state, session_id=session_id
            )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        async with self._translated():
            return await super().get_session(
                app_name=app_name, user_id=user_id, session_id=session_id, config=config
            )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        async with self._translated():
            return await super().list_sessions(app_name=app_name, user_id=user_id)

    async def delete_session(self, app_name: str, user_id: str, session_id: str) -> None:
        async with self._translated():
            await super().delete_session(app_name, user_id, session_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        # Finished even when the caller is cancelled (store/appends.py).
        async with self._translated():
            return await finish_even_if_cancelled(super().append_event(session, event))
