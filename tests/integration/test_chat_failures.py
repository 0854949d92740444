"""How `adkvoice chat` ends when things go wrong: one line, a distinct exit code.

Faults are triggered the way a user would, by typing the emulator's fault phrases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.conftest import RunCli, clean_env, read_exports

pytestmark = pytest.mark.integration


def _error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("adkvoice:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("emulator fault drop", "dropped without a close frame"),
        ("emulator fault close", "internal error"),
        ("emulator fault malformed", "malformed message"),
    ],
)
def test_connection_failures(run_cli: RunCli, phrase: str, expected: str) -> None:
    result = run_cli(["chat", "--text"], stdin=f"{phrase}\nhello\n")
    assert result.returncode == 6, result.stderr
    assert expected in _error_line(result.stderr)


def test_timeout_bounds_a_turn(run_cli: RunCli) -> None:
    started = time.monotonic()
    result = run_cli(["chat", "--text", "--timeout", "1"], stdin="emulator fault delay\n")
    assert result.returncode == 8, result.stderr
    assert "within 1 s (--timeout)" in _error_line(result.stderr)
    assert time.monotonic() - started < 5  # the 5 s delay was not waited out


@contextmanager
def _chat_after(line: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A piped `adkvoice chat --text` that has answered `line`; killed on exit."""
    with subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "chat", "--text"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        try:
            yield proc, proc.stdout.readline()
        finally:
            proc.kill()


def test_go_away_is_survived_with_resumption() -> None:
    """After goAway ADK reconnects with the latest handle and the conversation carries on.

    The next turns are typed at once, while ADK reconnects: a turn the old connection
    took and lost is sent again, so none goes unanswered.
    """
    with _chat_after("emulator fault go away") as (proc, first_reply):
        assert "recycled" in first_reply
        rest, stderr = proc.communicate("hello\nwhat did I say?\n", timeout=30)
    assert proc.returncode == 0, stderr
    replies = rest.splitlines()
    assert len(replies) == 2, rest
    assert replies[1] == "Before that you said: hello"  # history survived the reconnect
    assert "reconnected to the model (resumed)" in stderr


def test_a_message_that_keeps_breaking_the_connection_is_given_up() -> None:
    """A reply cut by a 1011 close is asked for again; a message that breaks the
    connection every time is not repeated forever."""
    with _chat_after("hello") as (proc, _):
        assert proc.stdin is not None
        proc.stdin.write("emulator fault close\n")
        proc.stdin.flush()
        time.sleep(0.5)
        _, stderr = proc.communicate("what did I say?\n", timeout=60)
    # The fault phrase breaks the connection every time it is sent: after three tries
    # the client stops repeating it and says so.
    assert proc.returncode == 6, stderr
    assert "asking again" in stderr
    assert "no complete reply in 3 attempts" in _error_line(stderr)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_end_the_session_cleanly(sig: signal.Signals, code: int) -> None:
    with _chat_after("hello") as (proc, first_reply):
        assert first_reply.strip()  # the session is live
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr


def test_standalone_emulator_serves_any_adk_app(run_cli: RunCli) -> None:
    """`adkvoice emulator` prints the variables that point an ADK app at it; an app run
    with them (here adkvoice itself, forced to the Gemini path) talks to it."""
    with subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as server:
        try:
            assert server.stdout is not None
            exports = read_exports(server.stdout)
            assert set(exports) >= {"GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE"}
            assert os.path.exists(exports["SSL_CERT_FILE"])
            result = run_cli(
                ["chat", "--text", "--backend", "gemini"], stdin="hello\n", env=exports
            )
            assert result.returncode == 0, result.stderr
            assert "emulator" in result.stdout.lower()  # the emulator's greeting
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=10)
            finally:
                server.kill()
    assert server.returncode == 0
