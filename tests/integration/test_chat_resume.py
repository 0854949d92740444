"""A conversation outlives its process: the live session resumes from its saved handle.

The emulator runs in its own process here (as Gemini would), so the handles it issued
survive the client being killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import RunCli, clean_env

pytestmark = pytest.mark.integration


def _wait_for_saved_handle(tmp_path: Path) -> None:
    """The handle arrives just after the reply; a kill before it would leave none."""
    handles = tmp_path / "xdg-data" / "adkvoice" / "live-handles"
    deadline = time.monotonic() + 10
    while not list(handles.glob("*.json")):
        assert time.monotonic() < deadline, "no resumption handle was saved"
        time.sleep(0.05)


def test_a_killed_chat_resumes_the_live_session_with_its_handle(
    run_cli: RunCli, emulator_env: dict[str, str], tmp_path: Path
) -> None:
    args = [sys.executable, "-m", "adkvoice", "chat", "--text", "--backend", "gemini"]
    with subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(emulator_env),
    ) as first:
        assert first.stdin is not None
        assert first.stdout is not None
        first.stdin.write("remember the green apple\n")
        first.stdin.flush()
        assert first.stdout.readline().strip() == "You said: remember the green apple"
        _wait_for_saved_handle(tmp_path)
        first.kill()  # no goodbye: the saved handle is all that is left of the live session
    result = run_cli(
        ["chat", "--text", "--backend", "gemini", "--resume"],
        stdin="what did I say?\n",
        env=emulator_env,
    )
    assert result.returncode == 0, result.stderr
    assert "resuming the model's live session (saved" in result.stderr
    assert result.stdout.strip() == "Before that you said: remember the green apple"
