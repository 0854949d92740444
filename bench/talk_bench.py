"""Figures for `adkvoice talk` on virtual devices against the emulator (zero think time).

Everything is local: a private PulseAudio (tests/audio/pulse.py) with a virtual speaker and
microphone, espeak-ng speech played into the microphone, and the Live API emulator. An
"echo path" is a PulseAudio loopback from the speaker's monitor into the microphone at
60 ms and -18 dB, like laptop speakers. No assertions: it prints figures and targets.

1. In-process (the same classes `adkvoice talk` wires, instrumented), emulator delivering
   as fast as it can, echo path on, echo cancellation on: capture callback → backend send,
   received audio → ring, the voice-to-voice time adkvoice adds, and flush on barge-in
   (→ silence at the output callback, → silence at the speaker monitor).
2. In-process again with the emulator delivering at real time (as Gemini does): underruns
   per minute of steady delivery, and the voice-to-voice time added with the prebuffer.
3. The real `adkvoice talk` process against a standalone emulator: CPU while listening and
   while speaking, with echo cancellation (echo path on) and without (`--no-aec`); and
   whether the agent cut itself off over the echo path (with and without cancellation).
4. The speaker's jitter buffer, the old fixed 100 ms prebuffer (`fixed`) against the
   adaptive one (`adaptive`, the default): many replies through the conversation core to
   the virtual speaker, delivered at steady real time (80 ms chunks, as the emulator
   sends) and in bursts (100 ms frames, about one in six 50–80 ms late: a 150–180 ms gap,
   made up by the next frame): first chunk received → first sample at the speaker p50/p95,
   underruns (and those after the first three replies, once adapted), and a histogram
   (a PNG with matplotlib, else text).

Run: .venv/bin/python bench/talk_bench.py [--cycles N] [--steady-s S] [--cpu-window-s S]
     [--policy both|adaptive|fixed] [--only jitter] [--replies N]
Needs pulseaudio, pulseaudio-utils, libasound2-plugins, libportaudio2, espeak-ng, sox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.audio.pulse import (
    FEED_SINK,
    MIC_SOURCE,
    SPEAKER_RATE,
    SPEAKER_SINK,
    PulseServer,
)

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
)
LONG_REPLY = " ".join(
    ["Here is a long story about a lighthouse keeper who counted ships every night."] * 6
)
SPEECH_TEXT = "Hello there. Please tell me the weather in Paris tomorrow."


# ---- helpers --------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def ms(x: float) -> str:
    return "n/a" if x != x else f"{x * 1000:.1f} ms"


def make_playback(policy: str, *args: Any, **kwargs: Any) -> Any:
    """`Playback` with the adaptive jitter buffer, or with the old fixed prebuffer."""
    from adkvoice.audio.playback import Playback
    from adkvoice.audio.ring import AdaptivePrebuffer

    if policy == "fixed":
        kwargs["prebuffer"] = AdaptivePrebuffer()
    return Playback(*args, **kwargs)


def make_speech(root: Path) -> Path:
    raw, out = root / "espeak.wav", root / "speech16k.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SPEECH_TEXT], check=True, timeout=30)
    subprocess.run(
        ["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, timeout=30
    )
    return out


@contextlib.contextmanager
def echo_path(pulse: PulseServer, latency_ms: int = 60, volume: str = "50%") -> Iterator[None]:
    """The speaker heard by the microphone `latency_ms` later; 50 % ≈ -18 dB."""
    module = pulse.pactl(
        "load-module",
        "module-loopback",
        f"source={SPEAKER_SINK}.monitor",
        f"sink={FEED_SINK}",
        f"latency_msec={latency_ms}",
        "source_dont_move=true",
        "sink_dont_move=true",
    ).strip()
    try:
        listing = pulse.pactl("list", "sink-inputs")
        for block in listing.split("Sink Input #")[1:]:
            if f"Owner Module: {module}" in block:
                pulse.pactl("set-sink-input-volume", block.split()[0], volume)
        yield
    finally:
        pulse.pactl("unload-module", module)


def sound_spans(
    samples: np.ndarray, rate: int, threshold: float = 300.0, frame_s: float = 0.02
) -> np.ndarray:
    frame = round(rate * frame_s)
    usable = samples[: len(samples) // frame * frame].astype(np.float64).reshape(-1, frame)
    return np.asarray(np.sqrt((usable**2).mean(axis=1)) > threshold)


# ---- 1 & 2: in-process, instrumented ---------------------------------------------------


@dataclass
class Figures:
    mic_callback_to_sent: list[float] = field(default_factory=list)
    mic_complete_to_sent: list[float] = field(default_factory=list)
    recv_to_ring: list[float] = field(default_factory=list)
    local_v2v: list[float] = field(default_factory=list)  # first chunk received → speaker
    flush_callback: list[float] = field(default_factory=list)
    flush_speaker_tap: list[float] = field(default_factory=list)
    flush_speaker_monitor: list[float] = field(default_factory=list)
    echo_cpu_per_chunk: list[float] = field(default_factory=list)
    underruns: int = 0
    device_underflows: int = 0
    steady_s: float = 0.0
    steady_underruns: int = 0
    steady_underflows: int = 0
    delivered_s: float = 0.0  # agent audio received
    steady_delivered_s: float = 0.0  # of it, during the steady window
    replies: int = 0
    barge_ins: int = 0
    notes: list[str] = field(default_factory=list)
    mic_spikes: list[tuple[float, float]] = field(default_factory=list)  # (at, latency)
    events: list[tuple[float, str]] = field(default_factory=list)


async def in_process(
    pulse: PulseServer,
    speech: Path,
    *,
    pacing: float,
    cycles: int,
    steady_s: float,
    with_echo_path: bool,
    client_env: dict[str, str],
    policy: str = "adaptive",
) -> Figures:
    """One conversation through TalkSession on the virtual devices, instrumented."""
    from rich.console import Console

    from adkvoice.agents.loading import load_bundled_agent
    from adkvoice.audio.aec import EchoCanceller, try_canceller
    from adkvoice.audio.capture import Capture
    from adkvoice.audio.playback import ReplyStart
    from adkvoice.audio.ring import TimedBlock
    from adkvoice.backends.embedded import EmbeddedBackend
    from adkvoice.config import point_genai_at
    from adkvoice.conversation.voice import TalkSession
    from adkvoice.events import AgentAudio, Event, Interrupted, TurnComplete
    from adkvoice.store.sessions import open_store
    from adkvoice.ui.talk_view import TalkState, TalkView

    fig = Figures()
    point_genai_at(client_env)  # the emulator runs in another process: its work is not ours
    callbacks: list[float] = []

    class TimedCapture(Capture):
        def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
            super()._callback(indata, frames, time_info, status)
            callbacks.append(time.monotonic())  # bench only: a list append per block

    capture = TimedCapture(MIC_SOURCE)
    playback = make_playback(policy, SPEAKER_SINK, tap=True)
    store = open_store("memory")
    backend = EmbeddedBackend(
        load_bundled_agent(),
        modality="AUDIO",
        session_service=store.service,
        endpoint_label="emulator",
    )
    await backend.start()  # first: chunks queued while it connects are not latency
    await capture.start()
    await playback.start()
    if capture.sample_rate != 16_000:
        fig.notes.append(f"microphone opened at {capture.sample_rate} Hz: mapping is off")
    echo = try_canceller()
    canceller = echo if isinstance(echo, EchoCanceller) else None
    if canceller is None:
        fig.notes.append(f"no echo canceller ({echo}): half duplex")
    view = TalkView(Console(file=io.StringIO()), TalkState(push_to_talk=False))
    session = TalkSession(
        backend, view, playback, push_to_talk=False, half_duplex=True, canceller=canceller
    )

    # -- instrumentation --
    chunk_index = 0
    sends: list[tuple[int, float]] = []
    chunk_complete: dict[int, float] = {}
    original_send = backend.send_audio

    async def timed_send(pcm: bytes) -> None:
        await original_send(pcm)
        sends.append((chunk_index, time.monotonic()))

    backend.send_audio = timed_send  # type: ignore[method-assign]

    async def source() -> Any:
        nonlocal chunk_index
        async for chunk in capture:
            chunk_complete[chunk_index] = chunk.captured_at + len(chunk.pcm) / 2 / 16_000
            yield chunk
            chunk_index += 1

    first_audio: list[float] = []
    reply_open = False
    flushes: list[float] = []

    class Timing:
        """A sink beside the speaker: delivery times, reply starts, local cut-ins."""

        def handle(self, event: Event) -> None:
            nonlocal reply_open
            if isinstance(event, AgentAudio):
                fig.recv_to_ring.append(time.monotonic() - event.at)
                fig.delivered_s += event.duration_s
                if not reply_open:
                    first_audio.append(event.at)
                    reply_open = True
            elif isinstance(event, Interrupted) and event.source == "user":
                flushes.append(time.monotonic())
                fig.events.append((round(time.monotonic() - (callbacks or [0.0])[0], 2), "flush"))
                reply_open = False
            elif isinstance(event, (TurnComplete, Interrupted)):
                reply_open = False

    session.conversation.add_sink(Timing())
    starts: list[ReplyStart] = []
    original_on_start = session._on_reply_start

    def on_start(start: ReplyStart) -> None:
        starts.append(start)
        fig.events.append((round(start.callback_at - (callbacks or [0.0])[0], 2), "reply"))
        original_on_start(start)

    playback.on_reply_start = on_start
    played: list[TimedBlock] = []
    original_read = playback.read_played

    def read_played() -> list[TimedBlock]:
        blocks = original_read()
        played.extend(blocks)
        return blocks

    playback.read_played = read_played  # type: ignore[method-assign]

    # Chunks captured before the conversation starts are sent in a burst at its start:
    # not a steady-state latency.
    pumping_since = time.monotonic() + 0.1
    tasks = [
        asyncio.create_task(session.pump_mic(source())),
        asyncio.create_task(session.pump_events()),
        asyncio.create_task(session.watch_playback()),
    ]
    rec = pulse.record_speaker()
    echo_ctx = echo_path(pulse) if with_echo_path else contextlib.nullcontext()
    try:
        with echo_ctx:
            await asyncio.sleep(1.0)
            if steady_s <= 0:
                await barge_in_cycles(pulse, speech, session, playback, cycles, fig)
            else:
                await steady_reply(pulse, speech, session, playback, steady_s, fig)
    finally:
        session.quit.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        speaker = rec.stop()
        await backend.close()
        await playback.aclose()
        await capture.aclose()

    # -- figures --
    t0 = callbacks[0] if callbacks else 0.0
    for index, sent_at in sends:
        if index < len(callbacks) and callbacks[index] >= pumping_since:
            fig.mic_callback_to_sent.append(sent_at - callbacks[index])
            if sent_at - callbacks[index] > 0.05:
                fig.mic_spikes.append((round(callbacks[index] - t0, 2), sent_at - callbacks[index]))
            if index in chunk_complete:
                fig.mic_complete_to_sent.append(sent_at - chunk_complete[index])
    for start in starts:
        before = [t for t in first_audio if t <= start.callback_at]
        if before:
            fig.local_v2v.append(start.speaker_at - before[-1])
    fig.replies = len(starts)
    fig.barge_ins = session.barge_ins
    fig.underruns = playback.underruns
    fig.device_underflows = playback.device_underflows
    _flush_at_speaker(fig, flushes, played, starts, speaker, rec.started_at, playback.sample_rate)
    if canceller is not None and canceller.stats.frames:
        fig.echo_cpu_per_chunk.append(canceller.stats.cpu_s / canceller.stats.frames * 2)
    return fig


async def barge_in_cycles(
    pulse: PulseServer, speech: Path, session: Any, playback: Any, cycles: int, fig: Figures
) -> None:
    """Speak; once the long reply has played ~1.2 s, speak over it; repeat."""
    pulse.play_into_mic(speech)
    for _ in range(cycles):
        if not await wait_for(lambda: playback.playing, 30):
            fig.notes.append("a reply never started")
            return
        await asyncio.sleep(1.2)
        seen = session.barge_ins
        pulse.play_into_mic(speech)
        if not await wait_for(lambda s=seen: session.barge_ins > s, 5):
            fig.notes.append("a barge-in was not detected")
            continue
        await asyncio.sleep(0.1)
        if playback.flush_applied_at >= playback.flush_requested_at:
            fig.flush_callback.append(playback.flush_applied_at - playback.flush_requested_at)
    await wait_for(lambda: playback.playing, 30)
    await asyncio.sleep(1.0)


async def steady_reply(
    pulse: PulseServer, speech: Path, session: Any, playback: Any, seconds: float, fig: Figures
) -> None:
    """A long reply delivered at real time: count underruns over a fixed window of it."""
    pulse.play_into_mic(speech)
    if not await wait_for(lambda: playback.playing, 30):
        fig.notes.append("the reply never started")
        return
    await asyncio.sleep(0.5)  # the start of a reply is not steady state
    u0, d0, started = playback.underruns, playback.device_underflows, time.monotonic()
    got0 = fig.delivered_s
    await asyncio.sleep(seconds)
    fig.steady_s = time.monotonic() - started
    fig.steady_delivered_s = fig.delivered_s - got0
    fig.steady_underruns = playback.underruns - u0
    fig.steady_underflows = playback.device_underflows - d0


async def feeder(seconds: float, chunk_ms: int = 40, jitter_ms: float = 0.0) -> Figures:
    """Agent audio into the real playback path (the conversation core) on an exact
    real-time schedule, `chunk_ms` per chunk: steady delivery, without a model."""
    from rich.console import Console

    from adkvoice.audio.playback import Playback
    from adkvoice.conversation.voice import TalkSession
    from adkvoice.events import AgentAudio
    from adkvoice.ui.talk_view import TalkState, TalkView

    fig = Figures()
    rng = np.random.default_rng(0)
    playback = Playback(SPEAKER_SINK, tap=True)
    await playback.start()
    view = TalkView(Console(file=io.StringIO()), TalkState(push_to_talk=False))
    session = TalkSession(None, view, playback, push_to_talk=False, half_duplex=False)  # type: ignore[arg-type]
    n = SPEAKER_RATE * chunk_ms // 1000
    t = np.arange(n) / SPEAKER_RATE
    chunk = (3000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    loop = asyncio.get_running_loop()
    start = loop.time()
    u0 = d0 = 0
    k = 0
    try:
        while True:
            due = start + k * chunk_ms / 1000 + rng.uniform(0, jitter_ms) / 1000
            if due - start > seconds:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            before = time.monotonic()
            session.conversation.publish(AgentAudio(pcm=chunk))
            fig.recv_to_ring.append(time.monotonic() - before)
            if k == round(500 / chunk_ms):  # from 0.5 s on: steady state
                u0, d0 = playback.underruns, playback.device_underflows
            k += 1
        fig.steady_s = seconds - 0.5
        fig.steady_underruns = playback.underruns - u0
        fig.steady_underflows = playback.device_underflows - d0
        fig.underruns, fig.device_underflows = playback.underruns, playback.device_underflows
    finally:
        await playback.aclose()
    return fig


# ---- 4: the jitter buffer, fixed against adaptive ----------------------------------------

JITTER_REPLY_S = 3.0
JITTER_ADAPTED_AFTER = 3  # replies: underruns after these count as "once adapted"


def delivery_schedule(kind: str, seconds: float, rng: np.random.Generator) -> list[float]:
    """Arrival offsets (s) of one reply's chunks: `steady` 80 ms chunks at real time,
    `bursty` 100 ms frames with about one in six 50–80 ms late (a 150–180 ms gap)."""
    if kind == "steady":
        return [k * 0.08 for k in range(int(seconds / 0.08))]
    out, late_before = [], True
    for k in range(int(seconds / 0.1)):
        late = not late_before and rng.integers(6) == 0
        out.append(k * 0.1 + (rng.uniform(0.05, 0.08) if late else 0.0))
        late_before = late
    return out


@dataclass
class JitterFigures:
    policy: str
    delivery: str
    waits: list[float] = field(default_factory=list)  # first chunk received → speaker
    underruns: list[int] = field(default_factory=list)  # per reply
    device_underflows: int = 0
    targets: list[float] = field(default_factory=list)  # after each reply, ms

    @property
    def adapted_underruns(self) -> int:
        return sum(self.underruns[JITTER_ADAPTED_AFTER:])


async def jitter_feeder(policy: str, delivery: str, replies: int) -> JitterFigures:
    """Replies through the conversation core (the speaker sink) to the virtual speaker on a
    synthetic delivery schedule; each ends with `AnswerComplete` and a 0.4 s pause."""
    from rich.console import Console

    from adkvoice.audio.playback import ReplyStart
    from adkvoice.conversation.voice import TalkSession
    from adkvoice.events import AgentAudio, AnswerComplete
    from adkvoice.ui.talk_view import TalkState, TalkView

    fig = JitterFigures(policy, delivery)
    rng = np.random.default_rng(1)
    playback = make_playback(policy, SPEAKER_SINK)
    await playback.start()
    view = TalkView(Console(file=io.StringIO()), TalkState(push_to_talk=False))
    session = TalkSession(None, view, playback, push_to_talk=False, half_duplex=False)  # type: ignore[arg-type]
    starts: list[ReplyStart] = []
    playback.on_reply_start = starts.append
    frames = {"steady": SPEAKER_RATE * 80 // 1000, "bursty": SPEAKER_RATE // 10}[delivery]
    t = np.arange(frames) / SPEAKER_RATE
    chunk = (3000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    loop = asyncio.get_running_loop()
    publish = session.conversation.publish
    d0 = playback.device_underflows
    try:
        for _ in range(replies):
            u0, n0 = playback.underruns, len(starts)
            first_at = None
            begin = loop.time()
            for offset in delivery_schedule(delivery, JITTER_REPLY_S, rng):
                await asyncio.sleep(max(0.0, begin + offset - loop.time()))
                event = AgentAudio(pcm=chunk)
                first_at = first_at if first_at is not None else event.at
                publish(event)
            publish(AnswerComplete())
            await playback.drain(10)
            await asyncio.sleep(0.4)
            if len(starts) > n0 and first_at is not None:
                fig.waits.append(starts[n0].speaker_at - first_at)
            fig.underruns.append(playback.underruns - u0)
            fig.targets.append(playback.prebuffer.target_ms)
        fig.device_underflows = playback.device_underflows - d0
    finally:
        await playback.aclose()
    return fig


def run_jitter(pulse: PulseServer, policy: str, delivery: str, replies: int) -> JitterFigures:
    env = dict(os.environ)
    env.update(pulse.client_env())
    done = subprocess.run(
        [sys.executable, __file__, "--jitter", policy, delivery, str(replies)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            return JitterFigures(**json.loads(line[len("FIGURES ") :]))
    raise RuntimeError(f"jitter run failed:\n{done.stdout}\n{done.stderr}")


def report_jitter(runs: list[JitterFigures], mic_to_sent: float, png: Path | None) -> None:
    print("\n-- the speaker's jitter buffer: fixed 100 ms prebuffer (before) vs adaptive --")
    mic = mic_to_sent if mic_to_sent == mic_to_sent else 0.0
    mic_note = f"+ mic → sent p50 {ms(mic)}" if mic else "mic → sent not measured (--only)"
    print(
        f"voice-to-voice added by adkvoice = first chunk received → first sample at the "
        f"speaker (device latency included) {mic_note}; {JITTER_REPLY_S:.0f} s replies"
    )
    for r in runs:
        v2v = [w + mic for w in r.waits]
        print(
            f"{r.delivery:<7} {r.policy:<9} v2v added p50 {ms(pct(v2v, 50)):>9}  "
            f"p95 {ms(pct(v2v, 95)):>9}  underruns {sum(r.underruns):3d} "
            f"(after {JITTER_ADAPTED_AFTER} replies: {r.adapted_underruns})  "
            f"device underflows {r.device_underflows}  target {r.targets[-1]:.0f} ms  "
            f"(n={len(v2v)})"
        )
    print("targets: steady p50 ≤ 60 ms with 0 underruns; bursty 0 underruns once adapted")
    histogram(runs, mic, png)


def histogram(runs: list[JitterFigures], mic: float, png: Path | None) -> None:
    """Voice-to-voice added per run: a PNG with matplotlib, else 10 ms text bins."""
    series = {f"{r.delivery} {r.policy}": [(w + mic) * 1000 for w in r.waits] for r in runs}
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("histogram (matplotlib is not installed: text, 10 ms bins, one # per reply):")
        top = max((max(v) for v in series.values() if v), default=0.0)
        for label, values in series.items():
            counts = np.bincount((np.asarray(values) // 10).astype(int), minlength=1)
            print(f"  {label}")
            for b in range(int(top // 10) + 1):
                n = int(counts[b]) if b < len(counts) else 0
                if n:
                    print(f"    {b * 10:4d}–{b * 10 + 9:<4d} ms {'#' * n}")
        return
    if png is None:
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    bins = np.arange(0, max(max(v, default=0) for v in series.values()) + 20, 10)
    for label, values in series.items():
        ax.hist(values, bins=bins, alpha=0.5, label=label)
    ax.set_xlabel("voice-to-voice added by adkvoice (ms)")
    ax.set_ylabel("replies")
    ax.legend()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    print(f"histogram: {png}")


async def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return False


def _flush_at_speaker(
    fig: Figures,
    flushes: list[float],
    played: list[Any],
    starts: list[Any],
    speaker: np.ndarray,
    rec_started_at: float,
    rate: int,
) -> None:
    """flush() → the last sample at the speaker: by the tap's speaker stamps, and on the
    monitor recording, its clock mapped to ours through the reply starts it shows."""
    for f in flushes:
        ends = [b.t + len(b.samples) / rate for b in played if b.t < f + 0.5]
        if ends:
            fig.flush_speaker_tap.append(max(ends) - f)
    step = 0.005
    active = sound_spans(speaker, SPEAKER_RATE, frame_s=step)
    onsets = np.flatnonzero(active[1:] & ~active[:-1]) + 1
    offsets = []
    for start in starts:  # monitor time of each reply start, against its speaker stamp
        guess = (start.speaker_at - rec_started_at) / step
        near = onsets[np.abs(onsets - guess) < 0.1 / step]
        if near.size:
            offsets.append(start.speaker_at - (rec_started_at + near[0] * step))
    if not offsets:
        return
    base = rec_started_at + float(np.median(offsets))
    quiet = int(0.2 / step)  # a pause this long after the flush is the end
    for f in flushes:
        i = max(0, int((f - base) / step) - 2)
        while i < len(active) - quiet and active[i : i + quiet].any():
            i += 1
        fig.flush_speaker_monitor.append(base + i * step - f)


# ---- 3: the real process ------------------------------------------------------------------


@dataclass
class ProcessFigures:
    label: str
    listening_cpu: float = float("nan")
    speaking_cpu: float = float("nan")
    cut_ins: int = 0
    interrupted: int = 0
    first_cut_in_after_s: float | None = None
    lines: list[str] = field(default_factory=list)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_share(pid: int, seconds: float) -> float:
    c0, t0 = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)


class Lines:
    """A process's output lines, read by a thread, with the time each arrived."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.times: list[float] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.times.append(time.monotonic())
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            when = self.first(text)
            if when is not None:
                return when
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def first(self, text: str) -> float | None:
        for line, when in zip(list(self.lines), list(self.times), strict=False):
            if text in line:
                return when
        return None

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


