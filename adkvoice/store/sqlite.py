"""ADK's SQLite session service, with appends that finish (`SqliteSessions`), and on one
long-lived connection (`SqliteStore`).

ADK's `SqliteSessionService` opens a new connection for every read and every appended
event of a file database (an aiosqlite thread, the file, a PRAGMA), on the path before the
event reaches the user: at 32 real-time sessions that was 19 % of `serve`'s CPU and most of
its downlink latency tail (`bench/profile_split.py`). It keeps one connection only for
`:memory:`. `SqliteStore` keeps one for a file too, the way ADK's memory branch does:
statements of one operation run under a lock, so operations never interleave, and a
failed one is rolled back. Every append is still committed before it returns, so what a
crash may lose is unchanged.

The connection belongs to the event loop that opened it; a later loop (a command that runs
`asyncio.run` twice) opens its own. If the connection breaks, the next operation opens a
new one. Its owner closes it (`close()`): `serve` does, at shutdown; a single conversation
gains nothing from it, so chat and talk use ADK's service as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions import sqlite_session_service as adk_sqlite
from google.adk.sessions.session import Session

from adkvoice.store.appends import finish_even_if_cancelled


class SqliteSessions(adk_sqlite.SqliteSessionService):
    """ADK's SQLite session service whose appends finish even when the caller is
    cancelled (store/appends.py: otherwise the session can go stale mid-conversation)."""

    async def append_event(self, session: Session, event: Event) -> Event:
        return await finish_even_if_cancelled(super().append_event(session, event))


class SqliteStore(SqliteSessions):
    def __init__(self, db_path: str) -> None:
        super().__init__(db_path)
        self._conn: Any = None  # aiosqlite.Connection once opened
        self._conn_loop: asyncio.AbstractEventLoop | None = None
        self._conn_lock: asyncio.Lock | None = None
        # Connections of loops that have ended: told to stop, and kept referenced until
        # their thread has closed them (collected open, aiosqlite warns).
        self._retired: list[Any] = []

    @contextlib.asynccontextmanager
    async def _get_db_connection(self) -> AsyncIterator[Any]:
        if self._db_path in ("", ":memory:"):
            async with super()._get_db_connection() as db:
                yield db
            return
        loop = asyncio.get_running_loop()
        if self._conn_loop is not loop:
            if self._conn is not None:
                self._conn.stop()
                self._retired.append(self._conn)
            self._conn, self._conn_loop, self._conn_lock = None, loop, asyncio.Lock()
        assert self._conn_lock is not None
        async with self._conn_lock:
            if self._conn is None:
                self._conn = await self._connect()
            try:
                yield self._conn
            except BaseException:
                try:
                    await self._conn.rollback()
                except Exception:
                    await self._drop_connection()  # broken: the next operation reopens
                raise

    async def _connect(self) -> Any:
        import aiosqlite

        conn = aiosqlite.connect(self._db_connect_path, uri=self._db_connect_uri)
        # A daemon thread, as ADK's own long-lived connection: exiting never waits on it.
        thread: Any = getattr(conn, "_thread", conn)
        thread.daemon = True
        await conn
        try:
            conn.row_factory = aiosqlite.Row
            await conn.execute(adk_sqlite.PRAGMA_FOREIGN_KEYS)
            if not self._schema_ready:
                await conn.executescript(adk_sqlite.CREATE_SCHEMA_SQL)
                self._schema_ready = True
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        if self._conn is not None and self._conn_loop is asyncio.get_running_loop():
            await self._drop_connection()
        await super().close()
