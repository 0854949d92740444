"""`adkvoice chat` without --text plays spoken replies through the same playback path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.audio.pulse import SPEAKER_RATE, PulseServer
from tests.audio.test_talk_e2e import _active_spans
from tests.integration.conftest import clean_env


def test_typed_chat_speaks_its_replies(pulse: PulseServer, tmp_path: Path) -> None:
    recording = pulse.record_speaker()
    result = subprocess.run(
        [sys.executable, "-m", "adkvoice", "chat", "--sessions", "memory"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=90,
        env=clean_env(pulse.client_env(os.environ)),
        cwd=tmp_path,
    )
    speaker = recording.stop()
    assert result.returncode == 0, result.stderr
    assert "emulator" in result.stdout  # the transcript of the spoken greeting
    assert "text only" not in result.stderr
    # The whole greeting (several seconds of speech) played before the process exited.
    assert _active_spans(speaker, SPEAKER_RATE).sum() * 0.02 > 2.0
