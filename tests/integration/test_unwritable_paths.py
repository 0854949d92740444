"""Paths that cannot be written end a command with one line, before anything starts: the
conversation store (exit 11, also at once when a write fails mid-conversation) and the
`talk --record` directory (exit 2, before any audio device opens)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import wave
from pathlib import Path

import pytest
from google.adk.agents.llm_agent import Agent
from google.adk.events.event import Event as AdkEvent
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session

from adkvoice.agents.loading import LoadedAgent
from adkvoice.backends.embedded import EmbeddedBackend
from adkvoice.errors import StoreError
from adkvoice.events import AnswerComplete, Event
from tests.integration.conftest import RunCli
from tests.integration.emulator_support import MODEL_3X, running_emulator
from tests.read_only import read_only

pytestmark = pytest.mark.integration

STORE_ERROR = 11


def _the_one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("adkvoice:")]
    assert len(lines) == 1, stderr
    return lines[0]


def _ends_with_the_store_error(run_cli: RunCli, args: list[str], env: dict[str, str]) -> str:
    started = time.monotonic()
    result = run_cli(["chat", "--text", "--timeout", "20", *args], stdin="hello\n", env=env)
    assert result.returncode == STORE_ERROR, result.stderr
    assert time.monotonic() - started < 15  # the one line, not the --timeout
    return _the_one_line(result.stderr)


@pytest.mark.parametrize("args", [[], ["--resume"]])
def test_a_data_directory_under_a_regular_file(
    run_cli: RunCli, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "file").write_text("")
    env = {"XDG_DATA_HOME": str(tmp_path / "file")}
    line = _ends_with_the_store_error(run_cli, args, env)
    assert line == (
        f"adkvoice: cannot write the conversation store {tmp_path}/file/adkvoice/sessions.db: "
        "not a directory; pass --sessions memory or fix the permissions"
    )


def test_a_read_only_data_directory(run_cli: RunCli, tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    first = run_cli(["chat", "--text"], stdin="hello\n", env=env)
    assert first.returncode == 0, first.stderr
    store = tmp_path / "data" / "adkvoice" / "sessions.db"
    with read_only(store.parent, store):
        for args in (["--resume"], []):
            line = _ends_with_the_store_error(run_cli, args, env)
            assert line.startswith(f"adkvoice: cannot write the conversation store {store}: ")
            assert line.endswith("; pass --sessions memory or fix the permissions")
        listed = run_cli(["sessions", "list"], env=env)  # reading it still works
        assert listed.returncode == 0, listed.stderr
        assert "hello" in listed.stdout
        served = run_cli(["serve", "--port", "0"], env=env)
        assert served.returncode == STORE_ERROR, served.stderr
        assert str(store) in _the_one_line(served.stderr)


def test_listing_a_read_only_data_directory_with_no_store_yet(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Reading creates nothing: no conversations yet is an answer, not an error."""
    data = tmp_path / "data"
    (data / "adkvoice").mkdir(parents=True)
    with read_only(data / "adkvoice"):
        listed = run_cli(["sessions", "list"], env={"XDG_DATA_HOME": str(data)})
    assert listed.returncode == 0, listed.stderr
    assert "No conversations with" in listed.stdout
    assert not (data / "adkvoice" / "sessions.db").exists()


class DiskFillsUp(InMemorySessionService):
    """A store whose disk fills up once `full` is set."""

    full = False

    async def append_event(self, session: Session, event: AdkEvent) -> AdkEvent:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return await super().append_event(session, event)


async def test_a_write_failing_mid_conversation_ends_it_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = DiskFillsUp()
    async with running_emulator(monkeypatch):
        agent = Agent(name="store", model=MODEL_3X, instruction="You are a test agent.")
        backend = EmbeddedBackend(
            LoadedAgent(app_name="store", agent=agent, app=None, source="test"),
            modality="TEXT",
            session_service=store,
            store_label="/data/sessions.db",
        )
        await backend.start()
        seen: list[Event] = []

        async def consume() -> None:
            async for event in backend.events():
                seen.append(event)
                if isinstance(event, AnswerComplete):
                    store.full = True

        async def ask_again() -> None:
            async with asyncio.timeout(5):  # not the reply that can never come
                await backend.send_text("again")
                await consumer

        consumer = asyncio.create_task(consume())
        try:
            await backend.send_text("hello")
            async with asyncio.timeout(10):
                while not store.full:  # noqa: ASYNC110 - the first answer flips it
                    await asyncio.sleep(0.01)
            with pytest.raises(StoreError) as caught:
                await ask_again()
        finally:
            await backend.close()
            consumer.cancel()
    assert str(caught.value) == (
        "cannot write the conversation store /data/sessions.db: database or disk is full; "
        "pass --sessions memory or free some space"
    )


def _talk_recording_into(run_cli: RunCli, tmp_path: Path, directory: Path) -> str:
    speech = tmp_path / "in.wav"
    with wave.open(str(speech), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(b"\0\0" * 1600)
    result = run_cli(["talk", "--input-wav", str(speech), "--record", str(directory)])
    assert result.returncode == 2, result.stderr
    return _the_one_line(result.stderr)


def test_talk_recording_under_a_regular_file(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    line = _talk_recording_into(run_cli, tmp_path, tmp_path / "file" / "recordings")
    assert line == (
        f"adkvoice: --record: cannot write into {tmp_path}/file/recordings: not a directory; "
        "pick a directory you can write"
    )


def test_talk_recording_into_a_read_only_directory(run_cli: RunCli, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    with read_only(recordings):
        line = _talk_recording_into(run_cli, tmp_path, recordings)
    assert line.startswith(f"adkvoice: --record: cannot write into {recordings}: ")
    assert list(recordings.iterdir()) == []
