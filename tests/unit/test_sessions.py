"""Session stores from --sessions values, and summaries of real ADK sessions."""

import errno
import sqlite3
from pathlib import Path

import pytest
from google.adk.events.event import Event
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.sqlite_session_service import SqliteSessionService
from google.genai import types

from adkvoice.errors import ConfigError, StoreError
from adkvoice.store.sessions import (
    default_store_path,
    latest_session_id,
    list_summaries,
    open_store,
    redact,
    store_failure,
)
from tests.read_only import read_only


def test_store_specs(tmp_path: Path) -> None:
    assert isinstance(open_store("memory").service, InMemorySessionService)
    default = open_store(None)
    assert isinstance(default.service, SqliteSessionService)
    assert default.label == str(default_store_path())
    assert str(default_store_path()).startswith(str(tmp_path))  # XDG_DATA_HOME is honoured
    file_store = open_store(str(tmp_path / "a" / "chats.db"))
    assert file_store.label == str(tmp_path / "a" / "chats.db")
    assert (tmp_path / "a").is_dir()
    url_store = open_store(f"sqlite:///{tmp_path}/b.db")
    assert url_store.label == f"{tmp_path}/b.db"


def test_a_store_under_a_regular_file_is_one_line_with_its_own_exit_code(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "adkvoice" / "sessions.db"
    with pytest.raises(StoreError) as caught:
        open_store(str(path))
    assert caught.value.exit_code == 11
    assert str(caught.value) == (
        f"cannot write the conversation store {path}: not a directory; "
        "pass --sessions memory or fix the permissions"
    )


async def test_a_read_only_store_is_refused_for_writing_but_can_be_read(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sessions.db"
    store = open_store(str(path))
    await store.service.create_session(app_name="a", user_id="u", session_id="s")
    with read_only(path.parent, path):
        with pytest.raises(StoreError) as caught:
            open_store(str(path))
        assert str(caught.value).startswith(f"cannot write the conversation store {path}: ")
        reader = open_store(str(path), write=False)
        listed = await reader.service.list_sessions(app_name="a", user_id="u")
    assert [s.id for s in listed.sessions] == ["s"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.db"]  # no leftovers


def test_store_failures_say_what_to_do() -> None:
    full = store_failure("/d/s.db", sqlite3.OperationalError("database or disk is full"))
    assert str(full) == (
        "cannot write the conversation store /d/s.db: database or disk is full; "
        "pass --sessions memory or free some space"
    )
    no_space = store_failure("/d/s.db", OSError(errno.ENOSPC, "No space left on device"))
    assert no_space is not None
    assert "no space left on device; pass --sessions memory or free some space" in str(no_space)
    assert store_failure("/d/s.db", ValueError("a bug")) is None


def test_unsupported_store_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match="unsupported store 'mysql'"):
        open_store("mysql://db/x")


def test_passwords_are_never_printed() -> None:
    assert redact("postgresql://bob:s3cret@db:5432/adk") == "postgresql://bob:***@db:5432/adk"
    assert redact("/tmp/x.db") == "/tmp/x.db"


def _user(text: str, ts: float) -> Event:
    return Event(
        author="user",
        invocation_id="i",
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=text)]),
    )


def _agent(text: str, ts: float) -> Event:
    return Event(
        author="assistant",
        invocation_id="i",
        timestamp=ts,
        content=types.Content(role="model", parts=[types.Part(text=text)]),
    )


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_summaries_newest_first(kind: str, tmp_path: Path) -> None:
    service = open_store("memory" if kind == "memory" else str(tmp_path / "s.db")).service
    older = await service.create_session(app_name="app", user_id="u", session_id="older")
    await service.append_event(older, _user("first question\nsecond line", 100.0))
    await service.append_event(older, _agent("answer", 101.0))
    newer = await service.create_session(app_name="app", user_id="u", session_id="newer")
    await service.append_event(newer, _user("hello", 200.0))
    spoken = Event(
        author="user",
        invocation_id="i",
        timestamp=201.0,
        input_transcription=types.Transcription(text="spoken words", finished=True),
    )
    await service.append_event(newer, spoken)
    summaries = await list_summaries(service, "app", "u")
    assert [s.session_id for s in summaries] == ["newer", "older"]
    assert summaries[0].turns == 2
    assert summaries[1].turns == 1
    assert summaries[1].first_line == "first question"
    assert await latest_session_id(service, "app", "u") == "newer"
    assert await latest_session_id(service, "other-app", "u") is None


def test_a_percent_encoded_password_is_hidden_too() -> None:
    assert redact("postgresql://bob:p%40ss@db/adk") == "postgresql://bob:***@db/adk"
    assert redact("postgresql://bob@db/adk") == "postgresql://bob@db/adk"


def test_a_postgres_url_with_a_bad_port_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match=r"the port in postgresql://bob:\*\*\*@db:x/adk"):
        open_store("postgresql://bob:s3cret@db:x/adk")
