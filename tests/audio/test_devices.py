"""Device listing, selection and the one-line errors, on the virtual PulseAudio devices."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adkvoice.audio import devices as audio
from adkvoice.errors import AudioDeviceError
from tests.audio.pulse import MIC_SOURCE, SPEAKER_REC, SPEAKER_SINK, PulseServer

REPO = Path(__file__).resolve().parents[2]


def test_list_devices_sees_the_virtual_devices(pulse: PulseServer) -> None:
    devices = {d.name: d for d in audio.list_devices()}
    speaker, mic = devices[SPEAKER_SINK], devices[MIC_SOURCE]
    assert 24_000 in speaker.output_rates
    assert not speaker.can_input  # a sink cannot record, whatever PortAudio's channel count says
    assert 16_000 in mic.input_rates
    assert not mic.can_output
    assert devices[SPEAKER_REC].can_input
    defaults = [d for d in devices.values() if d.default_input or d.default_output]
    assert defaults, "PortAudio reports a default device"
    assert all(d.hostapi == "ALSA" for d in devices.values())


def test_resolve_by_name_index_and_substring(pulse: PulseServer) -> None:
    mic = audio.resolve_device(MIC_SOURCE, "input")
    assert mic.name == MIC_SOURCE
    assert audio.resolve_device(str(mic.index), "input") == mic
    assert audio.resolve_device("ADKV_MIC", "input").name == MIC_SOURCE
    # "speaker_rec" names two devices, but only the 24 kHz one matches for recording...
    assert audio.resolve_device("speaker_rec", "input").name == SPEAKER_REC
    # ...and an exact name wins over longer names containing it.
    assert audio.resolve_device("adkv_speaker", "output").name == SPEAKER_SINK
    assert audio.resolve_device(None, "output").default_output


def test_a_name_that_does_not_exist(pulse: PulseServer) -> None:
    with pytest.raises(AudioDeviceError) as err:
        audio.resolve_device("no-such-microphone", "input")
    text = str(err.value)
    assert text.startswith("no input device matches 'no-such-microphone'")
    assert MIC_SOURCE in text
    assert "--input-device" in text
    assert "\n" not in text


def test_ambiguous_name(pulse: PulseServer) -> None:
    with pytest.raises(AudioDeviceError, match="matches several input devices"):
        audio.resolve_device("adkv", "input")
    with pytest.raises(AudioDeviceError, match="matches several output devices"):
        audio.resolve_device("speaker", "output")


def test_wrong_direction(pulse: PulseServer) -> None:
    with pytest.raises(AudioDeviceError, match=f"'{SPEAKER_SINK}' cannot record audio"):
        audio.resolve_device(SPEAKER_SINK, "input")


def run_python(
    code: str, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


NO_SERVER = """
import asyncio
from adkvoice.audio import devices as audio
from adkvoice.errors import AudioDeviceError
from adkvoice.audio.playback import Playback
for attempt in (lambda: audio.resolve_device(None, "input"),
                lambda: asyncio.run(Playback().start())):
    try:
        attempt()
    except AudioDeviceError as exc:
        print(exc)
"""


def test_no_audio_server_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULSE_", "ALSA_CONFIG_PATH"))}
    env["PULSE_SERVER"] = f"unix:{tmp_path}/nothing-listens-here"
    env["PULSE_COOKIE"] = str(tmp_path / "cookie")
    proc = run_python(NO_SERVER, env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("no audio devices found: start an audio server")
        assert "adkvoice chat --text" in line
    assert "ALSA lib" not in proc.stderr  # PortAudio's noise is kept from the user


SERVER_DIES = """
import asyncio, sys
from adkvoice.audio.capture import Capture
from adkvoice.errors import AudioDeviceError

async def main():
    async with Capture("adkv_mic") as mic:
        print("capturing", flush=True)
        try:
            async for _ in mic:
                pass
        except AudioDeviceError as exc:
            print("ERROR", exc, flush=True)

asyncio.run(asyncio.wait_for(main(), 20))
"""


def test_audio_server_dying_mid_stream_is_reported(pulse: PulseServer) -> None:
    with PulseServer.start() as doomed:  # a second daemon, only for this test
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_DIES],
            env=doomed.client_env(os.environ),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "capturing"
            time.sleep(0.3)
            killed_at = time.monotonic()
            os.kill(doomed.proc.pid, signal.SIGKILL)
            line = proc.stdout.readline().strip()
            detected_s = time.monotonic() - killed_at
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
    assert line.startswith("ERROR input device")
    assert "stopped delivering audio" in line
    assert "--input-device" in line
    assert detected_s < 3.0
