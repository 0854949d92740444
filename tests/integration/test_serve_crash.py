"""What a crash of `serve` may lose: its SQLite store commits every event before the event
is sent down, so a conversation killed with SIGKILL keeps every turn the user saw."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.integration.conftest import clean_env
from tests.integration.test_serve_cli import _wait_for_url

pytestmark = pytest.mark.integration


def _turn(ws: ClientConnection, text: str) -> str:
    """Send one typed turn (the seeds protocol) and return the reply's text."""
    ws.send(json.dumps({"mime_type": "text/plain", "data": text}))
    reply: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=30))
        if frame.get("turn_complete"):
            return "".join(reply)
        if frame.get("mime_type") == "text/plain":
            reply.append(frame["data"])
    raise AssertionError(f"no turn_complete for {text!r}")


def test_a_killed_server_keeps_every_answered_turn(tmp_path: Path) -> None:
    db = tmp_path / "serve.db"
    env = clean_env({"XDG_DATA_HOME": str(tmp_path / "data")})
    with subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "serve", "--port", "0", "--sessions", str(db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stderr is not None
            url = _wait_for_url(proc.stderr)
            ws_url = url.replace("http://", "ws://") + "/ws/crashed?is_audio=false"
            with connect(ws_url, open_timeout=10) as ws:
                first = _turn(ws, "hello")
                second = _turn(ws, "what time is it?")
                assert first
                assert second
                # Killed with the socket still open: no shutdown, no drain, no close.
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
        finally:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    shown = subprocess.run(
        [
            *(sys.executable, "-m", "adkvoice", "sessions", "show", "crashed"),
            *("--sessions", str(db), "--user-id", "crashed"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    assert "hello" in shown.stdout
    assert "what time is it?" in shown.stdout
    # The agent's last words before the kill are stored too (their first line is enough:
    # `sessions show` wraps long replies).
    assert second.strip().split("\n")[0][:40] in " ".join(shown.stdout.split())
