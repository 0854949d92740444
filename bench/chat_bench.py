"""Figures for typed chat against the emulator.

1. Time from process start to the first streamed token of `echo hi | adkvoice chat --text`.
2. Time of `adkvoice --help`.
3. Events per second through the embedded backend (the real ADK `run_live`, emulator with
   zero think time and no pacing).

Run: .venv/bin/python bench/chat_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["NO_COLOR"] = "1"
    return env


def time_to_first_token(runs: int) -> list[float]:
    """Seconds from spawning `adkvoice chat --text` to the first byte of its reply."""
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "adkvoice", "chat", "--text"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(),
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write(b"hi\n")
        proc.stdin.close()
        first = proc.stdout.read(1)
        elapsed = time.perf_counter() - start
        proc.stdout.read()
        if proc.wait(timeout=60) != 0 or not first:
            raise SystemExit("chat failed during the benchmark")
        samples.append(elapsed)
    return samples


def help_time(runs: int) -> list[float]:
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "adkvoice", "--help"],
            capture_output=True,
            check=True,
            env=_env(),
        )
        samples.append(time.perf_counter() - start)
    return samples


async def _events_per_second(words: int, turns: int) -> tuple[int, float]:
    from adkvoice.agents.loading import load_bundled_agent
    from adkvoice.backends.embedded import EmbeddedBackend
    from adkvoice.config import point_genai_at
    from adkvoice.emulator import Emulator, EmulatorOptions, load_rules
    from adkvoice.events import TurnComplete

    reply = " ".join(f"word{i}" for i in range(words))
    with tempfile.TemporaryDirectory() as tmp:
        rules_file = Path(tmp) / "rules.toml"
        rules_file.write_text(f'[[rule]]\nmatch = "."\nsay = "{reply}"\n')
        async with Emulator(EmulatorOptions(rules=load_rules(rules_file))) as emulator:
            point_genai_at(emulator.client_env())
            backend = EmbeddedBackend(
                load_bundled_agent(), modality="TEXT", endpoint_label="emulator"
            )
            await backend.start()
            count = 0
            stream = backend.events()
            start = time.perf_counter()
            for _ in range(turns):
                await backend.send_text("go")
                async for event in stream:
                    count += 1
                    if isinstance(event, TurnComplete):
                        break
            elapsed = time.perf_counter() - start
            await backend.close()
    return count, elapsed


def _summary(name: str, samples: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    ordered = sorted(samples)
    return (
        f"{name}: median {statistics.median(ordered) * scale:.0f} {unit}, "
        f"min {ordered[0] * scale:.0f}, max {ordered[-1] * scale:.0f} (n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(_summary("adkvoice --help", help_time(args.runs * 2)))
    print(
        _summary(
            "echo hi | adkvoice chat --text, start → first token", time_to_first_token(args.runs)
        )
    )
    count, elapsed = asyncio.run(_events_per_second(words=2000, turns=5))
    print(f"embedded backend: {count} events in {elapsed:.2f} s = {count / elapsed:,.0f} events/s")


if __name__ == "__main__":
    main()
