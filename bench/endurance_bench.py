"""Figures for a long spoken conversation through the embedded backend, and for goAway.

1. Memory: N emulated minutes (default 60) of 16 kHz microphone audio streamed through
   `EmbeddedBackend` (the real ADK `run_live`) to the in-process emulator, faster than real
   time. The microphone carries speech-like tone bursts and pauses, so the emulator's voice
   activity detection makes turns and the agent answers in audio; while the agent speaks
   the microphone sends silence as long as the reply. Emulated time is microphone audio
   sent. Each cycle waits for the reply's end before sending more, so no queue grows.
   Every emulated minute: RSS after a full garbage collection, and the turns so far; then
   the slope over the second half (MiB per emulated hour). Flat means no audio is kept.
   With --tracemalloc, the allocation sites and object types that grew over the second
   half are listed.
2. goAway: in a conversation, the emulator sends goAway (with a fresh handle first, and
   without) and a typed turn follows at once; measured over --trials: goAway → the
   resumed connection's setup, and goAway → the first event of the reply.

Run: .venv/bin/python bench/endurance_bench.py [--minutes N] [--trials N] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
)
RATE = 16_000
CHUNK_S = 0.1  # microphone chunk, as talk sends
REPLY_TIMEOUT_S = 15.0
UTTERANCES = (  # what the "user" says, cycled: 0.8 s to 2 s of speech each
    "hello there how are you",
    "please tell me about the weather tomorrow in paris",
    "thanks",
    "and what about the day after that one",
)


# ---- helpers --------------------------------------------------------------------------


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (minute, MiB), in MiB per hour."""
    if len(points) < 2:
        return float("nan")
    minutes = np.array([m for m, _ in points])
    mib = np.array([v for _, v in points])
    return float(np.polyfit(minutes, mib, 1)[0] * 60)


def speech_16k(text: str) -> bytes:
    from adkvoice.emulator.speech import resample, synthesize_tones

    return resample(synthesize_tones(text), 24_000, RATE)


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(RATE * seconds)


def chunked(pcm: bytes) -> list[bytes]:
    size = 2 * int(RATE * CHUNK_S)
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


@dataclass
class Listener:
    """Drains the backend's events; counts reply ends and agent audio."""

    turns: int = 0
    agent_audio_s: float = 0.0
    turn_done: asyncio.Event = field(default_factory=asyncio.Event)
    reply_started: asyncio.Event = field(default_factory=asyncio.Event)
    first_reply_at: float = 0.0
    kinds: Counter[str] = field(default_factory=Counter)
    failure: BaseException | None = None

    async def run(self, events: AsyncIterator[Any]) -> None:
        from adkvoice.events import AgentAudio, AgentText, Interrupted, Transcript, TurnComplete

        try:
            async for event in events:
                self.kinds[type(event).__name__] += 1
                agent_says = isinstance(event, AgentAudio | AgentText) or (
                    isinstance(event, Transcript) and event.speaker == "agent"
                )
                if agent_says and not self.reply_started.is_set():
                    self.first_reply_at = time.perf_counter()
                    self.reply_started.set()
                if isinstance(event, AgentAudio):
                    self.agent_audio_s += event.duration_s
                elif isinstance(event, TurnComplete | Interrupted):
                    self.turns += 1
                    self.turn_done.set()
        except Exception as exc:
            self.failure = exc
            self.turn_done.set()
            self.reply_started.set()

    def expect_reply(self) -> None:
        self.turn_done.clear()
        self.reply_started.clear()


@contextlib.asynccontextmanager
async def conversation(modality: str) -> AsyncIterator[tuple[Any, Listener]]:
    """An embedded backend (bundled agent, new conversation) and a listener on its events.

    One emulator serves the whole run: ADK's agent keeps its genai client, and so the
    emulator's address, for the life of the process.
    """
    from adkvoice.agents.loading import load_bundled_agent
    from adkvoice.backends.embedded import EmbeddedBackend
    from adkvoice.store.sessions import open_store

    backend = EmbeddedBackend(
        load_bundled_agent(),
        modality=modality,  # type: ignore[arg-type]
        endpoint_label="emulator",
        session_service=open_store(SESSIONS[0]).service,
    )
    await backend.start()
    listener = Listener()
    task = asyncio.create_task(listener.run(backend.events()))
    try:
        yield backend, listener
    finally:
        await backend.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---- 1: memory over a long conversation ------------------------------------------------


@dataclass
class Sample:
    minute: int
    rss_mib: float
    turns: int
    wall_s: float


