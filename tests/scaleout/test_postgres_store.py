"""`--sessions postgresql://…` against a real PostgreSQL: conversations, `adkvoice sessions`,
instances sharing one database, and one-line errors that never show the password."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from google.adk.events.event import Event
from google.genai import types

from adkvoice.errors import BackendError
from adkvoice.store.postgres import PostgresSessionService
from adkvoice.store.sessions import latest_session_id, list_summaries, open_store, prepare_store
from tests.integration.conftest import RunCli
from tests.scaleout.stack import Postgres, free_port

pytestmark = pytest.mark.integration


def _fresh(postgres: Postgres) -> str:
    return postgres.create_database(f"t_{uuid.uuid4().hex[:10]}")


def _user(text: str, ts: float) -> Event:
    content = types.Content(role="user", parts=[types.Part(text=text)])
    return Event(author="user", invocation_id="i", timestamp=ts, content=content)


async def test_store_keeps_lists_and_deletes_conversations(postgres: Postgres) -> None:
    store = open_store(_fresh(postgres))
    assert isinstance(store.service, PostgresSessionService)
    assert store.label == re.sub(r":pw-\w+@", ":***@", store.label)
    service = store.service
    try:
        older = await service.create_session(app_name="app", user_id="u", session_id="older")
        await service.append_event(older, _user("first question", 100.0))
        newer = await service.create_session(app_name="app", user_id="u", session_id="newer")
        await service.append_event(newer, _user("hello", 200.0))
        await service.append_event(newer, _user("again", 201.0))
        summaries = await list_summaries(service, "app", "u")
        assert [(s.session_id, s.turns) for s in summaries] == [("newer", 2), ("older", 1)]
        assert await latest_session_id(service, "app", "u") == "newer"
        await service.delete_session(app_name="app", user_id="u", session_id="older")
        assert await service.get_session(app_name="app", user_id="u", session_id="older") is None
    finally:
        await service.close()


async def test_instances_starting_together_share_a_new_database(postgres: Postgres) -> None:
    """Both create the tables at once; neither fails."""
    url = _fresh(postgres)
    services = [open_store(url).service for _ in range(3)]
    try:
        await asyncio.gather(*(prepare_store(s) for s in services))
    finally:
        await asyncio.gather(
            *(s.close() for s in services if isinstance(s, PostgresSessionService))
        )


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("password", r"refused: password authentication failed .*check the user and password"),
        ("database", r"refused: database \"nope\" does not exist"),
        ("port", r"cannot reach PostgreSQL at .*: connection refused"),
    ],
)
async def test_store_failures_are_one_line_without_the_password(
    postgres: Postgres, problem: str, message: str
) -> None:
    url = {
        "password": postgres.url_with(password="not-it"),
        "database": postgres.url_with(database="nope"),
        "port": postgres.url.replace(f":{postgres.port}/", f":{free_port()}/"),
    }[problem]
    service = open_store(url).service
    try:
        with pytest.raises(BackendError, match=message) as caught:
            await prepare_store(service)
    finally:
        assert isinstance(service, PostgresSessionService)
        await service.close()
    text = str(caught.value)
    assert "\n" not in text
    assert "***@127.0.0.1" in text
    assert postgres.password not in text
    assert "not-it" not in text


def test_sessions_commands_on_postgres(postgres: Postgres, run_cli: RunCli) -> None:
    url = _fresh(postgres)
    chat = run_cli(
        ["chat", "--text", "--sessions", url, "--session", "trip-plan"],
        stdin="hello\nwhat time is it?\n",
    )
    assert chat.returncode == 0, chat.stderr
    wide = {"COLUMNS": "200"}
    listing = run_cli(["sessions", "list", "--sessions", url], env=wide)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "trip-plan" in line)
    assert re.search(r"\b2\b", row)  # two turns
    assert "hello" in row
    assert "***@127.0.0.1" in listing.stdout
    shown = run_cli(["sessions", "show", "trip-plan", "--sessions", url], env=wide)
    assert shown.returncode == 0, shown.stderr
    assert "you › what time is it?" in shown.stdout
    assert "⚙ get_current_time()" in shown.stdout
    deleted = run_cli(["sessions", "delete", "trip-plan", "--sessions", url])
    assert deleted.returncode == 0, deleted.stderr
    missing = run_cli(["sessions", "show", "trip-plan", "--sessions", url])
    assert missing.returncode == 2
    assert "sessions list" in missing.stderr
    for result in (chat, listing, shown, deleted, missing):
        assert postgres.password not in result.stdout + result.stderr


def test_serve_refuses_to_start_without_its_database(postgres: Postgres, run_cli: RunCli) -> None:
    """A load balancer must not route to an instance that cannot keep conversations."""
    bad = postgres.url_with(password="not-it")
    result = run_cli(["serve", "--port", str(free_port()), "--sessions", bad], timeout=60)
    assert result.returncode == 5
    lines = [line for line in result.stderr.splitlines() if line.startswith("adkvoice:")]
    assert lines == [
        f"adkvoice: PostgreSQL at {bad.replace(':not-it@', ':***@')} refused: password "
        'authentication failed for user "adkvoice" (check the user and password in --sessions)'
    ]
    assert "not-it" not in result.stderr
    assert "Traceback" not in result.stderr
