"""A live run keeps only its newest events in memory; the store keeps them all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from google.adk.events.event import Event
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from adkvoice.errors import StoreError
from adkvoice.store.session_window import SessionWindow


async def test_the_runs_session_is_trimmed_and_the_store_keeps_everything(tmp_path: Path) -> None:
    window = SessionWindow(SqliteSessionService(str(tmp_path / "s.db")), keep_events=3)
    session = await window.create_session(app_name="a", user_id="u", session_id="s")
    for n in range(10):
        content = types.Content(role="user", parts=[types.Part(text=f"turn {n}")])
        await window.append_event(session, Event(author="user", content=content))
    assert [e.content.parts[0].text for e in session.events if e.content and e.content.parts] == [
        "turn 7",
        "turn 8",
        "turn 9",
    ]
    stored = await window.get_session(app_name="a", user_id="u", session_id="s")
    assert stored is not None
    assert len(stored.events) == 10
    listed = await window.list_sessions(app_name="a", user_id="u")
    assert [s.id for s in listed.sessions] == ["s"]
    await window.delete_session(app_name="a", user_id="u", session_id="s")
    assert await window.get_session(app_name="a", user_id="u", session_id="s") is None


class FullDisk(InMemorySessionService):
    async def append_event(self, session: Session, event: Event) -> Event:
        raise sqlite3.OperationalError("database or disk is full")


async def test_a_failed_append_is_one_line_and_its_owner_hears_of_it() -> None:
    heard: list[Exception] = []
    window = SessionWindow(FullDisk(), label="/data/sessions.db", on_write_error=heard.append)
    session = await window.create_session(app_name="a", user_id="u", session_id="s")
    content = types.Content(role="user", parts=[types.Part(text="hello")])
    with pytest.raises(StoreError) as caught:
        await window.append_event(session, Event(author="user", content=content))
    assert str(caught.value) == (
        "cannot write the conversation store /data/sessions.db: database or disk is full; "
        "pass --sessions memory or free some space"
    )
    assert heard == [caught.value]


class StaleSession(InMemorySessionService):
    async def append_event(self, session: Session, event: Event) -> Event:
        from google.adk.errors._stale_session_error import StaleSessionError

        raise StaleSessionError("the session object is older than the store's")


async def test_an_append_refused_for_another_reason_is_left_to_adk() -> None:
    """ADK's stale-session check is not a disk the user must fix: it propagates as it is
    (ADK's flow ends that run_live and a new one reloads the session), and the owner is
    not told to end the conversation."""
    from google.adk.errors._stale_session_error import StaleSessionError

    heard: list[Exception] = []
    window = SessionWindow(StaleSession(), label="/data/sessions.db", on_write_error=heard.append)
    session = await window.create_session(app_name="a", user_id="u", session_id="s")
    content = types.Content(role="user", parts=[types.Part(text="hello")])
    with pytest.raises(StaleSessionError):
        await window.append_event(session, Event(author="user", content=content))
    assert heard == []
