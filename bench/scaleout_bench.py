"""The scale-out deployment of deploy/ under load, and how fast a conversation moves when
the instance serving it dies.

All on 127.0.0.1, each a real process: PostgreSQL (private data directory), the Live API
emulator (serve_bench's, with timestamp probes, synthetic voice, replies paced at real
time), two `adkvoice serve --sessions postgresql://…` instances sharing a token, and
nginx with deploy/nginx.conf in front. The load generator (this process) only talks to
nginx.

(a) Capacity. N concurrent sessions, stepped up until a step fails:
    - typed: each session sends a message, waits for the reply to complete, thinks 0.5-1.5 s,
      and again (adkvoice.v1 text frames). first = message sent → first reply text;
      done = → turn complete; open = first for a session's first message, which also
      waits for the live connection to the model. A step holds when no session sees an
      error and p99 first ≤ --max-first-ms.
    - audio: serve_bench's real-time 16 kHz sessions (speech, then silence, so the
      emulator's VAD ends each utterance). up = client send → the emulator receives the
      chunk; dn = the emulator sends a reply chunk → the client receives it (through serve,
      its ADK and nginx). A step holds when no session sees an error and p99 of both
      ≤ --max-audio-p99-ms.
    Per step: turns per second, how the sessions split over the two instances (/readyz),
    and CPU (% of one core) of each instance, the emulator, nginx, PostgreSQL, this
    generator and the rest of the machine.
(b) Failover. A session through nginx (adkvoice's own client: RemoteBackend, what
    `adkvoice chat --url` runs) says something; the instance holding it is killed with
    SIGKILL and at once the client asks "what did I say?". Resume = kill → the first text
    of that reply, which must quote the earlier message (the new instance read it from
    PostgreSQL). The killed instance is started again, and each trial waits out nginx's
    fail_timeout so the next one does not find both instances marked down.

Run: .venv/bin/python bench/scaleout_bench.py [--steps 8,16,32,64,128]
     [--audio-steps 4,8,16,32,64] [--trials 5] [--budget-s 300]
Every loop is bounded in count and time; the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serve_bench
from serve_bench import SUBPROTOCOL, LoadSession, make_script, percentile

from tests.scaleout.stack import Postgres, Stack, http_json

CONNECT_TIMEOUT_S = 60.0
TURN_TIMEOUT_S = 30.0
NGINX_FAIL_TIMEOUT_S = 10.0  # deploy/nginx.conf: max_fails=1 fail_timeout=10s
_TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------ CPU use


def _proc_table() -> dict[int, tuple[int, float, float]]:
    """pid → (parent pid, its CPU seconds, CPU seconds of its children that have exited)."""
    table: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = (int(fields[11]) + int(fields[12])) / _TICK
            reaped = (int(fields[13]) + int(fields[14])) / _TICK
            table[int(entry)] = (int(fields[1]), own, reaped)
    return table


def tree_cpu_seconds(root: int, table: dict[int, tuple[int, float, float]]) -> float:
    """CPU seconds of `root` and its descendants (nginx workers, PostgreSQL backends,
    including backends that have exited)."""
    total = table.get(root, (0, 0.0, 0.0))[2]
    for pid, (_, cpu, _) in table.items():
        walk = pid
        for _ in range(64):
            if walk == root:
                total += cpu
                break
            walk = table.get(walk, (0, 0.0, 0.0))[0]
            if walk <= 1:
                break
    return total


@dataclass
class Cpu:
    """CPU (% of one core) of named process trees over a window; "other" is the rest of
    the machine (someone else's work there slows everything measured)."""

    roots: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _machine0: float = 0.0
    _t0: float = 0.0

    def start(self) -> None:
        table = _proc_table()
        self._start = {name: tree_cpu_seconds(pid, table) for name, pid in self.roots.items()}
        self._machine0 = serve_bench.machine_busy_seconds()
        self._t0 = time.monotonic()

    def percent(self) -> dict[str, float]:
        table = _proc_table()
        elapsed = max(1e-6, time.monotonic() - self._t0)
        usage = {
            name: 100 * (tree_cpu_seconds(pid, table) - self._start[name]) / elapsed
            for name, pid in self.roots.items()
        }
        machine = 100 * (serve_bench.machine_busy_seconds() - self._machine0) / elapsed
        usage["other"] = max(0.0, machine - sum(usage.values()))
        return usage


def cpu_roots(stack: Stack, emulator_pid: int) -> dict[str, int]:
    assert stack.nginx is not None
    roots = {f"serve-{i.name}": i.proc.pid for i in stack.instances if i.proc is not None}
    roots |= {
        "emulator": emulator_pid,
        "nginx": stack.nginx.proc.pid,
        "postgres": stack.postgres.proc.pid,
        "generator": os.getpid(),
    }
    return roots


async def sessions_per_instance(stack: Stack) -> str:
    counts = []
    for instance in stack.instances:
        _, body = await asyncio.to_thread(http_json, f"{instance.url}/readyz")
        counts.append(f"{instance.name}:{body.get('sessions', '?')}")
    return " ".join(counts)


# ---------------------------------------------------------------------- typed sessions


@dataclass
class TypedResult:
    # The first turn of a session also waits for its live connection to the model.
    opening_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)  # later turns
    done_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class TypedSession:
    """One adkvoice.v1 text conversation through nginx: message, reply, think, again."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.url = url
        self.rng = rng
        self.result = TypedResult()
        self._ws: Any = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(
            self.url,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            open_timeout=CONNECT_TIMEOUT_S,
            close_timeout=2,
            max_size=2**22,
        )
        hello = json.loads(await self._ws.recv())
        if hello.get("type") != "hello":
            self.result.errors.append(f"no hello: {hello}")

    async def talk(self, until: float) -> None:
        turn = 0
        while time.monotonic() < until and not self.result.errors:
            turn += 1
            sent = time.monotonic()
            first: float | None = None
            try:
                await self._ws.send(json.dumps({"type": "text", "text": f"message {turn}"}))
                async with asyncio.timeout(TURN_TIMEOUT_S):
                    while True:
                        frame = await self._ws.recv()
                        if isinstance(frame, bytes):
                            continue
                        kind = json.loads(frame).get("type")
                        if kind == "agent_text" and first is None:
                            first = time.monotonic()
                        elif kind == "error":
                            self.result.errors.append(f"error frame: {frame[:120]}")
                        elif kind == "turn_complete":
                            break
            except TimeoutError:
                self.result.errors.append("no reply within the turn timeout")
                return
            except Exception as exc:
                self.result.errors.append(f"{type(exc).__name__}: {exc}"[:160])
                return
            done = time.monotonic()
            if turn == 1:
                self.result.opening_ms.append(((first or done) - sent) * 1000)
            else:
                if first is not None:
                    self.result.first_ms.append((first - sent) * 1000)
                self.result.done_ms.append((done - sent) * 1000)
            await asyncio.sleep(self.rng.uniform(0.5, 1.5))

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._ws.send(json.dumps({"type": "end"}))
                    await self._ws.close()


async def open_all(sessions: list[Any]) -> list[str]:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            results = await asyncio.gather(*(s.open() for s in sessions), return_exceptions=True)
    except TimeoutError:
        return [f"{len(sessions)} sessions did not connect within {CONNECT_TIMEOUT_S:.0f} s"]
    return [f"connect: {type(r).__name__} {r}"[:160] for r in results if isinstance(r, Exception)]


async def wait_idle(stack: Stack, timeout_s: float = 30.0) -> bool:
    """Until the instances hold no sessions (the last step's are gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = [await asyncio.to_thread(i.sessions) for i in stack.instances if i.running]
        if not any(counts):
            return True
        await asyncio.sleep(0.2)
    return False


@dataclass
class Step:
    n: int
    line: str
    errors: list[str]
    p99: float


async def typed_step(n: int, stack: Stack, cpu: Cpu, step_s: float, tag: str) -> Step:
    assert stack.nginx is not None
    rng = random.Random(n)
    sessions = [
        TypedSession(f"{stack.nginx.ws_url(f'{tag}-{n}-{i}')}?token={stack.token}", rng)
        for i in range(n)
    ]
    errors = await open_all(sessions)
    spread, usage, rate = "-", {}, 0.0
    result = TypedResult()
    if not errors:
        spread = await sessions_per_instance(stack)
        cpu.start()
        started = time.monotonic()
        until = started + step_s
        await asyncio.gather(*(s.talk(until) for s in sessions))
        usage = cpu.percent()
        for s in sessions:
            result.opening_ms += s.result.opening_ms
            result.first_ms += s.result.first_ms
            result.done_ms += s.result.done_ms
            errors += s.result.errors
        turns = len(result.opening_ms) + len(result.done_ms)
        rate = turns / (time.monotonic() - started)
    await asyncio.gather(*(s.close() for s in sessions))
    if not await wait_idle(stack):
        errors.append("the instances still held sessions 30 s after they closed")
    p99 = percentile(result.first_ms, 99)
    line = (
        f"{n:>4} {fmt(percentile(result.opening_ms, 50)):>7} "
        f"{fmt(percentile(result.first_ms, 50)):>8} {fmt(p99):>8} "
        f"{fmt(percentile(result.done_ms, 50)):>8} {fmt(percentile(result.done_ms, 99)):>8} "
        f"{rate:>7.1f} {spread:>11} {cpu_line(usage)}  {error_summary(errors)}"
    )
    return Step(n, line, errors, p99)


# ---------------------------------------------------------------------- audio sessions


async def audio_step(
    n: int,
    stack: Stack,
    emulator: serve_bench.Emulator,
    cpu: Cpu,
    script: serve_bench.Script,
    step_s: float,
    tag: str,
) -> Step:
    assert stack.nginx is not None
    sessions = [
        LoadSession(
            f"{stack.nginx.ws_url(f'{tag}-{n}-{i}')}?is_audio=true&token={stack.token}",
            extended=True,
            deflate=False,
            script=script,
            phase=(i * len(script.chunks)) // n,
        )
        for i in range(n)
    ]
    errors = await open_all(sessions)
    up: list[float] = []
    down: list[float] = []
    spread, usage, turns = "-", {}, 0
    if not errors:
        spread = await sessions_per_instance(stack)
        await emulator.collect()  # forget what came before this step
        t0 = time.monotonic() + 0.2
        window_start = int((t0 + serve_bench.SETTLE_S) * 1e9)
        window_end = int((t0 + step_s) * 1e9)
        cpu.start()
        try:
            async with asyncio.timeout(step_s + 30):
                await asyncio.gather(*(s.talk(t0, step_s) for s in sessions))
        except TimeoutError:
            errors.append("the sessions did not finish sending in time")
        await asyncio.sleep(0.3)  # replies in flight
        usage = cpu.percent()
        report = await emulator.collect()
        up = [(r - s) / 1e6 for s, r in report["arrivals"] if window_start <= s < window_end]
        for s in sessions:
            down += [ms for sent, ms in s.result.down if window_start <= sent < window_end]
            errors += s.result.errors
            turns += s.result.turns
            if step_s >= script.cycle_s + 1 and s.result.turns == 0:
                errors.append("a session got no reply")
    await asyncio.gather(*(s.close() for s in sessions))
    if not await wait_idle(stack):
        errors.append("the instances still held sessions 30 s after they closed")
    p99 = max(percentile(up, 99), percentile(down, 99))
    line = (
        f"{n:>4} {fmt(percentile(up, 50)):>7} {fmt(percentile(up, 99)):>7} "
        f"{fmt(percentile(down, 50)):>7} {fmt(percentile(down, 99)):>7} {turns:>6} "
        f"{spread:>11} {cpu_line(usage)}  {error_summary(errors)}"
    )
    return Step(n, line, errors, p99)


# ----------------------------------------------------------------------------- failover


@dataclass
class Trial:
    resume_s: float
    reconnect_s: float
    moved: str


async def failover_trial(stack: Stack, index: int) -> Trial:
    from adkvoice.backends.endpoints import SeedsEndpoint
    from adkvoice.backends.remote import RemoteBackend
    from adkvoice.events import AgentText, Notice, TurnComplete

    assert stack.nginx is not None
    words = f"the code word is {random.choice(['amber', 'birch', 'cobalt', 'delta'])}{index}"
    url = stack.nginx.ws_url(f"failover-{index}-{os.urandom(3).hex()}")
    remote = RemoteBackend(SeedsEndpoint(url, modality="TEXT"), token=stack.token)
    await remote.start()
    events = remote.events()
    try:
        await remote.send_text(words)
        async with asyncio.timeout(TURN_TIMEOUT_S):
            async for event in events:
                if isinstance(event, TurnComplete):
                    break
        serving = await asyncio.to_thread(stack.serving)
        killed_at = time.monotonic()
        await asyncio.to_thread(serving.kill)
        await remote.send_text("what did I say?")
        reconnected_at = replied_at = math.nan
        texts: list[str] = []
        async with asyncio.timeout(TURN_TIMEOUT_S * 2):
            async for event in events:
                if isinstance(event, Notice) and event.message.startswith("reconnected"):
                    reconnected_at = time.monotonic()
                elif isinstance(event, AgentText):
                    if not texts:
                        replied_at = time.monotonic()
                    texts.append(event.text)
                elif isinstance(event, TurnComplete) and texts:
                    break
        # The instance that answered knew the earlier message only from PostgreSQL.
        if words not in " ".join(texts):
            raise RuntimeError(f"the reply after the failover lacks the history: {texts}")
        now_serving = await asyncio.to_thread(stack.serving)
    finally:
        await remote.close()
    return Trial(
        resume_s=replied_at - killed_at,
        reconnect_s=reconnected_at - killed_at,
        moved=f"{serving.name}→{now_serving.name}",
    )


async def failover(stack: Stack, trials: int, deadline: float) -> list[Trial]:
    print(f"\n== failover: kill -9 the serving instance, {trials} trials")
    print(f"{'trial':>5} {'moved':>6} {'reconnected s':>14} {'resumed s':>10}")
    results: list[Trial] = []
    last_kill = -math.inf
    for index in range(trials):
        # Both instances up, and nginx's fail_timeout past since the last kill.
        await asyncio.to_thread(stack.ensure_running)
        await asyncio.sleep(max(0.0, last_kill + NGINX_FAIL_TIMEOUT_S + 0.5 - time.monotonic()))
        if time.monotonic() + 30 > deadline:
            print("(time budget reached)")
            break
        last_kill = time.monotonic()
        trial = await failover_trial(stack, index)
        results.append(trial)
        print(
            f"{index + 1:>5} {trial.moved:>6} {fmt(trial.reconnect_s, 2):>14} "
            f"{trial.resume_s:>10.2f}",
            flush=True,
        )
    await asyncio.to_thread(stack.ensure_running)
    return results


# ---------------------------------------------------------------------------------- main


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


CPU_NAMES = ("serve-a", "serve-b", "emulator", "nginx", "postgres", "generator", "other")


def cpu_line(usage: dict[str, float]) -> str:
    return " ".join(f"{fmt(usage.get(name, math.nan), 0):>8}" for name in CPU_NAMES)


def cpu_header() -> str:
    return " ".join(f"{name:>8}" for name in CPU_NAMES)


def error_summary(errors: list[str]) -> str:
    if not errors:
        return "0"
    return f"{len(errors)}: " + "; ".join(sorted(set(errors))[:3])


async def ladder(kind: str, steps: list[int], run: Any, limit: float, deadline: float) -> str:
    held = 0
    failed: Step | None = None
    for n in steps:
        if time.monotonic() + 40 > deadline:
            print("(time budget reached)")
            break
        step: Step = await run(n)
        print(step.line, flush=True)
        await asyncio.sleep(1.0)
        if step.errors or not step.p99 <= limit:
            failed = step
            break
        held = n
    line = f"{kind}: holds {held} concurrent session(s) through nginx with p99 ≤ {limit:.0f} ms"
    if failed is not None:
        line += f"; at {failed.n}: p99 {fmt(failed.p99)} ms, {len(failed.errors)} error(s)"
    return line


async def bench(args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.budget_s
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    audio_steps = sorted({int(s) for s in args.audio_steps.split(",") if s.strip()})
    print(
        f"scaleout_bench: {os.cpu_count()} cores, python {sys.version.split()[0]}; two serve "
        f"instances + PostgreSQL + nginx + emulator + this generator on one machine"
    )
    summary: list[str] = []
    with tempfile.TemporaryDirectory(prefix="adkvoice-scaleout-") as tmp_name:
        tmp = Path(tmp_name)
        postgres = await asyncio.to_thread(Postgres.start)
        emulator = await serve_bench.Emulator.start("synthetic")
        stack: Stack | None = None
        try:
            stack = await asyncio.to_thread(
                Stack.start,
                tmp / "stack",
                postgres,
                emulator_env=emulator.env,
                max_sessions=max(steps + audio_steps) + 8,
                log_level="warning",
            )
            assert emulator.proc.pid is not None
            cpu = Cpu(cpu_roots(stack, emulator.proc.pid))
            await typed_step(2, stack, cpu, 3.0, "warm")  # imports, pools, caches

            print(
                f"\n== typed turns ({args.step_s:.0f} s per step; think time 0.5-1.5 s). "
                "first/done = message → first reply text / turn complete (ms); open = the "
                "same for a session's first message (the live connection to the model opens "
                "meanwhile); CPU in % of one core; other = the rest of the machine"
            )
            print(
                f"{'N':>4} {'open50':>7} {'first50':>8} {'first99':>8} {'done50':>8} {'done99':>8} "
                f"{'turns/s':>7} {'sessions':>11} {cpu_header()}  errors"
            )

            def typed(n: int) -> Any:
                assert stack is not None
                return typed_step(n, stack, cpu, args.step_s, "t")

            summary.append(await ladder("typed", steps, typed, args.max_first_ms, deadline))

            if audio_steps and time.monotonic() + 60 < deadline:
                script = await make_script(40, 3.5)
                print(
                    f"\n== real-time audio ({args.audio_step_s:.0f} s per step; "
                    f"{script.speech_chunks * script.chunk_s:.1f} s speech + 3.5 s silence). "
                    "up/dn: client → emulator / emulator → client (ms, through nginx, serve, ADK)"
                )
                print(
                    f"{'N':>4} {'up p50':>7} {'up p99':>7} {'dn p50':>7} {'dn p99':>7} "
                    f"{'turns':>6} {'sessions':>11} {cpu_header()}  errors"
                )

                def audio(n: int) -> Any:
                    assert stack is not None
                    return audio_step(n, stack, emulator, cpu, script, args.audio_step_s, "a")

                summary.append(
                    await ladder("audio", audio_steps, audio, args.max_audio_p99_ms, deadline)
                )

            if args.trials > 0:
                trials = await failover(stack, args.trials, deadline)
                if trials:
                    resume = [t.resume_s for t in trials]
                    summary.append(
                        f"failover: kill -9 → next reply through nginx: p50 "
                        f"{percentile(resume, 50):.2f} s, max {max(resume):.2f} s "
                        f"over {len(trials)} trial(s)"
                    )
            print("\n" + "\n".join(summary))
        finally:
            if stack is not None:
                await asyncio.to_thread(stack.stop)
            await emulator.stop()
            await asyncio.to_thread(postgres.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="8,16,32,64,128", help="typed session counts")
    parser.add_argument("--step-s", type=float, default=10.0, help="seconds per typed step")
    parser.add_argument("--max-first-ms", type=float, default=1000.0)
    parser.add_argument(
        "--audio-steps", default="4,8,16,32,64", help="audio session counts ('' to skip)"
    )
    parser.add_argument("--audio-step-s", type=float, default=10.0)
    parser.add_argument("--max-audio-p99-ms", type=float, default=50.0)
    parser.add_argument("--trials", type=int, default=5, help="failover trials")
    parser.add_argument("--budget-s", type=float, default=300.0, help="stop after this long")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
