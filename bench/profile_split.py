"""Where `adkvoice serve`'s CPU goes at N real-time sessions: a py-spy profile, split by
library.

Record (the default): starts the emulator and `serve` as serve_bench does (separate
processes on 127.0.0.1, the default SQLite store unless --sessions memory), warms serve up
with one session, opens N seeds sessions (base64 JSON, CHUNK_MS chunks at real time), and
once all N are talking records `py-spy record --format raw --full-filenames --nonblocking`
of serve's Python process for --seconds; then prints the step's latency and CPU (the
profiler shares the machine: its CPU is printed too) and the split below. The raw profile
is kept (--out).

`--target baseline` profiles bench/baseline_server.py the same way, for comparison.

Summarise an existing raw profile: `profile_split.py --summarise FILE`.

The split, in shares of the samples py-spy took of serve's active threads (idle threads,
such as an event loop waiting in select, are not sampled):

- self: the library of the function running (the leaf frame);
- by caller: the same, except that helpers (pydantic, opentelemetry, and "other": the
  standard library outside asyncio, ssl, json, base64 and sqlite3, and other packages)
  count for the nearest named library that called them: pydantic validation that ADK asks
  for is ADK's;
- on stack: the samples a library is anywhere on the stack in, above the event loop's
  dispatch (serve's main is below every task) (not additive: ADK code called from
  adkvoice's code counts for both).

Then the 15 functions with the most self samples, and for adkvoice, ADK and google-genai
their functions with the most samples by caller (the innermost frame of that library).

Run: .venv/bin/python bench/profile_split.py [--sessions 32] [--seconds 30]
     [--out bench/results/serve_profile.txt] [--sessions-store sqlite|memory]
     .venv/bin/python bench/profile_split.py --summarise bench/results/serve_profile.txt
Every loop is bounded; the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve().parent
FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")

# (category, path fragments); the first match wins, so the more specific come first.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("adkvoice", ("/adkvoice/",)),
    ("the baseline's own code", ("/bench/baseline_server.py",)),
    ("google.adk", ("/google/adk/",)),
    ("google.genai", ("/google/genai/",)),
    ("websockets", ("/websockets/",)),
    ("uvicorn/starlette/fastapi", ("/uvicorn/", "/starlette/", "/fastapi/", "/h11/", "/anyio/")),
    ("asyncio TLS (sslproto, ssl)", ("/asyncio/sslproto.py", "/ssl.py")),
    ("asyncio event loop", ("/asyncio/", "/selectors.py")),
    ("sqlite/aiosqlite/sqlalchemy", ("/sqlite3/", "/aiosqlite/", "/sqlalchemy/")),
    ("json/base64", ("/json/", "/base64.py")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    ("opentelemetry", ("/opentelemetry/",)),
]
OTHER = "other"
HELPERS = ("pydantic", "opentelemetry", OTHER)  # counted for their caller "by caller"
ORDER = [name for name, _ in CATEGORIES if name not in HELPERS] + list(HELPERS)
_categories: dict[str, str] = {}


def categorise(path: str) -> str:
    hit = _categories.get(path)
    if hit is None:
        hit = next((name for name, parts in CATEGORIES if any(p in path for p in parts)), OTHER)
        _categories[path] = hit
    return hit


def short_path(path: str) -> str:
    """The package part of a file name (site-packages/, the repo, the standard library)."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/adkvoice/" in path:
        return "adkvoice/" + path.split("/adkvoice/", 1)[1]
    match = re.search(r"/lib/python3[.\d]*/(.*)$", path)
    return match.group(1) if match else path


@dataclass(frozen=True)
class Frame:
    func: str
    file: str
    category: str


def parse_raw(path: Path) -> list[tuple[list[Frame], int]]:
    """py-spy's raw format: `root;...;leaf COUNT` a line, each frame `func (file:line)`."""
    frames: dict[str, Frame] = {}
    stacks: list[tuple[list[Frame], int]] = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parsed: list[Frame] = []
        for text in stack.split(";"):
            frame = frames.get(text)
            if frame is None:
                match = FRAME_RE.match(text)
                func, file = (match["func"], match["file"]) if match else (text, "")
                frame = frames[text] = Frame(func, file, categorise(file))
            parsed.append(frame)
        stacks.append((parsed, int(count)))
    return stacks


