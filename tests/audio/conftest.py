"""Real-device tests on a private PulseAudio with virtual devices (see tests/audio/pulse.py).

The daemon starts once per session; PortAudio is (re)initialized after it is up because
PortAudio enumerates devices when it starts (AUDIO-TESTING.md, pitfall 4).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audio.pulse import PulseServer, pulseaudio_available, reinitialize_portaudio


@pytest.fixture(scope="session")
def pulse() -> Iterator[PulseServer]:
    if not pulseaudio_available():
        pytest.skip(
            "audio tests need a PulseAudio daemon: install pulseaudio and pulseaudio-utils "
            "(and libasound2-plugins so PortAudio reaches it)"
        )
    server = PulseServer.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key, value in server.client_env().items():
                mp.setenv(key, value)
            reinitialize_portaudio()
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About two seconds of espeak-ng speech as 16 kHz mono s16 WAV."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox are needed to make test speech")
    root = tmp_path_factory.mktemp("speech")
    raw, out = root / "espeak.wav", root / "speech16k.wav"
    text = "Hello there. Please tell me the weather in Paris tomorrow."
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, timeout=30
    )
    return out