async def endurance(
    emulator: Any, minutes: int, use_tracemalloc: bool
) -> tuple[list[Sample], list[str]]:
    notes: list[str] = []
    speech = [speech_16k(text) for text in UTTERANCES]
    samples: list[Sample] = []
    half_snapshot: tracemalloc.Snapshot | None = None
    half_types: Counter[str] = Counter()
    async with conversation("AUDIO") as (backend, listener):
        started = time.perf_counter()
        sent_s = 0.0
        next_minute = 1
        missed = 0
        cycle = 0

        async def send(pcm: bytes) -> None:
            nonlocal sent_s
            for piece in chunked(pcm):
                await backend.send_audio(piece)
                sent_s += len(piece) / 2 / RATE
            await asyncio.sleep(0)  # let ADK drain the queue as it fills

        gc.collect()
        samples.append(Sample(0, rss_mib(), 0, 0.0))
        while sent_s < minutes * 60:
            listener.expect_reply()
            audio_before = listener.agent_audio_s
            await send(silence(0.3) + speech[cycle % len(speech)] + silence(0.7))
            cycle += 1
            try:
                async with asyncio.timeout(REPLY_TIMEOUT_S):
                    await listener.turn_done.wait()
            except TimeoutError:
                missed += 1
            if listener.failure is not None:
                notes.append(f"the conversation ended: {listener.failure}")
                break
            # The microphone keeps listening (to silence) while the agent speaks.
            await send(silence(listener.agent_audio_s - audio_before))
            while sent_s >= next_minute * 60:
                gc.collect()
                sample = Sample(
                    next_minute, rss_mib(), listener.turns, time.perf_counter() - started
                )
                samples.append(sample)
                print(
                    f"  minute {sample.minute:3d}: {sample.rss_mib:7.1f} MiB, "
                    f"{sample.turns:5d} turns, {sample.wall_s:6.1f} s wall",
                    flush=True,
                )
                if use_tracemalloc and next_minute == minutes // 2:
                    half_snapshot = tracemalloc.take_snapshot()
                    half_types = type_counts()
                next_minute += 1
        if missed:
            notes.append(f"{missed} utterances got no reply within {REPLY_TIMEOUT_S:.0f} s")
        stats = emulator.stats
        notes.append(
            f"emulator: {stats.utterances} utterances, {stats.turns_answered} turns answered, "
            f"{stats.audio_in_bytes / 2 / RATE / 60:.1f} min of audio in, "
            f"{stats.audio_out_bytes / 2 / 24_000 / 60:.1f} min out, "
            f"{len(emulator.handles)} resumption handles held, "
            f"{stats.connections_opened} connection(s), {len(stats.compressions)} compressions"
        )
        if stats.setup_log:
            notes.append(f"context window compression asked for: {stats.setup_log[-1].compression}")
        if use_tracemalloc and half_snapshot is not None:
            gc.collect()
            notes.extend(growth_report(half_snapshot, tracemalloc.take_snapshot(), half_types))
    return samples, notes


def type_counts() -> Counter[str]:
    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


def growth_report(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, before_types: Counter[str]
) -> list[str]:
    grown = type_counts()  # first, so the report's own objects are not counted
    grown.subtract(before_types)
    skip = (tracemalloc.Filter(False, tracemalloc.__file__),)
    diffs = after.filter_traces(skip).compare_to(before.filter_traces(skip), "lineno")
    emulator_bytes = sum(
        d.size_diff for d in diffs if "/adkvoice/emulator/" in d.traceback[0].filename
    )
    lines = ["allocation sites that grew over the second half (tracemalloc):"]
    for stat in [d for d in diffs if d.size_diff > 0][:15]:
        frame = stat.traceback[0]
        lines.append(
            f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  "
            f"{frame.filename}:{frame.lineno}"
        )
    lines.append(f"  of which in adkvoice/emulator: {emulator_bytes / 1024:+.1f} KiB")
    lines.append("object types that grew over the second half (gc):")
    for name, count in grown.most_common(10):
        if count > 0:
            lines.append(f"  {count:+8d} {name}")
    return lines


# ---- 2: goAway --------------------------------------------------------------------------


@dataclass
class GoAwayFigures:
    to_setup: list[float] = field(default_factory=list)  # goAway → resumed setup accepted
    to_reply: list[float] = field(default_factory=list)  # goAway → first reply event
    lost: int = 0  # typed turns never answered
    on_old: int = 0  # typed turns answered on the connection that was told to go away


