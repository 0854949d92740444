"""What hostile input costs `adkvoice serve`: the seeded fuzz of the test suite
(tests/integration/test_serve_fuzz.py), several rounds against one server process.

Per round: inputs, seconds, log lines per input, tracebacks, and the server's resident
memory, to tell memory a round keeps for good (a leak grows every round) from memory
the process keeps once it has it (it levels off).

Run: .venv/bin/python bench/serve_fuzz_bench.py [--rounds N] [--sessions memory|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.test_serve_fuzz import (
    WORKERS,
    Tally,
    _rss_kib,
    fuzz_worker,
)


def start_serve(log: Path, sessions: str, data: Path) -> tuple[subprocess.Popen[bytes], int]:
    import os
    import re

    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    env.update(NO_COLOR="1", XDG_DATA_HOME=str(data))
    args = [sys.executable, "-m", "adkvoice", "serve", "--port", "0"]
    if sessions == "memory":
        args += ["--sessions", "memory"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=out, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"at http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1))
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"serve did not start:\n{log.read_text(errors='replace')}")


async def main(rounds: int, sessions: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        proc, port = start_serve(log, sessions, Path(tmp))
        try:
            print(f"serve --sessions {sessions}: RSS {_rss_kib(proc.pid) / 1024:.1f} MiB idle")
            seen_lines = len(log.read_text(errors="replace").splitlines())
            for round_ in range(1, rounds + 1):
                tally = Tally()
                started = time.monotonic()
                await asyncio.gather(*(fuzz_worker(i, port, tally) for i in range(WORKERS)))
                elapsed = time.monotonic() - started
                await asyncio.sleep(1.0)
                text = log.read_text(errors="replace")
                lines = text.splitlines()
                new_lines = len(lines) - seen_lines
                seen_lines = len(lines)
                print(
                    f"round {round_}: {tally.inputs} inputs in {elapsed:.1f} s, "
                    f"{new_lines / tally.inputs:.2f} log lines per input, "
                    f"{text.count('Traceback')} tracebacks, {len(tally.bad)} bad answers, "
                    f"RSS {_rss_kib(proc.pid) / 1024:.1f} MiB"
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", choices=["memory", "sqlite"], default="memory")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.sessions))
