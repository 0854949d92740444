"""The deployment of deploy/: two `adkvoice serve` instances sharing PostgreSQL behind
nginx. A conversation outlives the instance that served it."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import RunCli
from tests.scaleout.stack import ChatClient, Stack, http_json

pytestmark = pytest.mark.integration


def _client_through_nginx(stack: Stack, client_dir: Path, prefix: str) -> tuple[str, ChatClient]:
    """A new conversation's id, and a piped `chat --url` holding it through nginx."""
    assert stack.nginx is not None
    session_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client = ChatClient(
        stack.nginx.ws_url(session_id),
        token=stack.token,
        log=stack.root / f"{session_id}.log",
        data_dir=client_dir,
    )
    return session_id, client


def _wait_until_the_user_turn_is_stored(stack: Stack, session_id: str) -> None:
    """Until PostgreSQL holds a user turn of the conversation (bounded)."""
    query = (
        f"SELECT count(*) FROM events WHERE session_id = '{session_id}' "
        "AND event_data->>'author' = 'user'"
    )
    deadline = time.monotonic() + 30
    while int(stack.postgres.sql(query) or 0) == 0:
        assert time.monotonic() < deadline, f"the user turn of {session_id} was never stored"
        time.sleep(0.1)


def _other(stack: Stack, name: str) -> str:
    return next(i.name for i in stack.instances if i.name != name)


def test_nginx_reaches_both_instances(stack: Stack) -> None:
    assert stack.nginx is not None
    seen: set[str] = set()
    # Bounded: after a test killed an instance, nginx skips it for its fail_timeout (10 s).
    deadline = time.monotonic() + 15
    while seen != {"a", "b"} and time.monotonic() < deadline:
        seen.add(http_json(f"{stack.nginx.url}/healthz")[1].get("instance", "?"))
        time.sleep(0.05)
    assert seen == {"a", "b"}
    status, ready = http_json(f"{stack.nginx.url}/readyz")
    assert status == 200
    assert ready["status"] == "ready"


def test_conversation_survives_kill_9_of_its_instance(
    stack: Stack, client_dir: Path, run_cli: RunCli
) -> None:
    session_id, client = _client_through_nginx(stack, client_dir, "failover")
    try:
        client.say("my name is Bob")
        assert client.reply() == "You said: my name is Bob"
        first = stack.serving()
        first.kill()

        # The emulator's rule quotes the user's turn before this one: the instance that
        # answers now has only PostgreSQL to learn it from.
        client.say("what did I say?")
        assert client.reply() == "Before that you said: my name is Bob"
        second = stack.serving()
        assert second.name == _other(stack, first.name)
        assert client.finish() == 0
        log = client.stderr()
        assert "connection lost" in log
        assert "reconnected; the conversation continues" in log
    finally:
        client.close()

    # Both turns are in PostgreSQL (serve keeps each conversation under its id as user).
    stored = stack.postgres.sql(f"SELECT count(*) FROM events WHERE session_id = '{session_id}'")
    assert int(stored) >= 4  # two user turns, two replies
    shown = run_cli(
        ["sessions", "show", session_id, "--user-id", session_id, "--sessions", stack.postgres.url],
        env={"COLUMNS": "200"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "you › my name is Bob" in shown.stdout
    # The model (gemini-3.8-live) speaks; the text replies were its transcript.
    assert "agent 🔊 You said: my name is Bob" in shown.stdout
    assert "you › what did I say?" in shown.stdout
    assert "agent 🔊 Before that you said: my name is Bob" in shown.stdout
    assert stack.postgres.password not in shown.stdout + shown.stderr


def test_conversation_moves_when_its_instance_drains(stack: Stack, client_dir: Path) -> None:
    """SIGTERM: the instance finishes the turn, closes with 1001; the client reconnects
    through nginx to the other instance, which continues the conversation."""
    _, client = _client_through_nginx(stack, client_dir, "drain")
    try:
        client.say("remember the blue door")
        assert client.reply() == "You said: remember the blue door"
        first = stack.serving()
        assert first.proc is not None
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=20) == 0

        client.say("what did I say?")
        assert client.reply() == "Before that you said: remember the blue door"
        assert stack.serving().name == _other(stack, first.name)
        assert client.finish() == 0
        assert "server is shutting down" in client.stderr()
    finally:
        client.close()


def test_a_reply_cut_mid_reply_by_the_kill_is_answered_once_by_the_other_instance(
    stack: Stack, client_dir: Path
) -> None:
    """Killed mid-reply: the other instance replays the stored conversation, which ends
    with the user's turn, and answers it; the client shows the cut, then the whole answer,
    and does not send the turn twice."""
    session_id, client = _client_through_nginx(stack, client_dir, "midreply")
    whole = (
        "This reply comes through a slow connection, one piece at a time, each one held "
        "back half a second."
    )
    try:
        client.say("emulator fault slow")  # seven chunks, 0.5 s apart
        # Killed before the instance stored the turn, the turn is rightly sent again: wait
        # until it is stored (ADK stores a typed turn just before sending it to the model).
        _wait_until_the_user_turn_is_stored(stack, session_id)
        time.sleep(1.0)  # the reply is under way; most of it is still to come
        first = stack.serving()
        first.kill()
        line = client.reply(timeout_s=60)
        # The cut is marked when part of the reply had arrived (on a slow machine the kill
        # can come first); either way one whole answer follows, on the same line.
        assert line.rpartition("… ")[2] == whole, client.stderr()
        client.say("what did I say?")
        assert client.reply() == "Before that you said: emulator fault slow"
        assert client.finish() == 0
        log = client.stderr()
        assert "sending your last message again" not in log
    finally:
        client.close()
