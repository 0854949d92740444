"""Secrets are never printed, not even with --debug: the API key google-genai sends, the
token a client and `serve` exchange, the password in a `--url`.

Each test also checks that the debug output it searches did log the credential's header
(masked), so a test cannot pass because nothing was logged.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.integration.conftest import RunCli, clean_env
from tests.integration.test_remote_cli import _free_port, _wait_healthy

pytestmark = pytest.mark.integration

GOOGLE_KEY = "AIzaSyC0ffeeD3adB33f0123456789abcdefGHI"  # the shape of a real key
assert len(GOOGLE_KEY) == 39
TOKEN = "tok-5ecret-0f-the-serve-9f3c1a"
PASSWORD = "S3cretPassw0rd"


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    finally:
        proc.kill()


@pytest.mark.parametrize(
    "key",
    [
        GOOGLE_KEY,  # hidden by its shape and as a registered secret
        "opaque-key-without-a-known-shape",  # hidden only because it was registered
    ],
)
def test_chat_debug_never_prints_the_api_key(
    run_cli: RunCli, emulator_env: dict[str, str], key: str
) -> None:
    # Forced to the Gemini path, so google-genai sends this key (to the emulator).
    env = {**emulator_env, "GOOGLE_API_KEY": key}
    result = run_cli(
        ["chat", "--text", "--backend", "gemini", "--sessions", "memory", "--debug"],
        stdin="hello\n",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "emulator" in result.stdout.lower()  # the reply: the key was used
    assert "x-goog-api-key: ***" in result.stderr  # the debug log of its header ran
    assert key not in result.stdout + result.stderr


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """`serve --log-level debug --token TOKEN`, logging to a file (a pipe would fill)."""
    port = _free_port()
    log = tmp_path / "serve.log"
    with (
        log.open("w") as out,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adkvoice",
                "serve",
                "--port",
                str(port),
                "--token",
                TOKEN,
                "--log-level",
                "debug",
                "--sessions",
                "memory",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        ) as proc,
    ):
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/healthz")
            yield port, log
        finally:
            _stop(proc)


def test_serve_debug_and_chat_debug_never_print_the_token(
    run_cli: RunCli, debug_server: tuple[int, Path]
) -> None:
    port, log = debug_server
    url = f"ws://127.0.0.1:{port}/ws/redaction"
    # The header form, from adkvoice's own client.
    chat = run_cli(["chat", "--text", "--url", url, "--token", TOKEN, "--debug"], stdin="hello\n")
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "emulator" in chat.stdout.lower()  # the server took the token
    assert "Authorization: Bearer ***" in chat.stderr  # the client logged its header
    assert TOKEN not in chat.stdout + chat.stderr
    # The token as a --header, next to a header only registration can hide.
    other = "an-opaque-gateway-credential-7d1e"
    chat = run_cli(
        [
            *("chat", "--text", "--url", url, "--debug"),
            *("--header", f"Authorization: Bearer {TOKEN}"),
            *("-H", f"X-Gateway-Credential: {other}"),
        ],
        stdin="hello\n",
    )
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "emulator" in chat.stdout.lower()  # the server took the token from the header
    assert "X-Gateway-Credential: ***" in chat.stderr  # sent, and logged masked
    assert TOKEN not in chat.stdout + chat.stderr
    assert other not in chat.stdout + chat.stderr
    # The query form, as browsers send it.
    with connect(f"{url}-query?is_audio=false&token={TOKEN}", open_timeout=10) as ws:
        ws.close()
    served = log.read_text()  # stderr is line-buffered: what was logged is there
    assert "authorization: Bearer ***" in served  # the server logged the headers
    assert "token=***" in served  # and the query string
    assert TOKEN not in served


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ws://user:{PASSWORD}@127.0.0.1:1/ws/x", "cannot reach ws://user:***@127.0.0.1:1"),
        (f"http://user:{PASSWORD}@127.0.0.1:1/ws/x", "not 'http://user:***@127.0.0.1:1/ws/x'"),
    ],
)
def test_a_url_password_is_never_printed(run_cli: RunCli, url: str, shown: str) -> None:
    result = run_cli(["chat", "--text", "--url", url, "--debug"], stdin="hello\n")
    assert result.returncode != 0
    assert shown in result.stderr  # the error quotes the URL, without its password
    assert "Traceback" in result.stderr  # --debug's traceback is printed, redacted too
    assert PASSWORD not in result.stdout + result.stderr