async def go_away_trials(emulator: Any, trials: int, send_handle: bool) -> GoAwayFigures:
    """goAway, then a typed turn at once, `trials` times in one conversation."""
    figures = GoAwayFigures()
    log = emulator.stats.connection_log
    async with conversation("AUDIO") as (backend, listener):
        listener.expect_reply()
        await backend.send_text("hello")
        try:
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                await listener.turn_done.wait()
        except TimeoutError:
            print("  no answer to the first typed turn")
            figures.lost = trials
            return figures
        for _ in range(trials):
            old = log[-1]
            old_turns = old.turns_answered
            listener.expect_reply()
            started = time.perf_counter()
            started_mono = time.monotonic()  # the emulator stamps connections with this clock
            await emulator.faults.go_away_now(time_left_s=10.0, send_handle=send_handle)
            await backend.send_text("and now?")
            try:
                async with asyncio.timeout(REPLY_TIMEOUT_S):
                    await listener.reply_started.wait()
                    figures.to_reply.append(listener.first_reply_at - started)
                    await listener.turn_done.wait()
            except TimeoutError:
                figures.lost += 1
            if listener.failure is not None:
                print(f"  the conversation ended: {listener.failure}")
                break
            figures.on_old += old.turns_answered > old_turns
            resumed = [r for r in log if r.resumed and r.opened_at >= started_mono]
            if resumed:
                figures.to_setup.append(resumed[0].opened_at - started_mono)
    return figures


# ---- report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f} ms"


async def main_async(args: argparse.Namespace) -> None:
    from adkvoice.config import point_genai_at
    from adkvoice.emulator import Emulator, EmulatorOptions

    options = EmulatorOptions(tts="synthetic", stt="placeholder", audio_pacing=0.0)
    async with Emulator(options) as emulator:
        point_genai_at(emulator.client_env())
        await run_all(emulator, args)


async def run_all(emulator: Any, args: argparse.Namespace) -> None:
    if args.tracemalloc:
        tracemalloc.start()
    print(f"1. memory over {args.minutes} emulated minutes of microphone audio (AUDIO replies)")
    wall = time.perf_counter()
    samples, notes = await endurance(emulator, args.minutes, args.tracemalloc)
    wall = time.perf_counter() - wall
    print()
    print("  minute   RSS MiB   turns")
    for sample in samples:
        print(f"  {sample.minute:6d}   {sample.rss_mib:7.1f}   {sample.turns:5d}")
    half = [s for s in samples if s.minute >= args.minutes / 2]
    slope = slope_per_hour([(s.minute, s.rss_mib) for s in half])
    emulated_s = samples[-1].minute * 60 if samples else 0
    print(f"  slope over the second half: {slope:+.2f} MiB per emulated hour")
    if args.tracemalloc:
        print("  (with --tracemalloc, RSS includes tracemalloc's own records: read its list)")
    if len(half) >= 2 and half[-1].turns > half[0].turns:
        turns = half[-1].turns - half[0].turns
        turns_per_hour = turns / (half[-1].minute - half[0].minute) * 60
        # What one turn carries: the utterance with its pauses in, the spoken reply out.
        stats = emulator.stats
        audio_kib = (stats.audio_in_bytes + stats.audio_out_bytes) / 1024
        print(
            f"  that is {slope * 1024 / turns_per_hour:.1f} KiB per turn; one turn carries "
            f"{audio_kib / max(stats.turns_answered, 1):.0f} KiB of audio"
        )
    print(f"  {emulated_s / 60:.0f} emulated minutes in {wall:.0f} s wall")
    for note in notes:
        print(f"  {note}")
    if args.tracemalloc:
        tracemalloc.stop()
    print()
    print(f"2. goAway then a typed turn, {args.trials} trials each")
    for send_handle in (True, False):
        got = await go_away_trials(emulator, args.trials, send_handle)
        label = "with a fresh handle" if send_handle else "without a fresh handle"
        print(
            f"  {label}: goAway → resumed setup p50 {ms(pct(got.to_setup, 50))}, "
            f"max {ms(max(got.to_setup, default=float('nan')))}; goAway → first reply event "
            f"p50 {ms(pct(got.to_reply, 50))}, max {ms(max(got.to_reply, default=float('nan')))}"
            f"; turns lost {got.lost}/{args.trials}, answered on the old connection "
            f"{got.on_old}/{args.trials}"
        )


# The --sessions store, as the commands take it (set once by main).
SESSIONS: list[str] = ["memory"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="emulated minutes of audio")
    parser.add_argument("--trials", type=int, default=20, help="goAway trials per variant")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="list what grew (slows the run ~2x)"
    )
    parser.add_argument(
        "--sessions",
        default=None,
        help="the session store, as --sessions takes it (default: a SQLite file in a "
        "temporary directory, like the commands' default store; or memory)",
    )
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="adkvoice-endurance-")
    SESSIONS[0] = args.sessions or str(Path(scratch.name) / "sessions.db")
    print(f"conversations kept in {SESSIONS[0]}")
    for name in CREDENTIAL_VARS:
        os.environ.pop(name, None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, pid {os.getpid()}")
    try:
        asyncio.run(main_async(args))
    finally:
        scratch.cleanup()


if __name__ == "__main__":
    main()
