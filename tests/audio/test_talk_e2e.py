"""`adkvoice talk` end to end on virtual devices: speech into the mic, the agent's reply
out of the speaker, and a barge-in that cuts the reply off. The real process, the real
ADK, the in-process Live API emulator."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tests.audio.pulse import SPEAKER_RATE, PulseServer, Recording
from tests.integration.conftest import clean_env

LONG_REPLY = " ".join(
    ["Here is a long story about a lighthouse keeper who counted ships every night."] * 6
)


def _active_spans(samples: np.ndarray, rate: int, threshold: float = 300.0) -> np.ndarray:
    """Per 20 ms frame: is there sound?"""
    frame = rate // 50
    usable = samples[: len(samples) // frame * frame].astype(np.float64).reshape(-1, frame)
    return np.sqrt((usable**2).mean(axis=1)) > threshold


class TalkProcess:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float = 30) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return time.monotonic()
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"talk never printed {text!r}; it printed: {self.lines}")


@contextmanager
def _talk(
    pulse: PulseServer,
    tmp: Path,
    *extra: str,
    stdin: int = subprocess.DEVNULL,
    ready: str = "speak now",
) -> Iterator[TalkProcess]:
    """A running `adkvoice talk` on the virtual devices, stopped with SIGTERM on exit
    unless it has ended by itself."""
    env = clean_env(pulse.client_env(os.environ))
    env["COLUMNS"] = "200"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adkvoice",
            "talk",
            "-i",
            "adkv_mic",
            "-o",
            "adkv_speaker",
            "--sessions",
            "memory",
            *extra,
        ],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=tmp,
    ) as proc:
        talk = TalkProcess(proc)
        try:
            talk.wait_for(ready, timeout_s=60)
            yield talk
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            finally:
                proc.kill()


def test_spoken_turn_is_answered_through_the_speaker(
    pulse: PulseServer, speech_wav: Path, tmp_path: Path
) -> None:
    record_dir = tmp_path / "rec"
    recording = pulse.record_speaker()
    with _talk(pulse, tmp_path, "--record", str(record_dir)) as talk:
        pulse.play_into_mic(speech_wav).wait(timeout=30)
        talk.wait_for("agent 🔊", timeout_s=30)
        talk.wait_for("voice-to-voice")
        time.sleep(1.5)  # let the reply finish playing
    speaker = recording.stop()
    assert talk.proc.returncode == 143  # SIGTERM ends it cleanly
    active = _active_spans(speaker, SPEAKER_RATE)
    assert active.sum() * 0.02 > 0.5, "the agent's reply was not heard on the speaker"
    # The recording is valid after SIGTERM: stereo, you on the left, the agent on the right.
    (wav_path,) = record_dir.glob("*.wav")
    with wave.open(str(wav_path)) as wav:
        assert wav.getnchannels() == 2
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
        rate = wav.getframerate()
    mic_active = _active_spans(stereo[:, 0].copy(), rate)
    agent_active = _active_spans(stereo[:, 1].copy(), rate)
    assert mic_active.sum() * 0.02 > 1.0
    assert agent_active.sum() * 0.02 > 0.5
    # Time-aligned: the agent answers after the user has started speaking.
    assert np.argmax(agent_active) > np.argmax(mic_active)
    (events,) = record_dir.glob("*.jsonl")
    assert '"speaker":"user"' in events.read_text()


def test_speaking_over_the_agent_cuts_it_off(
    pulse: PulseServer, speech_wav: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'fallback = "{LONG_REPLY}"\n')  # every turn gets a ~25 s reply
    recording = pulse.record_speaker()
    with _talk(pulse, tmp_path, "--emulator-rules", str(rules)) as talk:
        pulse.play_into_mic(speech_wav).wait(timeout=30)
        # Wait until the long reply is audible, then talk over it.
        reply_started = _wait_for_sound(recording, timeout_s=30)
        time.sleep(1.0)
        cut_in_at = time.monotonic()
        pulse.play_into_mic(speech_wav)
        talk.wait_for("you cut in", timeout_s=10)
        time.sleep(2.0)
    speaker = recording.stop()
    active = _active_spans(speaker, SPEAKER_RATE)
    start_frame = int((reply_started - recording.started_at) / 0.02)
    cut_frame = int((cut_in_at - recording.started_at) / 0.02)
    assert active[start_frame:cut_frame].sum() * 0.02 > 0.5  # the reply was playing
    after_cut = active[cut_frame:]
    assert after_cut.size > 50
    # Without the barge-in the reply would sound for 20 more seconds; it stops soon
    # after the user starts: local voice detection needs ~160 ms of speech, plus the
    # device's own latency.
    last_sound = int(np.flatnonzero(after_cut).max()) if after_cut.any() else 0
    assert last_sound * 0.02 < 0.8, f"agent audio went on {last_sound * 0.02:.2f} s over the user"


def _wait_for_sound(recording: Recording, timeout_s: float) -> float:
    """The monotonic time at which the speaker recording first holds sound."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = recording.path.read_bytes()
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        active = _active_spans(samples, SPEAKER_RATE)
        if active.any():
            return recording.started_at + float(np.argmax(active)) * 0.02
        time.sleep(0.05)
    raise AssertionError("the agent never spoke")


def test_push_to_talk_turn(pulse: PulseServer, speech_wav: Path, tmp_path: Path) -> None:
    """Space opens the turn, space closes it; the model's own detection is off."""
    controller, terminal = pty.openpty()
    try:
        with _talk(
            pulse, tmp_path, "--push-to-talk", stdin=terminal, ready="press space to talk"
        ) as talk:
            os.write(controller, b" ")
            pulse.play_into_mic(speech_wav).wait(timeout=30)
            time.sleep(0.3)
            assert not any("agent 🔊" in line for line in talk.lines)  # turn still open
            os.write(controller, b" ")
            talk.wait_for("agent 🔊", timeout_s=30)
            os.write(controller, b"q")
            talk.proc.wait(timeout=20)
        assert talk.proc.returncode == 0
    finally:
        os.close(controller)
        os.close(terminal)
