"""Echo canceller candidates, measured offline and deterministically.

Far end: espeak-ng speech at 24 kHz, as the agent's voice. Near end (the microphone,
16 kHz): that speech through a simulated room (a direct path after 40–120 ms, a decaying
tail, -12 dB), optionally an overdriven little speaker, room noise, and from 5 s to ~8 s
the user talking over it (another espeak voice). Each candidate runs behind the same
`adkvoice.audio.aec.EchoCanceller` wrapper that `talk` uses (timestamps, 10 ms frames, the
reference fed ~60 ms ahead as the playback tap does).

Figures per candidate and delay:
- ERLE: echo energy in / out over the echo-only frames after the first second;
- ERLE in the second after double talk (does it recover);
- double talk: the user's voice level kept (dB) and its correlation in the output, and how
  long after the user starts the local voice detector fires on the cleaned microphone;
- false starts: voice detector firings on the cleaned microphone with echo only;
- CPU: process CPU per second of audio (% of one core).

Candidates: the `livekit` package's AudioProcessingModule (WebRTC AEC3, wheels on PyPI)
and `aec-audio-processing` (WebRTC AEC3 through SWIG; sdist only: it builds with meson,
swig and a C++ compiler, ~5 min). A candidate that is not installed is reported as such.

Run: .venv/bin/python bench/aec_bench.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adkvoice.audio.aec import EchoCanceller, EchoEngine, load_engine
from adkvoice.audio.dsp import EnergyVad, Int16Array, StreamResampler
from tests.audio.signals import room_echo

MIC = 16_000
REF = 24_000
CHUNK = 320
T0 = 1000.0
FAR_TEXT = (
    "Here is a long story about a lighthouse keeper who counted ships every night. "
    "The sea was calm, the lamp turned slowly, and the gulls slept on the rocks below."
)
USER_TEXT = "Stop, wait a moment, I have a question about the weather."
USER_AT = 5.0


class AecAudioProcessing:
    """`aec-audio-processing`: its reverse stream must have the capture rate and frame
    size, so the far end is resampled to 16 kHz here (soxr, streaming)."""

    name = "aec-audio-processing"
    output_delay_s = 0.008

    def __init__(self) -> None:
        from aec_audio_processing import AudioProcessor  # type: ignore[import-not-found]

        self._ap = AudioProcessor(
            enable_aec=True, enable_ns=False, enable_agc=False, enable_vad=False
        )
        self._ap.set_stream_format(MIC, 1, MIC, 1)
        self._ap.set_reverse_stream_format(MIC, 1)
        self._resamplers: dict[int, StreamResampler] = {}
        self._fifo: Int16Array = np.zeros(0, dtype=np.int16)

    def analyze_render(self, frame: Int16Array, sample_rate: int) -> None:
        if sample_rate != MIC:
            rs = self._resamplers.setdefault(sample_rate, StreamResampler(sample_rate, MIC))
            frame = rs.process(frame)
        self._fifo = np.concatenate([self._fifo, frame])
        n = MIC // 100
        if len(self._fifo) >= n:
            out, self._fifo = self._fifo[:n], self._fifo[n:]
        else:
            out = np.zeros(n, dtype=np.int16)
        self._ap.process_reverse_stream(out.tobytes())

    def process_capture(self, frame: Int16Array) -> Int16Array:
        out: Int16Array = np.frombuffer(self._ap.process_stream(frame.tobytes()), np.int16)
        return out.copy()


def candidates() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    try:
        load_engine()
        found.append(("livekit (WebRTC AEC3)", load_engine))
    except Exception as exc:
        print(f"livekit: not available ({exc})")
    try:
        AecAudioProcessing()
        found.append(("aec-audio-processing", AecAudioProcessing))
    except Exception as exc:
        print(f"aec-audio-processing: not available ({type(exc).__name__}: {exc})")
    return found


def espeak(text: str, rate: int, voice: str, root: Path) -> Int16Array:
    raw, out = root / f"{voice}.wav", root / f"{voice}-{rate}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


@dataclass
class Scene:
    far: Int16Array  # 24 kHz
    mic: Int16Array  # 16 kHz
    echo: np.ndarray
    user: np.ndarray


def scene(far: Int16Array, user: Int16Array, delay_s: float, *, overdriven: bool) -> Scene:
    import soxr

    played = far.astype(np.float64)
    if overdriven:  # a little speaker driven into soft clipping
        played = np.tanh(played / 32768 * 3) / np.tanh(3) * 32768
    echo = room_echo(soxr.resample(played, REF, MIC), MIC, delay_s=delay_s)
    near = np.zeros_like(echo)
    start = int(USER_AT * MIC)
    near[start : start + len(user)] = user[: len(near) - start] * 0.5
    noise = np.random.default_rng(2).standard_normal(len(echo)) * 10
    mic = np.clip(echo + near + noise, -32768, 32767).astype(np.int16)
    return Scene(far, mic, echo, near)


def run(make_engine: Any, sc: Scene) -> dict[str, float]:
    engine: EchoEngine = make_engine()
    ec = EchoCanceller(engine)
    out = np.zeros_like(sc.mic)
    fed = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(len(sc.mic) // CHUNK):
        while fed < len(sc.far) and fed / REF < i * 0.02 + 0.06:
            ec.add_reference(sc.far[fed : fed + 240], T0 + fed / REF, REF, pos=fed)
            fed += 240
        out[i * CHUNK : (i + 1) * CHUNK] = ec.process(
            sc.mic[i * CHUNK : (i + 1) * CHUNK], T0 + i * 0.02
        )
    cpu = time.process_time() - c0
    wall = time.perf_counter() - w0
    seconds = len(sc.mic) / MIC
    n = len(sc.mic) // 160

    def energy(x: np.ndarray) -> np.ndarray:
        return np.asarray((x[: n * 160].astype(np.float64).reshape(n, 160) ** 2).sum(axis=1))

    pe, po, pu = energy(sc.echo), energy(out), energy(sc.user)
    talking = np.flatnonzero(pu > 0)
    dt_end = int(talking[-1]) + 1 if talking.size else 0
    echo_only = (pe > pe.max() * 1e-4) & (pu == 0)
    steady = echo_only.copy()
    steady[:100] = False  # the first second: adaptation
    steady[talking[0] if talking.size else n :] = False
    after = echo_only.copy()
    after[: dt_end + 20] = False  # 200 ms after the user stops …
    after[dt_end + 120 :] = False  # … for one second

    def erle(mask: np.ndarray) -> float:
        return float(10 * np.log10(pe[mask].sum() / max(po[mask].sum(), 1.0)))

    lag = round(engine.output_delay_s * MIC)
    a, b = int(USER_AT * MIC), dt_end * 160
    kept = out[a + lag : b + lag].astype(np.float64)
    said = sc.user[a:b]
    vad = EnergyVad()
    starts = [
        i * 0.02
        for i in range(len(out) // CHUNK)
        if vad.feed(out[i * CHUNK : (i + 1) * CHUNK]) == "speech_start"
    ]
    user_starts = [t for t in starts if USER_AT <= t < dt_end / 100]
    return {
        "erle": erle(steady),
        "erle_after_dt": erle(after),
        "kept_db": float(10 * np.log10((kept**2).sum() / (said**2).sum())),
        "corr": float(np.dot(kept, said) / (np.linalg.norm(kept) * np.linalg.norm(said))),
        "barge_in_s": user_starts[0] - USER_AT if user_starts else float("nan"),
        "false_starts": float(len(starts) - len(user_starts)),
        "cpu": cpu / seconds * 100,
        "wall": wall / seconds * 100,
    }


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="adkv-aec-bench-"))
    far = espeak(FAR_TEXT, REF, "en", root)
    user = espeak(USER_TEXT, MIC, "en+f3", root)
    found = candidates()
    vad = EnergyVad()
    alone = next(
        (
            i * 0.02
            for i in range(len(user) // CHUNK)
            if vad.feed(user[i * CHUNK : (i + 1) * CHUNK] // 2) == "speech_start"
        ),
        float("nan"),
    )
    header = (
        f"{'candidate':<24}{'case':<18}{'ERLE':>7}{'after DT':>10}{'user kept':>11}"
        f"{'corr':>6}{'barge-in':>10}{'false':>7}{'CPU':>7}"
    )
    print(
        f"\nfar end {len(far) / REF:.1f} s of espeak speech; the user talks over it from "
        f"{USER_AT:.0f} s for {len(user) / MIC:.1f} s (the voice detector on the user alone "
        f"fires {alone * 1000:.0f} ms in)\n"
    )
    print(header)
    for name, make in found:
        for delay_ms, overdriven in ((40, False), (80, False), (120, False), (80, True)):
            sc = scene(far, user, delay_ms / 1000, overdriven=overdriven)
            r = run(make, sc)
            case = f"{delay_ms} ms" + (" overdriven" if overdriven else "")
            print(
                f"{name:<24}{case:<18}{r['erle']:6.1f}{r['erle_after_dt']:9.1f} "
                f"{r['kept_db']:+9.1f} {r['corr']:6.2f}{r['barge_in_s'] * 1000:8.0f} ms"
                f"{r['false_starts']:6.0f}{r['cpu']:6.2f} %"
            )
    print(
        "\nERLE and 'after DT' in dB (echo only; the first second excluded); 'user kept': "
        "level of the user's voice in the output during double talk; 'corr': its waveform "
        "correlation there; 'barge-in': the local voice detector on the cleaned microphone "
        "after the user starts; 'false': detector firings on echo alone; CPU: % of one core."
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