def owner(stack: list[Frame]) -> tuple[str, Frame]:
    """The library a sample counts for "by caller", and its innermost frame there."""
    for frame in reversed(stack):
        if frame.category not in HELPERS:
            return frame.category, frame
    return OTHER, stack[-1]


_LOOP_DRIVERS = {"run", "run_until_complete", "run_forever", "_run_once", "_run"}


def dispatched(stack: list[Frame]) -> int:
    """Where the work the event loop dispatched starts: after its innermost driving frame
    (asyncio.run, run_forever, _run_once, Handle._run); 0 for a stack without one (a
    thread's). What is below is the same for every sample (serve's main, asyncio.run)."""
    for index in range(len(stack) - 1, -1, -1):
        frame = stack[index]
        name = frame.func.rsplit(".", 1)[-1]  # py-spy qualifies methods: Handle._run
        if name in _LOOP_DRIVERS and frame.file.rsplit("/", 2)[-2:-1] == ["asyncio"]:
            return index + 1
    return 0


def summarise(path: Path, *, top: int = 15) -> int:
    """Print the split of a raw profile; the number of samples."""
    stacks = parse_raw(path)
    total = sum(count for _, count in stacks)
    if not total:
        print(f"{path}: no samples")
        return 0
    own: collections.Counter[str] = collections.Counter()
    by_caller: collections.Counter[str] = collections.Counter()
    on_stack: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[tuple[str, str, str]] = collections.Counter()
    inner: dict[str, collections.Counter[tuple[str, str]]] = collections.defaultdict(
        collections.Counter
    )
    for stack, count in stacks:
        if not stack:
            continue
        leaf = stack[-1]
        own[leaf.category] += count
        leaves[(leaf.func, short_path(leaf.file), leaf.category)] += count
        category, frame = owner(stack)
        by_caller[category] += count
        inner[category][(frame.func, short_path(frame.file))] += count
        for seen in {f.category for f in stack[dispatched(stack) :]} | {leaf.category}:
            on_stack[seen] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    print(f"\n{total:,} samples of the server's active threads ({path})")
    print(f"{'library':<30} {'self':>8} {'by caller':>10} {'on stack':>9}")
    for name in ORDER:
        print(f"{name:<30} {pct(own[name]):>8} {pct(by_caller[name]):>10} {pct(on_stack[name]):>9}")
    print(f"\ntop {top} functions by self samples")
    for (func, file, category), count in leaves.most_common(top):
        print(f"{pct(count)}  {func}  ({file})  [{category}]")
    for category, count in (("adkvoice", 10), ("google.adk", 8), ("google.genai", 8)):
        print(f"\n{category}: innermost functions by caller (share of all samples)")
        for (func, file), n in inner[category].most_common(count):
            print(f"{pct(n)}  {func}  ({file})")
    return total


# ------------------------------------------------------------------------------- record


