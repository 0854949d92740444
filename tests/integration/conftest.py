"""Helpers to run the real `adkvoice` CLI as a user would, against the emulator."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
)

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    def run(
        args: Sequence[str],
        stdin: str = "",
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "adkvoice", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(env),
            cwd=tmp_path,
        )

    return run


def read_exports(stream: IO[str]) -> dict[str, str]:
    """The `export NAME=value` lines `adkvoice emulator` prints (bounded: 30 s)."""
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while "SSL_CERT_FILE" not in exports and time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        match = re.match(r"\s*export (\w+)=(.*)$", line)
        if match:
            exports[match.group(1)] = match.group(2)
    return exports


@pytest.fixture
def emulator_env() -> Iterator[dict[str, str]]:
    """A standalone emulator, and the variables that point google-genai at it."""
    with subprocess.Popen(
        [sys.executable, "-m", "adkvoice", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
    ) as server:
        try:
            assert server.stdout is not None
            exports = read_exports(server.stdout)
            assert "SSL_CERT_FILE" in exports, "the emulator did not start"
            yield exports
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            finally:
                server.kill()
