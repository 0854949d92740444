"""A live run keeps only its newest events in memory; the store keeps them all."""

from __future__ import annotations

from pathlib import Path

from google.adk.events.event import Event
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

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
