"""`adkvoice talk --url`: the same voice UI against an agent hosted by `adkvoice serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.audio.pulse import SPEAKER_RATE, PulseServer
from tests.audio.test_talk_e2e import _active_spans
from tests.integration.conftest import clean_env
from tests.integration.test_remote_cli import _free_port, _serve


def test_talk_to_a_served_agent(pulse: PulseServer, speech_wav: Path, tmp_path: Path) -> None:
    port = _free_port()
    recording = pulse.record_speaker()
    with _serve(port, tmp_path / "sessions.db"):
        env = clean_env(pulse.client_env(os.environ))
        env["COLUMNS"] = "200"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "adkvoice",
                "talk",
                "--url",
                f"ws://127.0.0.1:{port}/ws/voice1",
                "--input-wav",
                str(speech_wav),
                "-o",
                "adkv_speaker",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    speaker = recording.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adkvoice.v1" in result.stdout  # the server's richer protocol was used
    assert "you 🎙" in result.stdout  # the user's transcript came back from the server
    assert "agent 🔊" in result.stdout
    assert _active_spans(speaker, SPEAKER_RATE).sum() * 0.02 > 0.5
