"""`adkvoice chat --url`: a remote agent over `adkvoice serve` and over `adk api_server`."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.integration.conftest import RunCli, clean_env

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, deadline_s: float = 40) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@contextlib.contextmanager
def _serve(port: int, sessions: Path) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adkvoice",
            "serve",
            "--port",
            str(port),
            "--sessions",
            str(sessions),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz")
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            finally:
                proc.kill()


def _read_line(stream: IO[str], timeout_s: float = 30) -> str:
    # Lines arrive promptly or the test fails on the subprocess timeout below.
    del timeout_s
    return stream.readline()


def test_chat_over_serve_survives_a_server_restart(tmp_path: Path) -> None:
    port = _free_port()
    store = tmp_path / "sessions.db"
    url = f"ws://127.0.0.1:{port}/ws/trip"
    with _serve(port, store):
        chat = subprocess.Popen(
            [sys.executable, "-m", "adkvoice", "chat", "--text", "--url", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        assert chat.stdin is not None
        assert chat.stdout is not None
        chat.stdin.write("my name is Bob\n")
        chat.stdin.flush()
        assert _read_line(chat.stdout).strip() == "You said: my name is Bob"
    # The server is gone (closed with 1001); a new one takes over the same port and store.
    with chat, _serve(port, store):
        try:
            out, err = chat.communicate("what did I say?\n", timeout=60)
        finally:
            chat.kill()
    assert chat.returncode == 0, err
    assert out.strip() == "Before that you said: my name is Bob", err
    assert "reconnect" in err


def test_protocol_picks_the_samples_protocol_over_serve(tmp_path: Path, run_cli: RunCli) -> None:
    """serve offers adkvoice.v1; --protocol seeds speaks the ADK sample's protocol anyway,
    and the first line says which one is in use."""
    port = _free_port()
    with _serve(port, tmp_path / "sessions.db"):
        url = f"ws://127.0.0.1:{port}/ws/plain"
        result = run_cli(
            ["chat", "--text", "--url", url, "--protocol", "seeds"], stdin="my name is Bob\n"
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "You said: my name is Bob"
    assert f"connected to {url} · seeds protocol" in result.stderr


def test_chat_over_the_sse_samples_routes(tmp_path: Path, run_cli: RunCli) -> None:
    """`--url http://…/events/ID` speaks the sample's SSE version: the event stream down,
    a POST per message up; the conversation is serve's, so a second run continues it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/events/viasse"
    with _serve(port, tmp_path / "sessions.db"):
        first = run_cli(["chat", "--text", "--url", url], stdin="my name is Bob\n")
        second = run_cli(["chat", "--text", "--url", url], stdin="what did I say?\n")
        spoken = run_cli(["chat", "--url", url], stdin="what time is it?\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "You said: my name is Bob"
    assert f"connected to {url} · ADK streaming sample over SSE" in first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "Before that you said: my name is Bob"
    assert spoken.returncode == 0, spoken.stderr
    assert "It is" in spoken.stdout


def test_run_sse_refuses_speech_in_one_line(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--url", f"http://127.0.0.1:{_free_port()}/run_sse?app_name=a"], stdin="hi\n"
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "adkvoice: ADK's /run_sse answers typed turns in text only: use `adkvoice chat --text`"
    ), result.stderr


def test_chat_url_to_a_server_that_is_not_there(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--text", "--url", f"ws://127.0.0.1:{_free_port()}/ws/x"], stdin="hi\n"
    )
    assert result.returncode == 6
    assert re.search(r"cannot reach ws://127\.0\.0\.1:\d+/ws/x", result.stderr)
    assert "Traceback" not in result.stderr


def test_chat_url_to_an_sse_server_that_is_not_there(run_cli: RunCli) -> None:
    url = f"http://127.0.0.1:{_free_port()}/events/x"
    result = run_cli(["chat", "--text", "--url", url], stdin="hi\n")
    assert result.returncode == 6
    assert f"cannot reach {url}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("route", "named"),
    [("ws://{host}/run_live", "adk run_live"), ("http://{host}/run_sse", "adk run_sse")],
)
def test_chat_url_to_adk_api_server(
    tmp_path: Path, run_cli: RunCli, route: str, named: str
) -> None:
    """`adk api_server` runs the agent against the standalone emulator; adkvoice creates
    the session over REST and talks ADK's /run_live protocol, or runs each typed turn
    through /run_sse."""
    agents = tmp_path / "agents"
    (agents / "clock").mkdir(parents=True)
    (agents / "clock" / "__init__.py").write_text("from . import agent\n")
    (agents / "clock" / "agent.py").write_text(
        "from google.adk.agents import Agent\n\n"
        "def get_current_time() -> dict:\n"
        '    """Returns the time."""\n'
        '    return {"time": "06:30"}\n\n'
        'root_agent = Agent(name="clock", model="gemini-live-2.5-flash-preview",\n'
        "                   tools=[get_current_time])\n"
    )
    emulator = subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    )
    port = _free_port()
    api = None
    try:
        assert emulator.stdout is not None
        exports: dict[str, str] = {}
        while "SSL_CERT_FILE" not in exports:
            line = emulator.stdout.readline()
            assert line, "the emulator exited"
            match = re.match(r"\s*export (\w+)=(.*)$", line)
            if match:
                exports[match.group(1)] = match.group(2)
        adk = Path(sys.executable).with_name("adk")
        api = subprocess.Popen(
            [str(adk), "api_server", "--host", "127.0.0.1", "--port", str(port), str(agents)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(exports),
        )
        _wait_healthy(f"http://127.0.0.1:{port}/list-apps", deadline_s=60)
        url = route.format(host=f"127.0.0.1:{port}") + "?app_name=clock&user_id=u1"
        result = run_cli(
            ["chat", "--text", "--url", url],
            stdin="hello\nwhat time is it?\nwhat did I say?\n",
        )
        assert result.returncode == 0, result.stderr
        replies = result.stdout.splitlines()
        assert len(replies) == 3, result.stdout
        assert "emulator" in replies[0]
        assert replies[1] == "It is 06:30."
        assert replies[2] == "Before that you said: what time is it?"
        assert f"· {named} · session" in result.stderr
    finally:
        for proc in (api, emulator):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if emulator.stdout is not None:
            emulator.stdout.close()