async def _profile_when_talking(
    server: object, pid: int, sessions: int, args: argparse.Namespace, out: Path
) -> tuple[int | None, float, str]:
    """Once `sessions` are open and talking, py-spy for args.seconds: exit code, its CPU
    seconds, what it printed."""
    from serve_bench_procs import Server

    assert isinstance(server, Server)
    async with asyncio.timeout(90):
        while await server.sessions() < sessions:  # noqa: ASYNC110 - polling another process
            await asyncio.sleep(0.2)
    await asyncio.sleep(args.lead_s)
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if pyspy is None:
        return None, math.nan, "py-spy is not installed"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = await asyncio.create_subprocess_exec(
        pyspy,
        *("record", "--pid", str(pid), "--format", "raw", "--full-filenames", "--nonblocking"),
        *("--rate", str(args.rate), "--duration", str(int(args.seconds)), "--output", str(out)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(args.seconds + 30):
            said, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        said, _ = await proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return proc.returncode, cpu, said.decode(errors="replace").strip()


async def record(args: argparse.Namespace) -> Path:
    from serve_bench import fmt, run_step
    from serve_bench_clients import make_script, percentile
    from serve_bench_procs import Emulator, Server, Usage

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    script = await make_script(args.chunk_ms, 3.5)
    step_s = args.lead_s + args.seconds + 4.0
    print(
        f"profile_split: {os.cpu_count()} cores; "
        + (
            "baseline_server.py"
            if args.target == "baseline"
            else f"serve ({args.sessions_store} store)"
        )
        + " at "
        f"{args.sessions} real-time seeds sessions, {args.chunk_ms} ms chunks; py-spy "
        f"{args.rate} Hz for {args.seconds:.0f} s once all are talking",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="adkvoice-profile-") as tmp_name:
        tmp = Path(tmp_name)
        emulator = await Emulator.start("synthetic")
        try:
            if args.target == "baseline":
                baseline = [str(HERE / "baseline_server.py")]
                server = await Server.launch(baseline, emulator.env, tmp / "data", "baseline")
            else:
                store = "memory" if args.sessions_store == "memory" else str(tmp / "serve.db")
                server = await Server.start(emulator.env, store, args.sessions + 8, tmp / "data")
            try:
                pid = server.proc.pid
                assert pid is not None
                assert emulator.proc.pid is not None
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()  # noqa: ASYNC240 - /proc
                cmdline = raw.replace(b"\0", b" ").decode().strip()
                print(f"profiled process {pid}: {cmdline}")
                usage = Usage(
                    {"serve": pid, "emulator": emulator.proc.pid, "generator": os.getpid()}
                )
                common = {
                    "protocol": "seeds",
                    "server": server,
                    "emulator": emulator,
                    "usage": usage,
                    "script": script,
                    "deflate": args.deflate,
                }
                await run_step(1, **common, step_s=script.cycle_s, tag="warm")
                spy = asyncio.create_task(
                    _profile_when_talking(server, pid, args.sessions, args, out)
                )
                started = time.monotonic()
                fig = await run_step(args.sessions, **common, step_s=step_s, tag="profiled")
                code, spy_cpu, said = await spy
                print(
                    f"step of {args.sessions} ({time.monotonic() - started:.0f} s with connecting"
                    f" and closing): up p50/p99 {fmt(percentile(fig.up_ms, 50))}/"
                    f"{fmt(percentile(fig.up_ms, 99))} ms, dn p50/p99 "
                    f"{fmt(percentile(fig.down_ms, 50))}/{fmt(percentile(fig.down_ms, 99))} ms, "
                    f"turns {fig.turns}; CPU % of one core: serve "
                    f"{fmt(fig.cpu.get('serve', math.nan), 0)}, emulator "
                    f"{fmt(fig.cpu.get('emulator', math.nan), 0)}, generator "
                    f"{fmt(fig.cpu.get('generator', math.nan), 0)}, rest of the machine "
                    f"(py-spy in it) {fmt(fig.cpu.get('other', math.nan), 0)}; py-spy "
                    f"{fmt(100 * spy_cpu / args.seconds, 0)}; errors {len(fig.errors)}"
                    + (": " + "; ".join(sorted(set(fig.errors))[:3]) if fig.errors else "")
                )
                if code != 0:
                    print(f"py-spy exited {code}: {said[-500:]}")
            finally:
                await server.stop()
        finally:
            await emulator.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summarise", metavar="RAW", help="only summarise this raw profile")
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds to sample")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--lead-s", type=float, default=3.0, help="talking before sampling")
    parser.add_argument("--chunk-ms", type=int, default=40, choices=[20, 40])
    parser.add_argument("--sessions-store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument(
        "--target",
        choices=["serve", "baseline"],
        default="serve",
        help="baseline: bench/baseline_server.py, for comparison",
    )
    parser.add_argument(
        "--no-deflate", dest="deflate", action="store_false", help="no permessage-deflate"
    )
    parser.add_argument(
        "--out", default=str(HERE / "results" / "serve_profile.txt"), help="the raw profile"
    )
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if args.summarise:
        summarise(Path(args.summarise), top=args.top)
        return
    out = asyncio.run(record(args))
    if out.exists():
        samples = summarise(out, top=args.top)
        busy = 100 * samples / (args.rate * args.seconds)
        print(
            f"\n(samples per tick: {busy / 100:.2f}; about {busy:.0f} % of one core sampled busy)"
        )


if __name__ == "__main__":
    main()
