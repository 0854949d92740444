"""Noise suppression and gain control, measured offline and deterministically.

Speech: four espeak-ng sentences (four voices) at an active speech level of -28 dBFS,
16 kHz, 2.5 s apart, after 2 s of noise alone. Noise at 20, 10, 5 and 0 dB SNR (active
speech level over the noise's mean level):
- white: Gaussian white noise;
- babble: six espeak voices reading different texts over each other;
- fan: a 100 Hz hum with four harmonics, slowly wobbling, plus low-pass filtered noise;
- quiet: the sentences at -45 dBFS (a speaker far from the microphone) in white noise at
  20 and 10 dB SNR: what gain control is for (not in the totals).

Each mix goes through each processing the microphone can get in `talk`, through the
same `adkvoice.audio.noise.MicCleaner` (10 ms frames, 20 ms chunks):
- off: the microphone as captured (`--no-aec --no-noise-suppression`);
- hpf: WebRTC's high-pass filter alone (what the echo canceller's module adds);
- ns: noise suppression and the high-pass filter;
- ns+agc: noise suppression, gain control and the high-pass filter (the default
  without echo cancellation; after the canceller the same without the filter).

Figures per case:
- segSNR: segmental SNR (dB, 20 ms frames where the clean speech is above -50 dBFS,
  each frame clamped to [-10, 35] dB) of the input and of the output against the clean
  speech, on magnitude spectra (the filters shift phases). Each output frame is compared
  with the clean frame scaled to fit it (least squares), so gain control's level changes
  do not count as noise, but speech the suppressor removes or distorts does;
- noise: the output's level where there is no speech (dBFS);
- the emulator's voice detection (`adkvoice.emulator.vad.SpeechDetector`, default
  settings: -40 dBFS threshold, 100 ms to start, 500 ms of silence to end) on the
  output: false starts (speech starts in noise-only stretches; "1st s": of which in the
  first second, while the modules still adapt), missed ends (a sentence
  heard whose end is not detected within 1.5 s after it), cut short (an end detected
  in the middle of a sentence), unheard (sentences it never detected);
- CPU: process CPU per second of audio (% of one core).

Then the chain after the echo canceller, on `bench/aec_bench.py`'s scene (80 ms echo
delay, the user talking over the agent from 5 s): ERLE of the canceller alone and with
the cleaner after it, and the emulator detector's false starts on the echo alone.

Run: .venv/bin/python bench/noise_bench.py [--png FILE] (the PNG only when matplotlib
is importable)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adkvoice.audio.dsp import Int16Array
from adkvoice.audio.noise import MicCleaner
from adkvoice.emulator.vad import SpeechDetector, SpeechEnded, SpeechStarted

RATE = 16_000
CHUNK = 320  # 20 ms, as the microphone sends
FRAME = 320  # 20 ms analysis frames
SPEECH_DBFS = -28.0
LEAD_S = 2.0
GAP_S = 2.5
END_WINDOW_S = 1.5
SNRS = (20, 10, 5, 0)
QUIET_DBFS = -45.0
SENTENCES = (
    ("en", "Could you tell me what the weather will be like tomorrow morning"),
    ("en+f3", "Please add milk and bread and a dozen eggs to my shopping list"),
    ("en-us", "I would like to book a table for two people at eight tonight"),
    ("en+m3", "What time does the last train leave the central station"),
)
BABBLE = (
    ("en", "The committee met on Tuesday to discuss the budget for the coming year. "),
    ("en+f2", "My sister bought a new bicycle and rode it all the way to the coast. "),
    ("en+m7", "Turn left at the second light and then keep going past the bakery. "),
    ("en-us", "We should probably order more paper before the printer runs out again. "),
    ("en+f4", "The garden needs water every evening when the summer gets this hot. "),
    ("en+m2", "He said the meeting would start late because the train was delayed. "),
)
CONFIGS: dict[str, dict[str, bool] | None] = {
    "off": None,
    "hpf": {"noise_suppression": False, "gain_control": False, "high_pass_filter": True},
    "ns": {"noise_suppression": True, "gain_control": False, "high_pass_filter": True},
    "ns+agc": {"noise_suppression": True, "gain_control": True, "high_pass_filter": True},
}


def espeak(text: str, voice: str, root: Path) -> np.ndarray:
    raw, out = root / f"{voice}-raw.wav", root / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, timeout=60)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    loud = np.flatnonzero(np.abs(x) > 300)
    return x[loud[0] : loud[-1] + 1] if loud.size else x


def frames(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    return x[: n * FRAME].reshape(n, FRAME)


def active_power(x: np.ndarray) -> float:
    """Mean power over the frames within 30 dB of the loudest (the speech, not its pauses)."""
    p = (frames(x) ** 2).mean(axis=1)
    return float(p[p > p.max() * 1e-3].mean())


def to_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * np.sqrt((10 ** (dbfs / 10) * 32768.0**2) / active_power(x))


@dataclass
class Utterance:
    start_s: float
    end_s: float


@dataclass
class Scene:
    clean: np.ndarray
    utterances: list[Utterance]


def speech_scene(root: Path) -> Scene:
    parts: list[np.ndarray] = [np.zeros(int(LEAD_S * RATE))]
    utterances: list[Utterance] = []
    at = len(parts[0])
    for voice, text in SENTENCES:
        s = to_level(espeak(text, voice, root), SPEECH_DBFS)
        utterances.append(Utterance(at / RATE, (at + len(s)) / RATE))
        parts += [s, np.zeros(int(GAP_S * RATE))]
        at += len(s) + int(GAP_S * RATE)
    clean = np.concatenate(parts)
    return Scene(clean[: len(clean) // CHUNK * CHUNK], utterances)


def lowpass_noise(n: int, cutoff_hz: float, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    return np.fft.irfft(spectrum / (1 + (f / cutoff_hz) ** 2), n)


def noises(n: int, root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    white = rng.standard_normal(n)
    babble = np.zeros(n)
    for voice, text in BABBLE:
        talker = to_level(espeak(text * 4, voice, root), -30.0)
        talker = np.tile(talker, n // len(talker) + 2)
        offset = int(rng.integers(0, RATE * 3))
        babble += talker[offset : offset + n]
    t = np.arange(n) / RATE
    wobble = 1 + 0.1 * np.sin(2 * np.pi * 0.4 * t)
    hum = sum((0.5**k) * np.sin(2 * np.pi * 100 * (k + 1) * t + k) for k in range(5)) * wobble
    whoosh = lowpass_noise(n, 400.0, rng)
    fan = hum / np.std(hum) + whoosh / np.std(whoosh)
    return {"white": white, "babble": babble, "fan": fan}


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, level: float) -> Int16Array:
    speech_p = 10 ** (level / 10) * 32768.0**2
    noise = noise * np.sqrt(speech_p / 10 ** (snr_db / 10) / np.mean(noise**2))
    return np.clip(np.rint(clean + noise), -32768, 32767).astype(np.int16)


def process(mic: Int16Array, config: dict[str, bool] | None) -> tuple[Int16Array, float, int]:
    """The processed stream, CPU seconds spent, and its delay in samples."""
    if config is None:
        return mic, 0.0, 0
    cleaner = MicCleaner(**config)
    out = np.empty_like(mic)
    c0 = time.process_time()
    for k in range(0, len(mic) - CHUNK + 1, CHUNK):
        out[k : k + CHUNK] = cleaner.process(mic[k : k + CHUNK])
    cpu = time.process_time() - c0
    delay = round(cleaner.output_delay_s * RATE) if config["noise_suppression"] else 0
    return out, cpu, delay


def seg_snr(clean: np.ndarray, out: np.ndarray, delay: int) -> float:
    """Segmental SNR of `out` against `clean`, on magnitude spectra: the module's filters
    shift phases (even the high-pass filter alone leaves a waveform correlation of ~0.65
    with its input, at an unchanged spectrum), which a waveform comparison would count as
    noise."""
    y = out[delay:].astype(np.float64)
    n = min(len(clean), len(y))
    s, y = frames(clean[:n]), frames(y[:n])
    speech = (s**2).mean(axis=1) > 10 ** (-50 / 10) * 32768.0**2
    window = np.hanning(FRAME)
    S = np.abs(np.fft.rfft(s[speech] * window, 512))
    Y = np.abs(np.fft.rfft(y[speech] * window, 512))
    a = (S * Y).sum(axis=1) / (S**2).sum(axis=1)
    fitted = S * a[:, None]
    err = ((Y - fitted) ** 2).sum(axis=1)
    snr = 10 * np.log10(np.maximum((fitted**2).sum(axis=1), 1e-9) / np.maximum(err, 1e-9))
    return float(np.clip(snr, -10, 35).mean())


def noise_level(out: np.ndarray, sc: Scene) -> float:
    mask = np.ones(len(out), dtype=bool)
    for u in sc.utterances:
        mask[int((u.start_s - 0.1) * RATE) : int((u.end_s + 0.3) * RATE)] = False
    x = out[mask].astype(np.float64)
    return float(10 * np.log10(max(np.mean(x**2), 1e-9) / 32768.0**2))


@dataclass
class VadFigures:
    false_starts: int = 0
    warm_up: int = 0  # of which in the first second (the modules still adapting)
    missed_ends: int = 0
    cut_short: int = 0
    unheard: int = 0


def vad_figures(out: Int16Array, sc: Scene, delay: int) -> VadFigures:
    detector = SpeechDetector()
    shift = delay / RATE
    starts: list[float] = []
    ends: list[float] = []
    in_speech: list[bool] = []  # per chunk
    for k in range(0, len(out) - CHUNK + 1, CHUNK):
        for event in detector.feed(out[k : k + CHUNK].tobytes()):
            if isinstance(event, SpeechStarted):
                starts.append(event.at_s - shift)
            elif isinstance(event, SpeechEnded):
                ends.append(event.at_s - shift)
        in_speech.append(detector.in_speech)
    fig = VadFigures()
    for t in starts:
        if not any(u.start_s - 0.1 <= t <= u.end_s + 0.1 for u in sc.utterances):
            fig.false_starts += 1
            fig.warm_up += t < 1.0
    step = CHUNK / RATE
    for u in sc.utterances:
        lo, hi = int(u.start_s / step), int(u.end_s / step) + 1
        if not any(in_speech[lo:hi]):
            fig.unheard += 1
            continue
        fig.cut_short += sum(1 for t in ends if u.start_s + 0.1 < t < u.end_s)
        if not any(u.end_s <= t <= u.end_s + END_WINDOW_S for t in ends):
            fig.missed_ends += 1
    return fig


@dataclass
class Row:
    noise: str
    snr: float | None
    config: str
    snr_in: float
    snr_out: float
    noise_in: float
    noise_out: float
    vad: VadFigures
    cpu_pct: float


def run_case(
    sc: Scene,
    noise_name: str,
    noise: np.ndarray | None,
    snr: float | None,
    level: float = SPEECH_DBFS,
) -> list[Row]:
    if level != SPEECH_DBFS:
        sc = Scene(sc.clean * 10 ** ((level - SPEECH_DBFS) / 20), sc.utterances)
    mic = (
        mix(sc.clean, noise, snr, level)
        if noise is not None and snr is not None
        else np.clip(np.rint(sc.clean), -32768, 32767).astype(np.int16)
    )
    seconds = len(mic) / RATE
    snr_in = seg_snr(sc.clean, mic, 0)
    noise_in = noise_level(mic, sc)
    rows = []
    for name, config in CONFIGS.items():
        out, cpu, delay = process(mic, config)
        rows.append(
            Row(
                noise_name,
                snr,
                name,
                snr_in,
                seg_snr(sc.clean, out, delay),
                noise_in,
                noise_level(out, sc),
                vad_figures(out, sc, delay),
                cpu / seconds * 100,
            )
        )
    return rows


def print_rows(rows: list[Row]) -> None:
    print(
        f"{'noise':<8}{'SNR':>5}  {'config':<8}{'segSNR in':>10}{'out':>7}{'gain':>7}"
        f"{'noise in':>10}{'out':>7}{'false':>7}{'(1st s)':>8}{'missed':>8}{'cut':>5}"
        f"{'unheard':>9}{'CPU':>8}"
    )
    for r in rows:
        snr = "-" if r.snr is None else f"{r.snr:.0f}"
        print(
            f"{r.noise:<8}{snr:>5}  {r.config:<8}{r.snr_in:10.1f}{r.snr_out:7.1f}"
            f"{r.snr_out - r.snr_in:+7.1f}{r.noise_in:10.1f}{r.noise_out:7.1f}"
            f"{r.vad.false_starts:7d}{r.vad.warm_up:8d}{r.vad.missed_ends:8d}{r.vad.cut_short:5d}"
            f"{r.vad.unheard:9d}{r.cpu_pct:7.2f}%"
        )


def print_totals(rows: list[Row]) -> None:
    print("\ntotals over the noisy cases (3 noises x 4 SNRs, 4 sentences each):")
    print(
        f"{'config':<8}{'false':>7}{'(1st s)':>8}{'missed':>8}{'cut':>5}{'unheard':>9}"
        f"{'mean gain':>11}"
    )
    for name in CONFIGS:
        rs = [r for r in rows if r.config == name and r.snr is not None and r.noise != "quiet"]
        print(
            f"{name:<8}{sum(r.vad.false_starts for r in rs):7d}"
            f"{sum(r.vad.warm_up for r in rs):8d}"
            f"{sum(r.vad.missed_ends for r in rs):8d}{sum(r.vad.cut_short for r in rs):5d}"
            f"{sum(r.vad.unheard for r in rs):9d}"
            f"{np.mean([r.snr_out - r.snr_in for r in rs]):+10.1f}"
        )


def echo_chain(root: Path) -> None:
    """The canceller alone and with the cleaner after it, on the echo benchmark's scene."""
    import aec_bench

    from adkvoice.audio.aec import EchoCanceller, load_engine

    far = aec_bench.espeak(aec_bench.FAR_TEXT, aec_bench.REF, "en", root)
    user = aec_bench.espeak(aec_bench.USER_TEXT, RATE, "en+f3", root)
    sc = aec_bench.scene(far, user, 0.08, overdriven=False)
    ec = EchoCanceller(load_engine())
    cleaners = {  # what talk runs after the canceller, and with --gain-control
        "canceller + ns": MicCleaner(high_pass_filter=False),
        "canceller + ns+agc": MicCleaner(high_pass_filter=False, gain_control=True),
    }
    aec_out = np.zeros_like(sc.mic)
    after = {name: np.zeros_like(sc.mic) for name in cleaners}
    fed = 0
    t0 = aec_bench.T0
    for i in range(len(sc.mic) // CHUNK):
        while fed < len(sc.far) and fed / aec_bench.REF < i * 0.02 + 0.06:
            ec.add_reference(
                sc.far[fed : fed + 240], t0 + fed / aec_bench.REF, aec_bench.REF, pos=fed
            )
            fed += 240
        chunk = ec.process(sc.mic[i * CHUNK : (i + 1) * CHUNK], t0 + i * 0.02)
        aec_out[i * CHUNK : (i + 1) * CHUNK] = chunk
        for name, cleaner in cleaners.items():
            after[name][i * CHUNK : (i + 1) * CHUNK] = cleaner.process(chunk)
    n = len(sc.mic) // 160

    def energy(x: np.ndarray) -> np.ndarray:
        return np.asarray((x[: n * 160].astype(np.float64).reshape(n, 160) ** 2).sum(axis=1))

    pe, pu = energy(sc.echo), energy(sc.user)
    talking = np.flatnonzero(pu > 0)
    steady = (pe > pe.max() * 1e-4) & (pu == 0)
    steady[:100] = False
    steady[talking[0] if talking.size else n :] = False
    echo_only_s = int(aec_bench.USER_AT * RATE)
    print(
        "\nafter the echo canceller (aec_bench scene, 80 ms): ERLE over echo-only frames; "
        "emulator detector starts on the echo alone (first 5 s)"
    )
    print(f"{'chain':<22}{'ERLE':>7}{'false':>7}")
    for name, out in (("canceller", aec_out), *after.items()):
        po = energy(out)
        erle = 10 * np.log10(pe[steady].sum() / max(po[steady].sum(), 1.0))
        detector = SpeechDetector()
        starts = 0
        for k in range(0, echo_only_s, CHUNK):
            starts += sum(
                isinstance(e, SpeechStarted) for e in detector.feed(out[k : k + CHUNK].tobytes())
            )
        print(f"{name:<22}{erle:7.1f}{starts:7d}")


def plot(rows: list[Row], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"\nmatplotlib is not installed: no {path}")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for ax, noise in zip(axes, ("white", "babble", "fan"), strict=True):
        for name in CONFIGS:
            rs = [r for r in rows if r.noise == noise and r.config == name]
            ax.plot(
                [r.snr for r in rs],
                [r.vad.false_starts + r.vad.missed_ends for r in rs],
                marker="o",
                label=name,
            )
        ax.set_title(noise)
        ax.set_xlabel("SNR (dB)")
        ax.invert_xaxis()
    axes[0].set_ylabel("false starts + missed ends")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, default=None, help="also plot into this PNG")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="adkv-noise-bench-"))
    try:
        sc = speech_scene(root)
        noise = noises(len(sc.clean), root)
        print(
            f"\n{len(sc.utterances)} sentences at {SPEECH_DBFS:.0f} dBFS active level in "
            f"{len(sc.clean) / RATE:.1f} s; emulator detector: -40 dBFS, 100 ms start, "
            "500 ms end\n"
        )
        rows = run_case(sc, "clean", None, None)
        for name, x in noise.items():
            for snr in SNRS:
                rows += run_case(sc, name, x, snr)
        # A quiet speaker (far from the microphone): what gain control is for.
        for snr in (20, 10):
            rows += run_case(sc, "quiet", noise["white"], snr, level=QUIET_DBFS)
        print_rows(rows)
        print_totals(rows)
        echo_chain(root)
        if args.png is not None:
            plot(rows, args.png)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
