"""`SqliteStore`: ADK's SQLite session service on one connection per event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiosqlite
import pytest
from google.adk.events.event import Event
from google.adk.sessions import sqlite_session_service as adk_sqlite
from google.genai import types

from adkvoice.store.sqlite import SqliteSessions, SqliteStore


def _event(text: str) -> Event:
    return Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)]))


def _count_connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = aiosqlite.connect

    def counting(*args: object, **kwargs: object) -> aiosqlite.Connection:
        opened.append(str(args[0]))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosqlite, "connect", counting)
    monkeypatch.setattr(adk_sqlite.aiosqlite, "connect", counting)
    return opened


async def test_appends_share_one_connection_and_are_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _count_connects(monkeypatch)
    path = tmp_path / "s.db"
    store = SqliteStore(str(path))
    session = await store.create_session(app_name="a", user_id="u", session_id="s1")
    for n in range(20):
        await store.append_event(session, _event(f"turn {n}"))
    assert len(opened) == 1  # ADK alone opens one per operation: 21 here
    await store.close()
    # Committed: a fresh service (ADK's own) reads every event back.
    again = await adk_sqlite.SqliteSessionService(str(path)).get_session(
        app_name="a", user_id="u", session_id="s1"
    )
    assert again is not None
    assert [e.content.parts[0].text for e in again.events if e.content and e.content.parts] == [
        f"turn {n}" for n in range(20)
    ]


async def test_concurrent_sessions_do_not_interleave(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    sessions = [
        await store.create_session(app_name="a", user_id="u", session_id=f"s{i}") for i in range(4)
    ]

    async def talk(session: object, n: int) -> None:
        for turn in range(10):
            await store.append_event(session, _event(f"{n}:{turn}"))  # type: ignore[arg-type]

    await asyncio.gather(*(talk(s, i) for i, s in enumerate(sessions)))
    for i in range(4):
        loaded = await store.get_session(app_name="a", user_id="u", session_id=f"s{i}")
        assert loaded is not None
        assert len(loaded.events) == 10
    await store.close()


async def test_a_failed_operation_is_rolled_back_and_the_store_goes_on(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    session = await store.create_session(app_name="a", user_id="u", session_id="s1")

    async def delete_then_fail() -> None:
        async with store._get_db_connection() as db:
            await db.execute("DELETE FROM sessions")
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await delete_then_fail()
    await store.append_event(session, _event("still here"))
    loaded = await store.get_session(app_name="a", user_id="u", session_id="s1")
    assert loaded is not None  # the delete was rolled back
    assert len(loaded.events) == 1
    await store.close()


def test_a_second_event_loop_gets_its_own_connection(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    asyncio.run(store.create_session(app_name="a", user_id="u", session_id="s1"))

    async def read_and_close() -> object:
        found = await store.get_session(app_name="a", user_id="u", session_id="s1")
        await store.close()
        return found

    assert asyncio.run(read_and_close()) is not None


@pytest.mark.parametrize("long_lived", [False, True])
async def test_an_append_cancelled_after_its_commit_leaves_the_session_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, long_lived: bool
) -> None:
    """ADK cancels its sending task when a live connection ends; an append cut off after
    its commit must not leave the session stale for every later append."""
    service = (SqliteStore if long_lived else SqliteSessions)(str(tmp_path / "s.db"))
    session = await service.create_session(app_name="a", user_id="u", session_id="s1")
    committed, go_on = asyncio.Event(), asyncio.Event()
    real_commit = aiosqlite.Connection.commit

    async def commit_then_wait(self: aiosqlite.Connection) -> None:
        await real_commit(self)
        committed.set()
        await go_on.wait()  # the caller is cancelled here: storage has the event

    monkeypatch.setattr(aiosqlite.Connection, "commit", commit_then_wait)
    append = asyncio.create_task(service.append_event(session, _event("cut off")))
    await committed.wait()
    append.cancel()
    await asyncio.sleep(0.01)
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await append
    monkeypatch.setattr(aiosqlite.Connection, "commit", real_commit)
    await service.append_event(session, _event("next"))  # ADK alone: StaleSessionError
    stored = await service.get_session(app_name="a", user_id="u", session_id="s1")
    assert stored is not None
    assert [e.content.parts[0].text for e in stored.events if e.content and e.content.parts] == [
        "cut off",
        "next",
    ]
    if isinstance(service, SqliteStore):
        await service.close()
