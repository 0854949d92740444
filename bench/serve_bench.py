"""How many real-time audio sessions one `adkvoice serve` process holds, per protocol.

Three processes, all on 127.0.0.1:

- the emulator (`serve_bench_procs.py` run as a script): the Gemini Live API emulator,
  replies paced at real time (24 kHz PCM), energy VAD on the 16 kHz input, placeholder
  transcripts, synthetic voice (so the emulator's own CPU stays small);
- the server: `python -m adkvoice serve --backend gemini` with the emulator's environment
  (the bundled agent, the real ADK, a SQLite session store in a temporary directory);
- the load generator (this process, `serve_bench_clients.py`): N sessions, each sending
  16 kHz s16le audio in CHUNK_MS chunks on a real-time schedule (espeak-ng speech, then
  silence, so the emulator's VAD ends the utterance and the agent answers) and receiving
  the replies, over one of the protocols serve hosts:
  - ext:   adkvoice.v1 at /ws/{id} (binary PCM frames both ways);
  - seeds: the ADK WS sample at /ws/{id} (base64 JSON both ways);
  - sse:   the sample's SSE version: GET /events/{id} (base64 JSON, text/event-stream) and
           one POST /send/{id} per chunk on a keep-alive connection (pipelined);
  - bidi:  ADK's bidi-demo at /ws/{user_id}/{session_id} (binary PCM up, one ADK Event
           JSON per frame down, base64url audio).

Added latency, measured with timestamps carried inside the audio itself (all processes
read the same CLOCK_MONOTONIC):

- up:   the client hands a 16 kHz chunk to its socket → the emulator receives that chunk
        from ADK (client → serve → LiveRequestQueue → google-genai → emulator). serve
        joins frames under 40 ms into 40 ms chunks (server/uplink.py): with --chunk-ms
        under 40, only the first frame of each chunk carries a timestamp the emulator
        reads, the one that waited longest;
- down: the emulator hands a 24 kHz reply chunk to its WebSocket → the client receives
        it (emulator → google-genai → ADK run_live → serve → client).

Both are pure relay delay through `serve` (and its ADK). N steps up (1, 2, 4, ...) until
the p99 of either exceeds the threshold (50 ms) or a session sees an error. Per step:
p50/p99 both ways, turns answered, CPU and RSS of serve (total and per session above
idle), the CPU of the emulator, of the load generator and of the rest of the machine, how
late the generator sent (if large, the generator is the limit), for sse the POSTs' p99.

Then bytes on the wire per second of audio, counted by a TCP proxy (all application
bytes: HTTP, upgrade, WebSocket framing, JSON; not TCP/IP headers): each WebSocket
protocol with and without permessage-deflate, sse (serve does not compress) with one POST
per chunk and one per 200 ms (the sample's page). Last, one table of it all per protocol.

Run: .venv/bin/python bench/serve_bench.py [--protocol all|ext|seeds|sse|bidi|both]
     [--steps 1,2,4,8,16,32,64] [--step-s 12] [--quick]
     [--chunk-ms 8 [--no-coalesce]]   (a browser's 8 ms frames; serve without coalescing)
Every loop is bounded in count and time; the script stops by itself (--budget-s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from serve_bench_clients import (
    CONNECT_TIMEOUT_S,
    INPUT_RATE,
    OUTPUT_RATE,
    PROTOCOLS,
    SUBPROTOCOL,
    Counter,
    LoadSession,
    Script,
    Session,
    SessionResult,
    counting_proxy,
    make_script,
    new_session,
    percentile,
)
from serve_bench_procs import (
    Emulator,
    Server,
    Usage,
    emulator_role,
    machine_busy_seconds,
    rss_mib,
)

from adkvoice.server.uplink import COALESCE_ENV  # serve's switch for measuring

# What other benches import from here.
__all__ = [
    "INPUT_RATE",
    "OUTPUT_RATE",
    "SETTLE_S",
    "SUBPROTOCOL",
    "Emulator",
    "LoadSession",
    "Script",
    "Server",
    "machine_busy_seconds",
    "make_script",
    "percentile",
]

SETTLE_S = 1.0  # the first second of each step is not measured
LABELS = {"ext": SUBPROTOCOL, "seeds": "seeds", "sse": "sse", "bidi": "bidi-demo"}
TITLES = {
    "ext": "binary audio",
    "seeds": "base64 JSON audio",
    "sse": "seeds JSON as text/event-stream down, one POST /send per chunk up",
    "bidi": "binary audio up, one ADK Event JSON per frame down",
}
WIRE_SETTLE_S = 3.0  # from opening the sessions to the first chunk, in the bytes runs
SAMPLE_POST_MS = 200  # the SSE sample's page POSTs its microphone audio this often
QUICK = {"steps": "1,2", "step_s": 7.0, "retries": 0}


# ------------------------------------------------------------------------------- a step


@dataclass
class StepFigures:
    sessions: int
    up_ms: list[float]
    down_ms: list[float]
    late_ms: list[float]
    response_ms: list[float]
    turns: int
    errors: list[str]
    cpu: dict[str, float]
    rss: dict[str, float]
    emulator_lag_p99: float
    post_ms: list[float] = field(default_factory=list)


async def run_step(
    n: int,
    *,
    protocol: str,
    server: Server,
    emulator: Emulator,
    usage: Usage,
    script: Script,
    deflate: bool,
    step_s: float,
    tag: str,
    settle_s: float = SETTLE_S,
) -> StepFigures:
    sessions = [
        new_session(
            protocol,
            server.base_url(),
            f"{tag}-{n}-{i}",
            deflate=deflate,
            script=script,
            phase=(i * len(script.chunks)) // n,
        )
        for i in range(n)
    ]
    errors: list[str] = []
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            results = await asyncio.gather(*(s.open() for s in sessions), return_exceptions=True)
        errors += [f"connect: {type(r).__name__} {r}" for r in results if isinstance(r, Exception)]
    except TimeoutError:
        errors.append(f"connect: {n} sessions did not connect within {CONNECT_TIMEOUT_S:.0f} s")
    if not errors:
        await emulator.collect()  # forget what came before this step
        await asyncio.sleep(0.5)
        t0 = time.monotonic() + 0.2
        window_start = int((t0 + settle_s) * 1e9)
        usage.start()

        async def sample_rss() -> None:
            while True:
                await asyncio.sleep(1.0)
                usage.sample_rss()

        sampler = asyncio.create_task(sample_rss())
        try:
            async with asyncio.timeout(step_s + 30):
                await asyncio.gather(*(s.talk(t0, step_s) for s in sessions))
        except TimeoutError:
            errors.append("the sessions did not finish sending in time")
        sampler.cancel()
        await asyncio.sleep(0.3)  # replies in flight
        cpu = usage.cpu_percent()
        usage.sample_rss()
        report = await emulator.collect()
        window_end = int((t0 + step_s) * 1e9)
    else:
        cpu, report, window_start, window_end = {}, {"arrivals": [], "lag_ms": []}, 0, 0
    await asyncio.gather(*(s.close() for s in sessions))
    if not await server.wait_idle():
        errors.append("the server still held sessions 30 s after they closed")
    up = [(rcv - snt) / 1e6 for snt, rcv in report["arrivals"] if window_start <= snt < window_end]
    down: list[float] = []
    late: list[float] = []
    response: list[float] = []
    post: list[float] = []
    turns = 0
    for s in sessions:
        down += [ms for snt, ms in s.result.down if window_start <= snt < window_end]
        late += s.result.late_ms
        response += s.result.response_ms
        post += [ms for snt, ms in s.result.post_ms if window_start <= snt < window_end]
        turns += s.result.turns
        errors += s.result.errors
        if not errors and step_s >= script.cycle_s + 1 and s.result.turns == 0:
            errors.append("a session got no reply")
    return StepFigures(
        sessions=n,
        up_ms=up,
        down_ms=down,
        late_ms=late,
        response_ms=response,
        turns=turns,
        errors=errors,
        cpu=cpu,
        rss=dict(usage.peak_rss),
        emulator_lag_p99=percentile(report["lag_ms"], 99),
        post_ms=post,
    )


async def route_missing(server: Server, protocol: str) -> str | None:
    """Why serve cannot take `protocol` (its route is not there), or None. Only bidi-demo
    is probed: a WebSocket handshake to /ws/{user_id}/{session_id}."""
    if protocol != "bidi":
        return None
    from websockets.exceptions import InvalidHandshake

    script = Script([b"\0\0" * 160], 0, 0.01)
    probe = new_session(protocol, server.base_url(), "probe", deflate=False, script=script, phase=0)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await probe.open()
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        return f"serve has no /ws/{{user_id}}/{{session_id}} route ({type(exc).__name__}: {exc})"
    finally:
        await probe.close()
        await server.wait_idle()
    return None


# ---------------------------------------------------------------------- bytes on the wire


@dataclass
class WireRow:
    label: str
    protocol: str
    deflate: bool | None  # None: not a WebSocket
    counter: Counter
    result: SessionResult

    @property
    def up(self) -> float:
        return self.counter.up / max(self.result.sent_audio_s, 1e-9)

    @property
    def down(self) -> float:
        """Per second of reply audio; for sse the event stream only (see `answers`)."""
        stream = self.counter.down - self.result.post_answer_bytes
        return stream / max(self.result.reply_audio_s, 1e-9)

    @property
    def answers(self) -> float:
        """sse: the POST answers (down) per second of audio sent up."""
        return self.result.post_answer_bytes / max(self.result.sent_audio_s, 1e-9)


async def wire_bytes(
    server: Server, protocols: list[str], script: Script, sample_script: Script, duration_s: float
) -> list[WireRow]:
    """One session per row, concurrently, each through its own proxy."""
    target = int(server.url.rsplit(":", 1)[1])
    configs: list[tuple[str, str, bool | None, Script]] = []
    for proto in protocols:
        if proto == "sse":
            chunk_ms = round(script.chunk_s * 1000)
            configs.append((f"sse {chunk_ms} ms", proto, None, script))
            configs.append((f"sse {SAMPLE_POST_MS} ms", proto, None, sample_script))
        else:
            configs += [(LABELS[proto], proto, d, script) for d in (False, True)]
    async with contextlib.AsyncExitStack() as stack:
        proxies = [await stack.enter_async_context(counting_proxy(target)) for _ in configs]
        sessions: list[Session] = [
            new_session(
                proto,
                server.base_url(port),
                f"wire-{i}",
                deflate=bool(deflate),
                script=chosen,
                phase=0,
            )
            for i, ((_, proto, deflate, chosen), (port, _)) in enumerate(
                zip(configs, proxies, strict=True)
            )
        ]
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            await asyncio.gather(*(s.open() for s in sessions))
        # serve's event loop is busy for a while with each session it starts; audio sent
        # meanwhile arrives in a burst that sse's POSTs (answered one by one) can turn
        # into 429s. Bytes are what is counted here, so talk once the starts are over.
        t0 = time.monotonic() + WIRE_SETTLE_S
        async with asyncio.timeout(duration_s + 30):
            await asyncio.gather(*(s.talk(t0, duration_s) for s in sessions))
        tail = max(s.cycle_s - s.speech_chunks * s.chunk_s for s in (script, sample_script))
        await asyncio.sleep(tail)  # the last reply
        await asyncio.gather(*(s.close() for s in sessions))
        return [
            WireRow(label, proto, deflate, counter, s.result)
            for (label, proto, deflate, _), (_, counter), s in zip(
                configs, proxies, sessions, strict=True
            )
        ]


def print_wire(rows: list[WireRow]) -> None:
    print(
        f"{'protocol':<12} {'deflate':>7} {'up B/s of audio':>16} "
        f"{'down B/s of audio':>18}   (raw PCM: up 32000, down 48000)"
    )
    for row in rows:
        deflate = "-" if row.deflate is None else "on" if row.deflate else "off"
        note = ""
        if row.protocol == "sse":
            posts = len(row.result.post_ms)
            each = row.result.post_answer_bytes / max(posts, 1)
            rate = posts / max(row.result.sent_audio_s, 1e-9)
            note = (
                f"   + POST answers down: {row.answers:,.0f} B per s of audio sent "
                f"({rate:.0f}/s, {each:.0f} B each)"
            )
        if row.result.errors:
            note += f"   errors: {row.result.errors[:3]}"
        print(f"{row.label:<12} {deflate:>7} {row.up:>16,.0f} {row.down:>18,.0f}{note}")


# ---------------------------------------------------------------------------------- main


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def print_step_header(post: bool = False) -> None:
    print(
        f"{'N':>4} {'up p50':>7} {'up p99':>7} {'dn p50':>7} {'dn p99':>7} {'turns':>6} "
        f"{'serve CPU%':>10} {'/sess':>6} {'RSS MiB':>8} {'/sess':>6} {'emu CPU%':>8} "
        f"{'gen CPU%':>8} {'other CPU%':>10} {'gen late p99':>12} {'reply p50':>9} "
        + (f"{'POST p99':>8} " if post else "")
        + "errors"
    )


def print_step(fig: StepFigures, idle_cpu: float, idle_rss: float, post: bool = False) -> None:
    serve_cpu = fig.cpu.get("serve", math.nan)
    rss = fig.rss.get("serve", math.nan)
    print(
        f"{fig.sessions:>4} {fmt(percentile(fig.up_ms, 50)):>7} "
        f"{fmt(percentile(fig.up_ms, 99)):>7} {fmt(percentile(fig.down_ms, 50)):>7} "
        f"{fmt(percentile(fig.down_ms, 99)):>7} {fig.turns:>6} {fmt(serve_cpu, 0):>10} "
        f"{fmt((serve_cpu - idle_cpu) / fig.sessions):>6} {fmt(rss, 0):>8} "
        f"{fmt((rss - idle_rss) / fig.sessions, 2):>6} "
        f"{fmt(fig.cpu.get('emulator', math.nan), 0):>8} "
        f"{fmt(fig.cpu.get('generator', math.nan), 0):>8} "
        f"{fmt(fig.cpu.get('other', math.nan), 0):>10} "
        f"{fmt(percentile(fig.late_ms, 99)):>12} {fmt(percentile(fig.response_ms, 50), 0):>9} "
        + (f"{fmt(percentile(fig.post_ms, 99)):>8} " if post else "")
        + f"{len(fig.errors)}"
        + (": " + "; ".join(sorted(set(fig.errors))[:3]) if fig.errors else ""),
        flush=True,
    )


@contextlib.asynccontextmanager
async def serving(
    emulator: Emulator, args: argparse.Namespace, tmp: Path, name: str, max_sessions: int
) -> AsyncIterator[Server]:
    """A fresh serve process (so its memory figures start clean)."""
    spec = args.sessions if args.sessions != "sqlite" else str(tmp / f"{name}.db")
    server = await Server.start(emulator.env, spec, max_sessions, tmp / "data")
    try:
        yield server
    finally:
        await server.stop()
        if server.proc.returncode not in (0, None, -15):
            print(f"serve exited {server.proc.returncode}:\n" + "\n".join(server.log[-20:]))


@dataclass
class LadderResult:
    protocol: str
    line: str  # the summary sentence
    held: int = 0
    cpu_per_session: float = math.nan  # serve's, above idle, at the largest step held
    missing: str | None = None  # why the protocol could not be measured


async def ladder(
    proto: str,
    steps: list[int],
    emulator: Emulator,
    script: Script,
    args: argparse.Namespace,
    tmp: Path,
    deadline: float,
) -> LadderResult:
    """Step N up on a fresh server until p99 > the threshold or errors."""
    label = LABELS[proto]
    print(f"\n== {label} ({TITLES[proto]})", flush=True)
    held = 0
    held_cpu = math.nan
    failed: StepFigures | None = None  # the best attempt at the step that failed
    post = proto == "sse"
    async with serving(emulator, args, tmp, proto, max(steps) + 8) as server:
        assert server.proc.pid is not None
        assert emulator.proc.pid is not None
        if (missing := await route_missing(server, proto)) is not None:
            print(missing)
            return LadderResult(proto, f"{label}: not measured: {missing}", missing=missing)
        usage = Usage(
            {"serve": server.proc.pid, "emulator": emulator.proc.pid, "generator": os.getpid()}
        )
        # One short conversation first: what the first session warms up (imports, caches)
        # is not a per-session cost.
        common = {
            "protocol": proto,
            "server": server,
            "emulator": emulator,
            "usage": usage,
            "script": script,
            "deflate": args.deflate,
            "settle_s": args.settle_s,
        }
        warm = await run_step(1, **common, step_s=script.cycle_s, tag=f"{proto}w")
        if warm.errors:
            print(f"warm-up session: {'; '.join(sorted(set(warm.errors))[:3])}")
        usage.start()
        await asyncio.sleep(2.0)
        idle_cpu, idle_rss = usage.cpu_percent()["serve"], rss_mib(server.proc.pid)
        print(f"serve idle after a warm-up session: CPU {idle_cpu:.1f} %, RSS {idle_rss:.0f} MiB")
        print_step_header(post)
        for n in steps:
            # A step that fails is run again (--retries) before it counts: on a shared
            # machine a burst of someone else's work can spoil one run.
            attempts: list[StepFigures] = []
            while len(attempts) <= args.retries:
                if time.monotonic() + args.step_s + 20 > deadline:
                    print(f"(this protocol's share of the {args.budget_s:.0f} s budget is used)")
                    break
                tag = f"{proto}{len(attempts)}"
                fig = await run_step(n, **common, step_s=args.step_s, tag=tag)
                print_step(fig, idle_cpu, idle_rss, post)
                attempts.append(fig)
                await asyncio.sleep(1.0)
                if badness(fig) <= (0, args.max_p99_ms):
                    held = n
                    held_cpu = (fig.cpu.get("serve", math.nan) - idle_cpu) / n
                    break
            if held != n:
                failed = min(attempts, key=badness) if attempts else None
                break
    line = f"{label}: holds {held} session(s) with p99 ≤ {args.max_p99_ms:.0f} ms"
    if failed is not None:
        line += (
            f"; at {failed.sessions}: p99 {fmt(worst_p99(failed))} ms, "
            f"{len(failed.errors)} error(s) (best of {len(attempts)} run(s))"
        )
    else:
        line += f" (largest step tried: {held})"
    return LadderResult(proto, line, held=held, cpu_per_session=held_cpu)


def worst_p99(fig: StepFigures) -> float:
    """The larger of the up and down p99 (NaN if nothing was measured)."""
    return max(percentile(fig.up_ms, 99), percentile(fig.down_ms, 99))


def badness(fig: StepFigures) -> tuple[int, float]:
    p99 = worst_p99(fig)
    return len(fig.errors), math.inf if math.isnan(p99) else p99


def print_table(results: list[LadderResult], rows: list[WireRow], max_p99_ms: float) -> None:
    """Per protocol: sessions held, CPU per session, bytes per second of audio."""

    def pair(proto: str, attr: str) -> str:
        found = {r.deflate: getattr(r, attr) for r in rows if r.protocol == proto}
        if not found:
            return "-"
        if None in found:  # sse: one POST per chunk (the latency runs) / per 200 ms
            values = [getattr(r, attr) for r in rows if r.protocol == proto]
            return " / ".join(f"{v:,.0f}" for v in values)
        return " / ".join(f"{found[d]:,.0f}" if d in found else "-" for d in (False, True))

    held_title = f"sessions held (p99 ≤ {max_p99_ms:.0f} ms)"
    print(
        f"\n{'protocol':<12} | {held_title:>27} | {'CPU %/session':>13} | "
        f"{'up B/s per audio s':>18} | {'down B/s per audio s':>20}"
    )
    print(f"{'-' * 12}-+-{'-' * 27}-+-{'-' * 13}-+-{'-' * 18}-+-{'-' * 20}")
    for res in results:
        held = "route missing" if res.missing else str(res.held)
        up, down = pair(res.protocol, "up"), pair(res.protocol, "down")
        print(
            f"{LABELS[res.protocol]:<12} | {held:>27} | {fmt(res.cpu_per_session):>13} | "
            f"{up:>18} | {down:>20}"
        )
    print(
        "B/s: WebSocket protocols without / with permessage-deflate; sse with one POST per "
        f"chunk / per {SAMPLE_POST_MS} ms (no compression). CPU: serve's, in % of one core, "
        "above idle, per session, at the largest step held."
    )
    answers = [r for r in rows if r.protocol == "sse"]
    if answers:
        figures = " / ".join(f"{r.answers:,.0f}" for r in answers)
        print(
            f"sse down is the event stream; the POST answers add {figures} B/s down "
            "per s of audio sent."
        )


async def bench(args: argparse.Namespace) -> None:
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    protocols = {
        "both": ["ext", "seeds"],
        "all": list(PROTOCOLS),
    }.get(args.protocol, [args.protocol])
    deadline = time.monotonic() + args.budget_s
    if args.no_coalesce:  # read by every serve this bench starts (its environment)
        os.environ[COALESCE_ENV] = "off"
    script = await make_script(args.chunk_ms, args.silence_s)
    sample_script = await make_script(SAMPLE_POST_MS, args.silence_s)
    print(
        f"serve_bench: {os.cpu_count()} cores, python {sys.version.split()[0]}; "
        f"{args.chunk_ms} ms chunks at real time, {script.speech_chunks * script.chunk_s:.1f} s "
        f"speech + {args.silence_s:.1f} s silence per {script.cycle_s:.1f} s cycle; "
        f"{args.step_s:.0f} s per step (first {args.settle_s:.1f} s not measured); "
        f"permessage-deflate {'on' if args.deflate else 'off'}; "
        f"sessions store {args.sessions}; emulator voice {args.tts}; "
        f"serve coalesces audio up: {'off' if args.no_coalesce else 'on'}; "
        f"protocols {', '.join(protocols)}"
    )
    print(
        "up = client send → emulator receives the chunk; dn = emulator sends a reply chunk → "
        "client receives it (ms, through serve and its ADK). CPU in % of one core; "
        "/sess = above idle, per session. gen = this load generator; gen late = how late it "
        "sent chunks. reply = end of speech → first reply audio (includes the emulator's "
        "500 ms VAD silence). POST p99 = round trip of sse's POST /send."
    )
    wire_reserve = 40.0
    with tempfile.TemporaryDirectory(prefix="adkvoice-bench-") as tmp_name:
        tmp = Path(tmp_name)
        emulator = await Emulator.start(args.tts)
        try:
            results: list[LadderResult] = []
            for i, proto in enumerate(protocols):
                # Each protocol gets an equal share of what is left (what one leaves over
                # goes to the next).
                share = (deadline - wire_reserve - time.monotonic()) / (len(protocols) - i)
                until = time.monotonic() + share
                results.append(await ladder(proto, steps, emulator, script, args, tmp, until))
            measurable = [r.protocol for r in results if r.missing is None]
            rows: list[WireRow] = []
            if measurable and time.monotonic() + 30 < deadline:
                duration = 2 * script.cycle_s
                print(f"\n== bytes on the wire ({duration:.0f} s of audio each way per row)")
                async with serving(emulator, args, tmp, "wire", 16) as server:
                    rows = await wire_bytes(server, measurable, script, sample_script, duration)
                print_wire(rows)
            print("\n" + "\n".join(r.line for r in results))
            print_table(results, rows, args.max_p99_ms)
        finally:
            await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bench", "emulator"], default="bench")
    parser.add_argument("--steps", default="1,2,4,8,16,32,64", help="session counts to try")
    parser.add_argument("--step-s", type=float, default=12.0, help="seconds of audio per step")
    parser.add_argument(
        "--chunk-ms",
        type=int,
        default=40,
        choices=[8, 10, 20, 40],
        help="audio per frame the clients send (a browser's AudioWorklet: 8)",
    )
    parser.add_argument(
        "--no-coalesce",
        action="store_true",
        help=f"serve sends every frame to the model as it comes ({COALESCE_ENV}=off)",
    )
    parser.add_argument("--silence-s", type=float, default=3.5, help="silence after speech")
    parser.add_argument(
        "--protocol", choices=[*PROTOCOLS, "both", "all"], default="all", help="both: ext, seeds"
    )
    parser.add_argument("--max-p99-ms", type=float, default=50.0)
    parser.add_argument(
        "--settle-s",
        type=float,
        default=SETTLE_S,
        help="seconds at the start of each step not measured (the sessions' start)",
    )
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="no permessage-deflate"
    )
    parser.add_argument("--sessions", default="sqlite", help="sqlite (a temp file) or memory")
    parser.add_argument("--tts", choices=["synthetic", "espeak", "auto"], default="synthetic")
    parser.add_argument("--budget-s", type=float, default=900.0, help="stop after this long")
    parser.add_argument("--retries", type=int, default=1, help="runs again of a failing step")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: steps 1,2 of 7 s, no retries"
    )
    args = parser.parse_args()
    if args.role == "emulator":
        emulator_role(args.tts)
        return
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