def serve_emulator(pacing: float, rules: Path) -> None:
    """`--serve-emulator`: an emulator in its own process, zero think time."""
    from adkvoice.emulator import Emulator, EmulatorOptions, load_rules

    async def run() -> None:
        emulator = Emulator(
            EmulatorOptions(rules=load_rules(rules), audio_pacing=pacing, think_time_s=0.0)
        )
        await emulator.start()
        for key, value in emulator.client_env().items():
            print(f"export {key}={value}", flush=True)
        print("ready", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await emulator.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@contextlib.contextmanager
def emulator_process(pacing: float, rules: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-emulator", str(pacing), str(rules)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    out = Lines(proc)
    try:
        if out.wait_for("ready", 60) is None:
            raise RuntimeError(f"emulator did not start: {out.lines}")
        client = {}
        for line in out.lines:
            m = re.match(r"export (\w+)=(.*)$", line)
            if m:
                client[m.group(1)] = m.group(2)
        yield client
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for_sound(rec: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = rec.path.read_bytes()
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        if sound_spans(samples, SPEAKER_RATE).any():
            return True
        time.sleep(0.05)
    return False


def talk_process(
    pulse: PulseServer,
    speech: Path,
    client_env: dict[str, str],
    workdir: Path,
    label: str,
    *extra: str,
    echo: bool,
    window_s: float,
) -> ProcessFigures:
    """`adkvoice talk` as users run it: CPU listening, then CPU during a long reply."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env.update(pulse.client_env(), NO_COLOR="1", COLUMNS="200", **client_env)
    figures = ProcessFigures(label)
    echo_ctx = echo_path(pulse) if echo else contextlib.nullcontext()
    with (
        echo_ctx,
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adkvoice",
                "talk",
                "-i",
                MIC_SOURCE,
                "-o",
                SPEAKER_SINK,
                "--sessions",
                "memory",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=workdir,
        ) as proc,
    ):
        out = Lines(proc)
        rec = pulse.record_speaker()
        try:
            if out.wait_for("speak now", 90) is None:
                figures.lines = out.lines
                return figures
            time.sleep(1.0)  # start-up work settles
            figures.listening_cpu = _cpu_share(proc.pid, window_s)
            pulse.play_into_mic(speech)
            if wait_for_sound(rec, 30):
                started = time.monotonic()
                time.sleep(0.3)
                figures.speaking_cpu = _cpu_share(proc.pid, window_s)
                cut = out.first("you cut in")
                if cut is not None:
                    figures.first_cut_in_after_s = cut - started
            figures.cut_ins = out.count("you cut in")
            figures.interrupted = out.count("⏹ interrupted")
            figures.lines = out.lines
        finally:
            rec.stop(settle_s=0.0)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return figures


# ---- report ---------------------------------------------------------------------------------


def report(
    burst: Figures,
    steady: Figures,
    fed: Figures,
    fed_jitter: Figures,
    procs: list[ProcessFigures],
) -> None:
    print("\n== adkvoice talk benchmark (virtual devices, emulator, zero think time) ==")
    f = burst
    print("\n-- mic → backend (echo cancellation on, echo path on) --")
    print(
        f"capture callback → sent      p50 {ms(pct(f.mic_callback_to_sent, 50))}  "
        f"p99 {ms(pct(f.mic_callback_to_sent, 99))}  (n={len(f.mic_callback_to_sent)})"
    )
    print(
        f"chunk complete (ADC) → sent  p50 {ms(pct(f.mic_complete_to_sent, 50))}  "
        f"p99 {ms(pct(f.mic_complete_to_sent, 99))}  (includes the input device's latency)"
    )
    if f.echo_cpu_per_chunk:
        print(f"echo canceller per 20 ms chunk: {ms(f.echo_cpu_per_chunk[0])} CPU")
    print("\n-- backend → speaker --")
    print(
        f"received audio → ring        p50 {ms(pct(f.recv_to_ring, 50))}  "
        f"p99 {ms(pct(f.recv_to_ring, 99))}  (n={len(f.recv_to_ring)})"
    )
    v2v_burst = pct(f.local_v2v, 50) + pct(f.mic_callback_to_sent, 50)
    v2v_steady = pct(steady.local_v2v, 50) + pct(f.mic_callback_to_sent, 50)
    print(
        f"first chunk received → first sample at the speaker  p50 {ms(pct(f.local_v2v, 50))} "
        f"(burst delivery, n={len(f.local_v2v)}); {ms(pct(steady.local_v2v, 50))} "
        f"(real-time delivery, n={len(steady.local_v2v)})"
    )
    print(
        f"voice-to-voice added by adkvoice p50: {ms(v2v_burst)} burst, {ms(v2v_steady)} "
        "real-time   [target ≤ 60 ms]"
    )
    print("\n-- barge-in flush --")
    print(
        f"flush() → silence at the output callback  p50 {ms(pct(f.flush_callback, 50))}  "
        f"max {ms(max(f.flush_callback, default=float('nan')))}  (n={len(f.flush_callback)})"
        "   [target ≤ 20 ms]"
    )
    print(
        f"flush() → silence at the speaker (tap stamps)  p50 "
        f"{ms(pct(f.flush_speaker_tap, 50))}  max "
        f"{ms(max(f.flush_speaker_tap, default=float('nan')))}"
    )
    print(
        f"flush() → silence on the speaker monitor  p50 {ms(pct(f.flush_speaker_monitor, 50))}"
        f"  max {ms(max(f.flush_speaker_monitor, default=float('nan')))} "
        f"(n={len(f.flush_speaker_monitor)})"
    )
    print(f"replies {f.replies}, barge-ins {f.barge_ins}")
    print("\n-- steady delivery --")
    for label, g in (
        ("exact real time, 40 ms chunks", fed),
        ("real time, 40 ms chunks, 0–30 ms late", fed_jitter),
    ):
        rate = g.steady_underruns / g.steady_s * 60 if g.steady_s else float("nan")
        print(
            f"{label:<40} {g.steady_s:5.1f} s: {g.steady_underruns} underruns "
            f"({rate:.1f}/min), {g.steady_underflows} device underflows   [target 0]"
        )
    rate = steady.steady_underruns / steady.steady_s * 60 if steady.steady_s else float("nan")
    pace = steady.steady_delivered_s / steady.steady_s if steady.steady_s else float("nan")
    print(
        f"{'emulator at audio_pacing=1.0':<40} {steady.steady_s:5.1f} s: "
        f"{steady.steady_underruns} underruns ({rate:.1f}/min), {steady.steady_underflows} "
        f"device underflows; it delivered {pace * 100:.1f} % of real time"
    )
    print("\n-- the `adkvoice talk` process (CPU, % of one core) --")
    for p in procs:
        print(
            f"{p.label:<34} listening {p.listening_cpu * 100:5.1f} %   speaking "
            f"{p.speaking_cpu * 100:5.1f} %   cut-ins {p.cut_ins}  "
            f"server interruptions {p.interrupted}"
            + (
                f"  (first cut-in {p.first_cut_in_after_s:.2f} s into the reply)"
                if p.first_cut_in_after_s is not None
                else ""
            )
        )
    print("targets: listening ≤ 5 % (≤ 10 % with echo cancellation)")
    for note in [*burst.notes, *steady.notes]:
        print(f"note: {note}")


def attach_pulse(root: Path) -> PulseServer:
    """The parent's PulseAudio, seen from a child process (it is not ours to stop)."""
    return PulseServer(
        root=root,
        proc=None,  # type: ignore[arg-type]
        socket=root / "runtime" / "pulse.sock",
        cookie=root / "cookie",
        alsa_config=root / "alsa-extra.conf",
    )


def in_process_child(argv: list[str]) -> None:
    """`--in-process ROOT SPEECH PACING CYCLES STEADY_S ECHO POLICY`: one run in a fresh
    process (ADK caches its model client, so each emulator gets a process of its own)."""
    root, speech, pacing, cycles, steady_s, echo, policy = argv
    pulse = attach_pulse(Path(root))
    client = {k: v for k, v in os.environ.items() if k in CREDENTIAL_VARS}
    figures = asyncio.run(
        in_process(
            pulse,
            Path(speech),
            pacing=float(pacing),
            cycles=int(cycles),
            steady_s=float(steady_s),
            with_echo_path=echo == "1",
            client_env=client,
            policy=policy,
        )
    )
    print("FIGURES " + json.dumps(dataclasses.asdict(figures)), flush=True)


def run_child(
    pulse: PulseServer,
    speech: Path,
    rules: Path,
    pacing: float,
    cycles: int,
    steady_s: float,
    echo: bool,
    policy: str = "adaptive",
) -> Figures:
    with emulator_process(pacing, rules) as client:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
        env.update(pulse.client_env(), **client)
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--in-process",
                str(pulse.root),
                str(speech),
                str(pacing),
                str(cycles),
                str(steady_s),
                "1" if echo else "0",
                policy,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            return Figures(**json.loads(line[len("FIGURES ") :]))
    raise RuntimeError(f"in-process run failed:\n{done.stdout}\n{done.stderr}")


def run_feeder(pulse: PulseServer, seconds: float, jitter_ms: float) -> Figures:
    env = dict(os.environ)
    env.update(pulse.client_env())
    done = subprocess.run(
        [sys.executable, __file__, "--feeder", str(seconds), str(jitter_ms)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("FIGURES "):
            return Figures(**json.loads(line[len("FIGURES ") :]))
    raise RuntimeError(f"feeder failed:\n{done.stdout}\n{done.stderr}")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-emulator":
        serve_emulator(float(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) == 9 and sys.argv[1] == "--in-process":
        in_process_child(sys.argv[2:])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--jitter":
        jitter = asyncio.run(jitter_feeder(sys.argv[2], sys.argv[3], int(sys.argv[4])))
        print("FIGURES " + json.dumps(dataclasses.asdict(jitter)), flush=True)
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--feeder":
        figures = asyncio.run(feeder(float(sys.argv[2]), jitter_ms=float(sys.argv[3])))
        print("FIGURES " + json.dumps(dataclasses.asdict(figures)), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=8, help="barge-in cycles")
    parser.add_argument("--steady-s", type=float, default=20.0, help="steady window, seconds")
    parser.add_argument("--cpu-window-s", type=float, default=8.0)
    parser.add_argument(
        "--policy",
        choices=("both", "adaptive", "fixed"),
        default="both",
        help="the speaker's prebuffer: the adaptive jitter buffer, the old fixed one, both",
    )
    parser.add_argument("--only", choices=("jitter",), help="run only the jitter buffer part")
    parser.add_argument("--replies", type=int, default=12, help="replies per jitter run")
    parser.add_argument(
        "--png",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "talk_bench_v2v.png",
        help="histogram (matplotlib)",
    )
    args = parser.parse_args()
    policies = ["fixed", "adaptive"] if args.policy == "both" else [args.policy]
    root = Path(tempfile.mkdtemp(prefix="adkv-talk-bench-"))
    rules = root / "rules.toml"
    rules.write_text(f'fallback = "{LONG_REPLY}"\n')  # every turn: a ~25 s reply
    if args.only == "jitter":
        with PulseServer.start(root / "pulse") as pulse:
            runs = jitter_runs(pulse, policies, args.replies)
        shutil.rmtree(root, ignore_errors=True)
        print("\n== adkvoice talk benchmark: the speaker's jitter buffer (virtual speaker) ==")
        report_jitter(runs, float("nan"), args.png)
        return
    with PulseServer.start(root / "pulse") as pulse:
        speech = make_speech(root)
        print("1/4 in-process, burst delivery, echo path …", flush=True)
        burst = run_child(pulse, speech, rules, 0.0, args.cycles, 0.0, echo=True)
        print("2/4 in-process, real-time delivery …", flush=True)
        steadies = {
            policy: run_child(
                pulse, speech, rules, 1.0, 0, args.steady_s, echo=False, policy=policy
            )
            for policy in policies
        }
        steady = steadies[policies[-1]]
        fed = run_feeder(pulse, args.steady_s, 0.0)
        fed_jitter = run_feeder(pulse, args.steady_s, 30.0)
        print("3/4 the jitter buffer …", flush=True)
        runs = jitter_runs(pulse, policies, args.replies)
        print("4/4 the talk process …", flush=True)
        procs = []
        with emulator_process(1.0, rules) as client:
            w = args.cpu_window_s
            procs.append(
                talk_process(
                    pulse,
                    speech,
                    client,
                    root,
                    "echo cancellation, echo path",
                    echo=True,
                    window_s=w,
                )
            )
            procs.append(
                talk_process(
                    pulse,
                    speech,
                    client,
                    root,
                    "--no-aec, headphones",
                    "--no-aec",
                    echo=False,
                    window_s=w,
                )
            )
            procs.append(
                talk_process(
                    pulse,
                    speech,
                    client,
                    root,
                    "--no-aec, echo path",
                    "--no-aec",
                    echo=True,
                    window_s=w,
                )
            )
    shutil.rmtree(root, ignore_errors=True)
    report(burst, steady, fed, fed_jitter, procs)
    mic = pct(burst.mic_callback_to_sent, 50)
    print("\n-- the emulator at real time, one long reply, by prebuffer policy --")
    for policy, g in steadies.items():
        print(
            f"{policy:<9} voice-to-voice added {ms(pct(g.local_v2v, 50) + mic)}  "
            f"underruns {g.steady_underruns} in {g.steady_s:.1f} s of steady delivery"
        )
    report_jitter(runs, mic, args.png)


def jitter_runs(pulse: PulseServer, policies: list[str], replies: int) -> list[JitterFigures]:
    runs = []
    for delivery in ("steady", "bursty"):
        for policy in policies:
            print(f"   {delivery} delivery, {policy} prebuffer …", flush=True)
            runs.append(run_jitter(pulse, policy, delivery, replies))
    return runs


if __name__ == "__main__":
    main()
