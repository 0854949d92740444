"""Conversations survive the process: --resume, --session, and `adkvoice sessions`."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import RunCli

pytestmark = pytest.mark.integration


def test_resume_continues_the_latest_conversation(run_cli: RunCli) -> None:
    first = run_cli(["chat", "--text"], stdin="my name is Bob\n")
    assert first.returncode == 0, first.stderr
    again = run_cli(["chat", "--text", "--resume"], stdin="what did I say?\n")
    assert again.returncode == 0, again.stderr
    assert "resuming conversation" in again.stderr
    # The model saw the earlier turn: the emulator's rule quotes the previous user turn.
    assert again.stdout.strip() == "Before that you said: my name is Bob"


def test_memory_store_forgets(run_cli: RunCli) -> None:
    run_cli(["chat", "--text", "--sessions", "memory"], stdin="my name is Bob\n")
    again = run_cli(["chat", "--text", "--sessions", "memory", "--resume"], stdin="hi\n")
    assert again.returncode == 0, again.stderr
    assert "no earlier conversation" in again.stderr


def test_list_show_delete(run_cli: RunCli) -> None:
    empty = run_cli(["sessions", "list"])
    assert empty.returncode == 0
    assert "No conversations" in empty.stdout
    chat = run_cli(["chat", "--text", "--session", "trip-plan"], stdin="hello\nwhat time is it?\n")
    assert chat.returncode == 0, chat.stderr
    listing = run_cli(["sessions", "list"], env={"COLUMNS": "200"})
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if "trip-plan" in line)
    assert re.search(r"\b2\b", row)  # two turns
    assert "hello" in row
    shown = run_cli(["sessions", "show", "trip-plan"], env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "you › what time is it?" in shown.stdout
    assert "⚙ get_current_time()" in shown.stdout
    deleted = run_cli(["sessions", "delete", "trip-plan"])
    assert deleted.returncode == 0
    missing = run_cli(["sessions", "show", "trip-plan"])
    assert missing.returncode == 2
    assert "sessions list" in missing.stderr
