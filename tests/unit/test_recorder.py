"""The stereo WAV + JSONL recorder: alignment, gap filling, crash safety."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from adkvoice.audio.dsp import float_to_int16, int16_to_pcm
from adkvoice.audio.recorder import Recorder, wav_header
from adkvoice.events import AgentText, Interrupted, Transcript

WAV_RATE = 24_000
T0 = 1000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2
        assert wav.getsampwidth() == 2
        data = wav.readframes(wav.getnframes())
        return np.frombuffer(data, dtype="<i2").reshape(-1, 2), wav.getframerate()


def burst(seconds: float, rate: int, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return float_to_int16(0.5 * np.sin(2 * np.pi * freq * t))


def onset(channel: np.ndarray, threshold: int = 2000) -> int:
    loud = np.nonzero(np.abs(channel) > threshold)[0]
    assert loud.size, "channel is silent"
    return int(loud[0])


def make(tmp_path: Path, clock: FakeClock, **kw: object) -> Recorder:
    return Recorder(tmp_path, stem="rec", t0=T0, clock=clock, **kw)  # type: ignore[arg-type]


def test_channels_are_placed_by_their_timestamps(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    rec.add_agent(burst(0.2, 24_000), T0 + 0.5)
    rec.add_mic(burst(0.2, 16_000), T0 + 1.0)  # 16 kHz mic, resampled to the WAV rate
    rec.close()
    frames, rate = read_wav(rec.wav_path)
    assert rate == WAV_RATE
    assert onset(frames[:, 1]) == pytest.approx(12_000, abs=3)
    assert onset(frames[:, 0]) == pytest.approx(24_000, abs=3)
    assert frames.shape[0] == pytest.approx(24_000 + 4_800, abs=5)
    assert not frames[:12_000].any()  # silence before either


def test_continuous_chunks_stay_contiguous_despite_timestamp_jitter(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    source = burst(1.0, 16_000, freq=440)
    jitter = np.random.default_rng(0).uniform(-0.003, 0.003, 50)
    for i in range(50):  # 20 ms chunks with a few ms of timestamp noise
        rec.add_mic(source[i * 320 : (i + 1) * 320], T0 + 0.1 + i * 0.02 + jitter[i])
    rec.close()
    frames, _ = read_wav(rec.wav_path)
    mic = frames[:, 0].astype(np.int64)
    start = onset(frames[:, 0], threshold=200)
    assert start == pytest.approx(2_400, abs=80)
    body = mic[start + 240 : start + 24_000 - 240]
    # no silence was inserted: a 440 Hz tone never has 2 ms of near-zero samples
    windows = np.lib.stride_tricks.sliding_window_view(np.abs(body), 48).max(axis=1)
    assert windows.min() > 1000


def test_gaps_between_replies_are_silence(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    rec.add_agent(burst(0.1, 24_000), T0)
    rec.add_agent(burst(0.1, 24_000), T0 + 1.0)
    rec.close()
    frames, _ = read_wav(rec.wav_path)
    agent = frames[:, 1]
    assert not agent[2_400 + 10 : 24_000 - 10].any()
    assert onset(agent[24_000 - 10 :]) == pytest.approx(10, abs=2)
    assert not frames[:, 0].any()


def test_agent_audio_at_another_rate_is_resampled(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    rec.add_agent(burst(0.5, 48_000), T0 + 0.25, sample_rate=48_000)
    rec.close()
    frames, _ = read_wav(rec.wav_path)
    assert onset(frames[:, 1]) == pytest.approx(6_000, abs=3)
    loud = np.nonzero(np.abs(frames[:, 1]) > 2000)[0]
    assert loud[-1] - loud[0] == pytest.approx(12_000, abs=5)  # 0.5 s stays 0.5 s


def test_periodic_flush_keeps_header_valid_while_recording(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock, flush_interval_s=0.5, commit_lag_s=0.5)
    for i in range(100):  # two seconds of mic, driven by the fake clock
        clock.now = T0 + (i + 1) * 0.02
        rec.add_mic(burst(0.02, 16_000), T0 + i * 0.02)
    # Without close(): what a killed process leaves behind.
    snapshot = tmp_path / "snapshot.wav"
    shutil.copy(rec.wav_path, snapshot)
    frames, _ = read_wav(snapshot)
    assert frames.shape[0] == pytest.approx(1.5 * WAV_RATE, abs=0.5 * WAV_RATE)
    assert rec.frames_written == frames.shape[0]
    rec.close()
    final, _ = read_wav(rec.wav_path)
    assert final.shape[0] == pytest.approx(2.0 * WAV_RATE, abs=10)


def test_file_truncated_mid_write_still_parses(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    rec.add_mic(burst(1.0, 16_000), T0)
    rec.close()
    data = rec.wav_path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 10_001])  # mid-frame: the header promises more than is there
    with wave.open(str(cut), "rb") as wav:
        got = wav.readframes(wav.getnframes())
    assert len(got) // 4 == 2_500  # everything that survived is readable
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(wav_header(0, WAV_RATE))
    with wave.open(str(header_only), "rb") as wav:
        assert wav.getnframes() == 0


def test_events_are_written_as_jsonl_with_offsets(tmp_path: Path) -> None:
    clock = FakeClock()
    rec = make(tmp_path, clock)
    rec.handle(Transcript(speaker="user", text="hello", finished=True, at=T0 + 1.5))
    rec.handle(AgentText(text="hi", partial=False, at=T0 + 2.0))
    rec.handle(Interrupted(at=T0 + 2.5))
    # Lines are flushed as written: readable before close.
    lines = [json.loads(line) for line in rec.events_path.read_text().splitlines()]
    rec.close()
    rec.handle(Interrupted())  # after close: ignored, not an error
    assert lines[0]["type"] == "recording"
    assert lines[0]["wav"] == "rec.wav"
    assert lines[0]["channels"] == ["mic", "agent"]
    assert [line["type"] for line in lines[1:]] == ["transcript", "agent_text", "interrupted"]
    assert lines[1]["text"] == "hello"
    assert [line["offset_s"] for line in lines[1:]] == [1.5, 2.0, 2.5]


def test_bytes_input_and_context_manager(tmp_path: Path) -> None:
    clock = FakeClock()
    with make(tmp_path, clock) as rec:
        rec.add_mic(int16_to_pcm(burst(0.1, 16_000)), T0)
    frames, _ = read_wav(rec.wav_path)
    assert frames.shape[0] == pytest.approx(2_400, abs=5)
    rec.add_mic(b"\x00\x00", T0)  # after close: ignored


def test_default_names_and_directory_creation(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "new" / "dir")
    rec.close()
    assert rec.wav_path.parent.is_dir()
    assert rec.wav_path.name.startswith("adkvoice-")
    assert rec.wav_path.suffix == ".wav"
    assert rec.events_path.with_suffix(".wav") == rec.wav_path


KILLED_WRITER = """
import sys, time
import numpy as np
from pathlib import Path
from adkvoice.audio.recorder import Recorder
rec = Recorder(Path(sys.argv[1]), stem="killed", flush_interval_s=0.1, commit_lag_s=0.1)
tone = (np.sin(np.arange(320) / 3) * 8000).astype(np.int16)
start = time.monotonic()
print("ready", flush=True)
i = 0
while True:
    rec.add_mic(tone, start + i * 0.02)
    i += 1
    time.sleep(max(0.0, start + i * 0.02 - time.monotonic()))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_process_leaves_readable_files(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.8)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    frames, _ = read_wav(tmp_path / "killed.wav")
    assert frames.shape[0] > 0.3 * WAV_RATE
    header = json.loads((tmp_path / "killed.jsonl").read_text().splitlines()[0])
    assert header["type"] == "recording"
