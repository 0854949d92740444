"""Run a Python program with its garbage collections timed, for the serve benchmarks.

    python bench/gc_probe.py LOG -m adkvoice serve ...
    python bench/gc_probe.py LOG bench/baseline_server.py ...
    python bench/gc_probe.py LOG --python-gc-defaults -m adkvoice serve ...

Installs a `gc.callbacks` hook, then runs the module or script as `python` would. Each
collection of generation 1 or 2, and each collection of any generation that took 1 ms or
more, is appended to LOG as one line `monotonic_s generation pause_ms`; once a second a
line `monotonic_s sum count pause_ms_total` adds up the rest (generation 0). The clock is
the machine's monotonic clock, so the benchmark can cut the log at its own step times
(`read_pauses`). `--python-gc-defaults` keeps the program from changing how the collector
runs (`gc.freeze`, `gc.set_threshold` do nothing), to measure what its own settings gain.
Writing happens in the callback, at most once a second unless a pause is
long or old: it never adds to the pause it measures, which is timed first.
"""

from __future__ import annotations

import gc
import runpy
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

FLUSH_EVERY_S = 1.0
LONG_PAUSE_MS = 1.0


class _Probe:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._started = 0.0
        self._pending: list[str] = []
        self._young_count = 0
        self._young_ms = 0.0
        self._flushed_at = time.monotonic()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
            return
        pause_ms = (now - self._started) * 1000.0
        generation = int(info.get("generation", 0))
        if generation >= 1 or pause_ms >= LONG_PAUSE_MS:
            self._pending.append(f"{now:.6f} {generation} {pause_ms:.3f}\n")
        else:
            self._young_count += 1
            self._young_ms += pause_ms
        if now - self._flushed_at >= FLUSH_EVERY_S:
            self._flush(now)

    def _flush(self, now: float) -> None:
        self._pending.append(f"{now:.6f} sum {self._young_count} {self._young_ms:.3f}\n")
        self._out.write("".join(self._pending))
        self._out.flush()
        self._pending.clear()
        self._young_count, self._young_ms = 0, 0.0
        self._flushed_at = now


@dataclass
class Pauses:
    """The collections of one window of a probe's log."""

    full: list[float]  # generation 2 pauses, ms
    middle: list[float]  # generation 1 pauses, ms
    young_count: int
    total_ms: float

    @property
    def worst_ms(self) -> float:
        return max([*self.full, *self.middle, 0.0])


def read_pauses(log: Path, start: float, end: float) -> Pauses:
    """The collections logged between monotonic times `start` and `end`."""
    pauses = Pauses([], [], 0, 0.0)
    try:
        lines = log.read_text().splitlines()
    except OSError:
        return pauses
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or not start <= float(parts[0]) <= end:
            continue
        if parts[1] == "sum" and len(parts) == 4:
            pauses.young_count += int(parts[2])
            pauses.total_ms += float(parts[3])
            continue
        generation, pause_ms = int(parts[1]), float(parts[2])
        pauses.total_ms += pause_ms
        if generation == 2:
            pauses.full.append(pause_ms)
        elif generation == 1:
            pauses.middle.append(pause_ms)
        else:
            pauses.young_count += 1
    return pauses


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    log, target, *rest = sys.argv[1:]
    if target == "--python-gc-defaults":
        gc.freeze = lambda: None
        gc.set_threshold = lambda *_: None
        target, *rest = rest
    out = Path(log).open("a", buffering=1)  # noqa: SIM115 - open for the process's life
    gc.callbacks.append(_Probe(out))
    if target == "-m":
        module, *args = rest
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        sys.argv = [target, *rest]
        sys.path.insert(0, str(Path(target).resolve().parent))
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main()
