"""Helpers to run the real `adkvoice` CLI as a user would, against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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
