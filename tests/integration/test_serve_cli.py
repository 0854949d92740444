"""`adkvoice serve` as a user starts it: a real process, the seeds' protocol, SSE, SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from typing import IO

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import clean_env

pytestmark = pytest.mark.integration


def _wait_for_url(stream: IO[str], deadline_s: float = 40) -> str:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        match = re.search(r"at (http://127\.0\.0\.1:\d+)", line)
        if match:
            return match.group(1)
    raise AssertionError("serve did not say where it listens")


def test_serve_speaks_the_seeds_protocol_and_stops_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "serve", "--port", "0", "--sessions", "memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    ) as proc:
        try:
            assert proc.stderr is not None
            url = _wait_for_url(proc.stderr)
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            page = httpx.get(f"{url}/", timeout=5)
            assert page.status_code == 200
            assert "<html" in page.text.lower()
            with httpx.stream(
                "GET", f"{url}/chat/stream", params={"query": "hello"}, timeout=30
            ) as sse:
                data = [line for line in sse.iter_lines() if line.startswith("data: ")]
            assert data[-1] == "data: [DONE]"
            assert "emulator" in "".join(data)
            ws_url = url.replace("http://", "ws://") + "/ws/demo?is_audio=false"
            with connect(ws_url, open_timeout=10) as ws:
                ws.send(json.dumps({"mime_type": "text/plain", "data": "hello"}))
                texts: list[str] = []
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    frame = json.loads(ws.recv(timeout=30))
                    if frame.get("turn_complete"):
                        break
                    if frame.get("mime_type") == "text/plain":
                        texts.append(frame["data"])
            assert "emulator" in "".join(texts)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            finally:
                proc.kill()
    assert proc.returncode == 0


def test_serve_refuses_a_public_bind_without_a_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "adkvoice", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2
    assert "without a token" in result.stderr
    assert "Traceback" not in result.stderr
