"""Figures for how fast adkvoice starts, against the goals for a faster start.

Each measurement is a fresh process, timed from just before it is spawned:

- `adk --help`: ADK's own command line, the yardstick for `--help`;
- `adkvoice --help` and `adkvoice chat --help` (goal: at most 1.2 × `adk --help`);
- ADK's import time, process start to exit: `python -c "import google.adk"` (ADK 2.x
  imports its members lazily, so this imports next to nothing), and the import of every
  `google.adk` module that piped chat imports (found by running it once with
  `-X importtime`): what running a live agent costs in ADK's own imports;
- piped chat's first token: `printf 'hi\\n' | adkvoice chat --text` in a clean environment
  (no Google credentials, so the in-process emulator answers), until the first byte of the
  reply on stdout (goal: at most ADK's import time + 0.3 s).

The commands take turns (one run of each, N times over) so that a busy machine slows them
alike; one warm-up round is not counted. Bytecode is cached (in a throwaway
PYTHONPYCACHEPREFIX, written by the warm-up round) as for an installed package, even
where PYTHONDONTWRITEBYTECODE is set. Conversations go to a throwaway data directory.
`--tree DIR` measures the adkvoice sources in DIR instead (e.g. an older checkout).

Run: .venv/bin/python bench/start_bench.py [--runs N] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.conftest import clean_env

BIN = Path(sys.executable).parent
HELP_RATIO_GOAL = 1.2
FIRST_TOKEN_MARGIN_GOAL_S = 0.3


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, timeout=120)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def _first_token(env: dict[str, str], cwd: Path) -> float:
    """Seconds from spawning `adkvoice chat --text` (stdin: "hi") to its first stdout byte."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(BIN / "adkvoice"), "chat", "--text"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=cwd,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(b"hi\n")
        proc.stdin.close()
        first = os.read(proc.stdout.fileno(), 1)
        elapsed = time.perf_counter() - start
        proc.stdout.read()
        if proc.wait(timeout=120) != 0 or not first:
            err.seek(0)
            message = err.read().decode(errors="replace")
            raise SystemExit(f"chat failed (exit {proc.returncode}): {message}")
    return elapsed


def _adk_modules_chat_imports(env: dict[str, str], cwd: Path) -> list[str]:
    """The `google.adk` modules piped chat imports, in the order it imports them."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "adkvoice", "chat", "--text"],
        input=b"hi\n",
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"chat failed: {done.stderr.decode(errors='replace')[-2000:]}")
    names = re.findall(r"^import time:.*\|\s*(google\.adk[\w.]*)$", done.stderr.decode(), re.M)
    return list(dict.fromkeys(names))


def _import_script(modules: list[str]) -> str:
    return (
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        pass\n"
    )


def _summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    spread = statistics.stdev(ordered) if len(ordered) > 1 else 0.0
    return (
        f"median {statistics.median(ordered) * 1000:6.0f} ms  "
        f"(min {ordered[0] * 1000:.0f}, max {ordered[-1] * 1000:.0f}, "
        f"sd {spread * 1000:.0f}, n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each (default 10)")
    parser.add_argument("--tree", type=Path, help="import adkvoice from this source tree")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = clean_env({"XDG_DATA_HOME": str(cwd / "data")})
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(cwd / "pycache")
        if args.tree is not None:
            env["PYTHONPATH"] = str(args.tree.resolve())
        python = sys.executable
        adk_modules = _adk_modules_chat_imports(env, cwd)
        adk_all = f"import of the {len(adk_modules)} ADK modules chat uses"
        measures: dict[str, Callable[[], float]] = {
            "adk --help": lambda: _timed([str(BIN / "adk"), "--help"], env, cwd),
            "adkvoice --help": lambda: _timed([str(BIN / "adkvoice"), "--help"], env, cwd),
            "adkvoice chat --help": lambda: _timed(
                [str(BIN / "adkvoice"), "chat", "--help"], env, cwd
            ),
            'python -c "import google.adk"': lambda: _timed(
                [python, "-c", "import google.adk"], env, cwd
            ),
            adk_all: lambda: _timed([python, "-c", _import_script(adk_modules)], env, cwd),
            "piped chat, start → first token": lambda: _first_token(env, cwd),
        }
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for round_ in range(args.runs + 1):
            for name, measure in measures.items():
                elapsed = measure()
                if round_:  # round 0 warms caches (bytecode, the disk, the data directory)
                    samples[name].append(elapsed)

    source = args.tree or Path(__file__).resolve().parents[1]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} runs each, "
        f"adkvoice from {source}"
    )
    width = max(len(name) for name in samples)
    for name, values in samples.items():
        print(f"  {name:<{width}}  {_summary(values)}")

    # Medians are what a run usually costs; minimums (best of N) are what it costs when
    # nothing else on the machine gets in the way, the steadier figure on a busy one.
    for label, pick in (("median", statistics.median), ("best of N", min)):
        figure = {name: pick(values) for name, values in samples.items()}
        _goals(label, figure, adk_all)


def _goals(label: str, figure: dict[str, float], adk_all: str) -> None:
    adk_help = figure["adk --help"]
    adk_import = figure[adk_all]
    first_token = figure["piped chat, start → first token"]
    print(f"goals ({label}):")
    for name in ("adkvoice --help", "adkvoice chat --help"):
        ratio = figure[name] / adk_help
        verdict = "met" if ratio <= HELP_RATIO_GOAL else "NOT met"
        print(f"  {name} / adk --help = {ratio:.2f}  (goal ≤ {HELP_RATIO_GOAL}: {verdict})")
    margin = first_token - adk_import
    verdict = "met" if margin <= FIRST_TOKEN_MARGIN_GOAL_S else "NOT met"
    print(
        f"  first token − ADK's import for chat = {margin * 1000:+.0f} ms  "
        f"(goal ≤ +{FIRST_TOKEN_MARGIN_GOAL_S * 1000:.0f} ms: {verdict}; "
        f"ratio {first_token / adk_import:.2f})"
    )


if __name__ == "__main__":
    main()
