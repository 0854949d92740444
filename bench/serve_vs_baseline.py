"""adkvoice serve against a server written the way ADK's WS sample is written, in one run.

One emulator process (serve_bench_procs.py), one load generator (serve_bench_clients.py,
the seeds' protocol: base64 JSON both ways, CHUNK_MS chunks on a real-time schedule), and
three servers started side by side, each its own process on 127.0.0.1:

- serve:      `python -m adkvoice serve --backend gemini` (the default SQLite store);
- serve-mem:  the same with `--sessions memory`;
- baseline:   bench/baseline_server.py (FastAPI + uvicorn on asyncio's loop and h11, as
              the sample runs after `pip install uvicorn`: one `Runner.run_live` per
              socket, `InMemorySessionService`, the same bundled agent and model);
and, only when named in --servers:
- baseline-rc: the baseline asking ADK for what serve's RunConfig asks for too (input
              transcription, session resumption);
- baseline-uvloop: the baseline on uvloop;
- serve-asyncio: serve with `--loop asyncio` (serve takes uvloop when it is installed);
- serve-gc-default: serve with Python's collector settings (bench/gc_probe.py stops
              serve's `gc.freeze()`), to measure what freezing the start-up heap gains.

Every server runs under bench/gc_probe.py, which logs its collections: each row gives the
longest pause, the number of full collections and the share of the step spent collecting.

For each step of N sessions (4, 8, 16, 24, 32) every server takes its turn (the order
alternates from step to step, so neither side always runs right after the other), with
the same script and the same measurements as serve_bench: p50/p99 of the added latency up
(client send → the emulator receives the chunk) and down (the emulator sends a reply chunk
→ the client receives it), the server's CPU (% of one core; per session above its idle
CPU), its peak RSS, and the CPU of the emulator, of the generator and of the rest of the
machine. After each step: serve's figures over the baseline's. At the end: the sessions
each held with p99 ≤ 50 ms (both ways, no errors, every smaller step held too), and a PNG
of CPU per session and p99 against sessions (when matplotlib is importable; else the
table only).

A step over the threshold is run again (--retries, the best attempt counts: a burst of
other work on a 2-core machine can spoil one run's tail). A server whose step fails badly
(errors, or p99 over --give-up-ms) is not asked for more.

Run: .venv/bin/python bench/serve_vs_baseline.py [--steps 4,8,16,24,32] [--step-s 12]
     [--servers serve,serve-mem,baseline] [--png bench/results/serve_vs_baseline.png]
Every loop is bounded in count and time (--budget-s); the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gc_probe import Pauses, read_pauses
from serve_bench import SETTLE_S, StepFigures, badness, fmt, run_step, worst_p99
from serve_bench_clients import make_script, percentile
from serve_bench_procs import Emulator, Server, Usage, rss_mib

HERE = Path(__file__).resolve().parent
GC_PROBE = HERE / "gc_probe.py"
BASELINE_SCRIPT = HERE / "baseline_server.py"
SERVERS = (
    "serve",
    "serve-mem",
    "baseline",
    "baseline-rc",
    "serve-gc-default",
    "serve-asyncio",
    "baseline-uvloop",
)
DEFAULT_SERVERS = "serve,serve-mem,baseline"
TITLES = {
    "serve": "adkvoice serve, SQLite store",
    "serve-mem": "adkvoice serve --sessions memory",
    "baseline": "the sample's shape (baseline_server.py)",
    "baseline-rc": "the sample's shape with serve's RunConfig",
    "serve-gc-default": "adkvoice serve, SQLite store, Python's own GC settings",
    "serve-asyncio": "adkvoice serve --loop asyncio, SQLite store",
    "baseline-uvloop": "the sample's shape on uvloop",
}
IDLE_WINDOW_S = 2.0
STEP_OVERHEAD_S = 25.0  # connecting, closing and waiting for the sessions to end (bounded)


@dataclass
class Target:
    name: str
    server: Server
    usage: Usage
    gc_log: Path  # its collections (gc_probe.py)
    idle_cpu: float = math.nan
    idle_rss: float = math.nan
    steps: dict[int, StepFigures] = field(default_factory=dict)
    gc: dict[int, Pauses] = field(default_factory=dict)  # the kept attempt's collections
    stopped: str = ""  # why it is not asked for more

    def cpu_per_session(self, n: int) -> float:
        fig = self.steps.get(n)
        if fig is None:
            return math.nan
        return (fig.cpu.get("serve", math.nan) - self.idle_cpu) / n

    def held(self, max_p99_ms: float) -> int:
        """The largest step held with every smaller step held too."""
        held = 0
        for n in sorted(self.steps):
            fig = self.steps[n]
            if fig.errors or not worst_p99(fig) <= max_p99_ms:
                break
            held = n
        return held


async def start_server(
    name: str, emulator: Emulator, tmp: Path, max_sessions: int, gc_log: Path
) -> Server:
    """The server `name`, its collections timed by gc_probe.py into `gc_log`."""
    data = tmp / f"{name}-data"
    probe: tuple[str, ...] = (str(GC_PROBE), str(gc_log))
    if name.startswith("serve"):
        store = "memory" if name == "serve-mem" else str(tmp / f"{name}.db")
        extra: tuple[str, ...] = ()
        if name == "serve-gc-default":
            probe = (*probe, "--python-gc-defaults")
        if name == "serve-asyncio":
            extra = ("--loop", "asyncio")
        return await Server.start(emulator.env, store, max_sessions, data, probe, extra)
    argv = [*probe, str(BASELINE_SCRIPT)]
    argv += ["--serve-run-config"] if name == "baseline-rc" else []
    argv += ["--loop", "uvloop"] if name == "baseline-uvloop" else []
    return await Server.launch(argv, emulator.env, data, name)


def header() -> str:
    return (
        f"{'N':>3} {'server':<10} {'up p50':>7} {'up p99':>7} {'dn p50':>7} {'dn p99':>7} "
        f"{'turns':>5} {'CPU%':>6} {'/sess':>6} {'RSS MiB':>7} {'emu CPU%':>8} "
        f"{'gen CPU%':>8} {'other%':>6} {'gen late p99':>12} {'GC max':>6} {'full':>4} "
        f"{'GC %':>5} errors"
    )


def row(target: Target, fig: StepFigures, pauses: Pauses, step_s: float) -> str:
    """GC max: the server's longest collection pause in the step (ms); full: how many
    collections of the oldest generation it made; GC %: the time it spent collecting, in
    % of the step's length (the step's connecting and closing included)."""
    cpu = fig.cpu.get("serve", math.nan)
    errors = f"{len(fig.errors)}" + (
        ": " + "; ".join(sorted(set(fig.errors))[:2]) if fig.errors else ""
    )
    return (
        f"{fig.sessions:>3} {target.name:<10} {fmt(percentile(fig.up_ms, 50)):>7} "
        f"{fmt(percentile(fig.up_ms, 99)):>7} {fmt(percentile(fig.down_ms, 50)):>7} "
        f"{fmt(percentile(fig.down_ms, 99)):>7} {fig.turns:>5} {fmt(cpu, 0):>6} "
        f"{fmt(target.cpu_per_session(fig.sessions), 2):>6} "
        f"{fmt(fig.rss.get('serve', math.nan), 0):>7} "
        f"{fmt(fig.cpu.get('emulator', math.nan), 0):>8} "
        f"{fmt(fig.cpu.get('generator', math.nan), 0):>8} "
        f"{fmt(fig.cpu.get('other', math.nan), 0):>6} "
        f"{fmt(percentile(fig.late_ms, 99)):>12} {fmt(pauses.worst_ms):>6} "
        f"{len(pauses.full):>4} {fmt(100 * pauses.total_ms / 1000 / step_s, 2):>5} {errors}"
    )


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b <= 0:
        return "-"
    return f"{a / b:.2f}x"


def ratio_line(n: int, targets: list[Target]) -> str | None:
    base = next((t for t in targets if t.name == "baseline" and n in t.steps), None)
    if base is None:
        return None
    parts = []
    for t in targets:
        if t is base or n not in t.steps:
            continue
        mine, theirs = t.steps[n], base.steps[n]
        parts.append(
            f"{t.name}/baseline: CPU/sess {ratio(t.cpu_per_session(n), base.cpu_per_session(n))}, "
            f"up p99 {ratio(percentile(mine.up_ms, 99), percentile(theirs.up_ms, 99))}, "
            f"dn p99 {ratio(percentile(mine.down_ms, 99), percentile(theirs.down_ms, 99))}"
        )
    return f"{'':>3} " + "; ".join(parts) if parts else None


def summary(targets: list[Target], steps: list[int], max_p99_ms: float) -> None:
    names = [t.name for t in targets]
    print(f"\nCPU % of one core per session (above idle), by N: {' | '.join(names)}")
    for n in steps:
        cells = [fmt(t.cpu_per_session(n), 2) for t in targets]
        print(f"{n:>3}: " + " | ".join(f"{c:>9}" for c in cells))
    print(f"\nworst p99 (max of up, down; ms), by N: {' | '.join(names)}")
    for n in steps:
        cells = [fmt(worst_p99(t.steps[n])) if n in t.steps else "-" for t in targets]
        print(f"{n:>3}: " + " | ".join(f"{c:>9}" for c in cells))
    print()
    for t in targets:
        held = t.held(max_p99_ms)
        note = f" ({t.stopped})" if t.stopped else ""
        print(
            f"{t.name:<10} holds {held} session(s) with p99 ≤ {max_p99_ms:.0f} ms "
            f"[{TITLES[t.name]}]; idle CPU {fmt(t.idle_cpu)} %, idle RSS "
            f"{fmt(t.idle_rss, 0)} MiB{note}"
        )


def plot(targets: list[Target], steps: list[int], max_p99_ms: float, path: Path) -> str:
    """The PNG; what was written, or why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        return "matplotlib is not importable: no PNG (the tables above are the figures)"
    fig, (cpu_ax, p99_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for t in targets:
        ns = [n for n in steps if n in t.steps]
        if not ns:
            continue
        (line,) = cpu_ax.plot(ns, [t.cpu_per_session(n) for n in ns], marker="o", label=t.name)
        color = line.get_color()
        up = [percentile(t.steps[n].up_ms, 99) for n in ns]
        down = [percentile(t.steps[n].down_ms, 99) for n in ns]
        p99_ax.plot(ns, up, marker="^", linestyle="--", color=color, label=f"{t.name} up")
        p99_ax.plot(ns, down, marker="v", color=color, label=f"{t.name} down")
    cpu_ax.set(
        xlabel="real-time sessions",
        ylabel="server CPU, % of one core per session",
        title="CPU per session (above idle)",
    )
    cpu_ax.set_ylim(bottom=0)
    p99_ax.axhline(max_p99_ms, color="grey", linewidth=0.8, linestyle=":")
    p99_ax.set(
        xlabel="real-time sessions", ylabel="p99 added latency, ms", title="p99 added latency"
    )
    p99_ax.set_yscale("log")
    p99_ax.yaxis.set_major_formatter(ScalarFormatter())
    p99_ax.yaxis.set_minor_formatter(ScalarFormatter())
    p99_ax.annotate(
        f"{max_p99_ms:.0f} ms", (steps[0], max_p99_ms), fontsize=8, color="grey", va="bottom"
    )
    for ax in (cpu_ax, p99_ax):
        ax.set_xticks(steps)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"adkvoice serve vs the ADK WS sample's shape: seeds protocol, {os.cpu_count()} cores",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"wrote {path}"


async def bench(args: argparse.Namespace) -> None:
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown:
        raise SystemExit(f"unknown server(s) {unknown}: choose from {', '.join(SERVERS)}")
    deadline = time.monotonic() + args.budget_s
    script = await make_script(args.chunk_ms, args.silence_s)
    print(
        f"serve_vs_baseline: {os.cpu_count()} cores, python {sys.version.split()[0]}; seeds "
        f"protocol, {args.chunk_ms} ms chunks at real time, {script.cycle_s:.1f} s cycle "
        f"({script.speech_chunks * script.chunk_s:.1f} s speech); {args.step_s:.0f} s per step "
        f"(first {args.settle_s:.1f} s not measured); permessage-deflate "
        f"{'on' if args.deflate else 'off'}; servers {', '.join(names)}; one emulator"
    )
    print(
        "up/dn = added latency (ms) client → emulator / emulator → client through the server. "
        "CPU% = the server's, of one core; /sess = above its idle CPU, per session. emu, gen = "
        "the emulator and this load generator; other = the rest of the machine."
    )
    with tempfile.TemporaryDirectory(prefix="adkvoice-vs-") as tmp_name:
        tmp = Path(tmp_name)
        emulator = await Emulator.start("synthetic")
        targets: list[Target] = []

        async def seeds_step(t: Target, n: int, step_s: float, tag: str) -> StepFigures:
            """N seeds sessions on `t` for `step_s`, as every step of this bench runs."""
            return await run_step(
                n,
                protocol="seeds",
                server=t.server,
                emulator=emulator,
                usage=t.usage,
                script=script,
                deflate=args.deflate,
                step_s=step_s,
                tag=tag,
                settle_s=args.settle_s,
            )

        try:
            assert emulator.proc.pid is not None
            for name in names:
                gc_log = tmp / f"{name}-gc.log"
                server = await start_server(name, emulator, tmp, max(steps) + 8, gc_log)
                assert server.proc.pid is not None
                usage = Usage(
                    {
                        "serve": server.proc.pid,
                        "emulator": emulator.proc.pid,
                        "generator": os.getpid(),
                    }
                )
                targets.append(Target(name, server, usage, gc_log))
            for t in targets:
                # One short conversation first: imports and first-use work are not a
                # per-session cost.
                warm = await seeds_step(t, 1, script.cycle_s, f"{t.name}-warm")
                if warm.errors:
                    print(f"{t.name} warm-up: {'; '.join(sorted(set(warm.errors))[:3])}")
            await asyncio.sleep(1.0)
            for t in targets:
                t.usage.start()
            await asyncio.sleep(IDLE_WINDOW_S)
            for t in targets:
                t.idle_cpu = t.usage.cpu_percent()["serve"]
                assert t.server.proc.pid is not None
                t.idle_rss = rss_mib(t.server.proc.pid)
            print(
                "idle after a warm-up session: "
                + "; ".join(
                    f"{t.name} CPU {t.idle_cpu:.1f} %, RSS {t.idle_rss:.0f} MiB" for t in targets
                ),
                flush=True,
            )
            print(header())
            for index, n in enumerate(steps):
                order = targets if index % 2 == 0 else targets[::-1]
                for t in order:
                    if t.stopped:
                        continue
                    if time.monotonic() + args.step_s + STEP_OVERHEAD_S > deadline:
                        t.stopped = f"the {args.budget_s:.0f} s budget was used before N={n}"
                        continue
                    # A step over the threshold is run again (--retries) and the best
                    # attempt kept: on a shared 2-core machine a burst of other work can
                    # spoil one run's tail.
                    attempts: list[StepFigures] = []
                    collections: list[Pauses] = []
                    while len(attempts) <= args.retries:
                        if attempts and time.monotonic() + args.step_s + STEP_OVERHEAD_S > deadline:
                            break
                        began = time.monotonic()
                        fig = await seeds_step(t, n, args.step_s, f"{t.name}-{n}-{len(attempts)}")
                        t.steps[n] = fig
                        await asyncio.sleep(1.1)  # the probe writes once a second
                        pauses = read_pauses(t.gc_log, began, time.monotonic())
                        print(
                            row(t, fig, pauses, time.monotonic() - began)
                            + (" (again)" if attempts else ""),
                            flush=True,
                        )
                        attempts.append(fig)
                        collections.append(pauses)
                        if badness(fig) <= (0, args.max_p99_ms):
                            break
                        await asyncio.sleep(1.0)
                    fig = t.steps[n] = min(attempts, key=badness)
                    t.gc[n] = collections[attempts.index(fig)]
                    p99 = worst_p99(fig)
                    if fig.errors or not p99 <= args.give_up_ms:
                        t.stopped = f"not asked for more after N={n}"
                    await asyncio.sleep(1.0)
                if (line := ratio_line(n, targets)) is not None:
                    print(line, flush=True)
            summary(targets, steps, args.max_p99_ms)
            if args.png:
                print(plot(targets, steps, args.max_p99_ms, Path(args.png)))
        finally:
            for t in targets:
                await t.server.stop()
                code = t.server.proc.returncode
                if code not in (0, None, -15):
                    print(f"{t.name} exited {code}:\n" + "\n".join(t.server.log[-20:]))
            await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="4,8,16,24,32", help="session counts")
    parser.add_argument("--step-s", type=float, default=12.0, help="seconds of audio per step")
    parser.add_argument("--chunk-ms", type=int, default=40, choices=[20, 40])
    parser.add_argument("--silence-s", type=float, default=3.5, help="silence after speech")
    parser.add_argument("--settle-s", type=float, default=SETTLE_S)
    parser.add_argument(
        "--servers", default=DEFAULT_SERVERS, help=f"which, in this order, of {', '.join(SERVERS)}"
    )
    parser.add_argument("--max-p99-ms", type=float, default=50.0)
    parser.add_argument("--retries", type=int, default=1, help="runs again of a step over")
    parser.add_argument(
        "--give-up-ms", type=float, default=1000.0, help="p99 past which a server stops"
    )
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="no permessage-deflate"
    )
    parser.add_argument("--budget-s", type=float, default=660.0, help="stop after this long")
    parser.add_argument(
        "--png", default=str(HERE / "results" / "serve_vs_baseline.png"), help="'' for no PNG"
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
