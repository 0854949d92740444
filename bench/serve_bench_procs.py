"""The processes of serve_bench: the emulator (with timestamp probes), `adkvoice serve`,
and what /proc says about their CPU and memory.

Run as a script, this module is the emulator role: `python bench/serve_bench_procs.py
--tts synthetic` prints the emulator's environment as one JSON line, answers "collect"
on stdin with the probes' figures, and stops at EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serve_bench_clients import (
    DOWN_STAMP_BYTES,
    read_up_stamp,
    stamp_down,
)

CREDENTIAL_VARS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_GEMINI_BASE_URL",
    "SSL_CERT_FILE",
)
START_TIMEOUT_S = 60.0
COLLECT_TIMEOUT_S = 10.0
EMULATOR_SCRIPT = os.path.abspath(__file__)  # this module is the emulator role

# ------------------------------------------------------------------------- emulator role


def emulator_role(tts: str) -> None:
    """Run the emulator with timestamp probes; talk to the parent over stdin/stdout."""
    asyncio.run(_emulator_main(tts))


async def _emulator_main(tts: str) -> None:
    from adkvoice.emulator import Emulator, EmulatorOptions, frames
    from adkvoice.emulator import connection as emulator_session

    arrivals: list[tuple[int, int]] = []  # (client send ns, emulator receive ns)
    lags: list[float] = []
    original_audio = frames.model_audio
    original_on_audio = emulator_session.LiveConnection._on_audio

    def stamped_audio(pcm: bytes, transcription: str | None = None) -> Any:
        if len(pcm) >= DOWN_STAMP_BYTES:
            pcm = stamp_down(pcm, time.monotonic_ns())
        return original_audio(pcm, transcription)

    async def probed_on_audio(self: Any, chunk: Any) -> None:
        now = time.monotonic_ns()
        sent = read_up_stamp(chunk.pcm)
        if sent is not None:
            arrivals.append((sent, now))
        await original_on_audio(self, chunk)

    frames.model_audio = stamped_audio  # type: ignore[assignment]
    emulator_session.LiveConnection._on_audio = probed_on_audio  # type: ignore[method-assign]

    async def lag_probe() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append((time.monotonic() - before - 0.01) * 1000)
            if len(lags) > 100_000:
                del lags[:50_000]

    options = EmulatorOptions(
        tts=tts,  # type: ignore[arg-type]
        stt="placeholder",
        audio_pacing=1.0,
        text_chunk_delay_s=0.03,
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with Emulator(options) as emulator:
        probe = asyncio.create_task(lag_probe())
        print(json.dumps({"env": emulator.client_env(), "url": emulator.base_url}), flush=True)
        while line := await reader.readline():  # EOF: the parent is done
            if line.strip() == b"collect":
                stats = emulator.stats
                reply = {
                    "arrivals": arrivals[:],
                    "lag_ms": lags[:],
                    "utterances": stats.utterances,
                    "turns": stats.turns_answered,
                    "interruptions": stats.interruptions,
                    "connections": stats.active_connections,
                }
                arrivals.clear()
                lags.clear()
                print(json.dumps(reply), flush=True)
        probe.cancel()


# ------------------------------------------------------------------ processes and /proc


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARS}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (psutil when installed, else /proc)."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except ImportError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mib(pid: int) -> float:
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (/proc/stat; NaN elsewhere)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return math.nan
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / _TICK


@dataclass
class Usage:
    """CPU (% of one core) over a window, and peak RSS, of some processes; "other" is the
    rest of the machine (other work on a shared machine skews the latencies)."""

    pids: dict[str, int]
    _cpu0: dict[str, float] = field(default_factory=dict)
    _t0: float = 0.0
    _machine0: float = 0.0
    peak_rss: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine0 = machine_busy_seconds()
        self.peak_rss = {name: rss_mib(pid) for name, pid in self.pids.items()}

    def sample_rss(self) -> None:
        for name, pid in self.pids.items():
            self.peak_rss[name] = max(self.peak_rss[name], rss_mib(pid))

    def cpu_percent(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self._t0)
        cpu = {
            name: 100 * (cpu_seconds(pid) - self._cpu0[name]) / elapsed
            for name, pid in self.pids.items()
        }
        machine = 100 * (machine_busy_seconds() - self._machine0) / elapsed
        cpu["other"] = max(0.0, machine - sum(cpu.values()))
        return cpu


class Emulator:
    """The emulator process (this module run as a script)."""

    def __init__(self, proc: asyncio.subprocess.Process, env: dict[str, str]) -> None:
        self.proc = proc
        self.env = env

    @classmethod
    async def start(cls, tts: str) -> Emulator:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            EMULATOR_SCRIPT,
            "--tts",
            tts,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=clean_env(),
            limit=2**26,
        )
        assert proc.stdout is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            first = json.loads(await proc.stdout.readline())
        return cls(proc, dict(first["env"]))

    async def collect(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(b"collect\n")
        await self.proc.stdin.drain()
        async with asyncio.timeout(COLLECT_TIMEOUT_S):
            reply: dict[str, Any] = json.loads(await self.proc.stdout.readline())
        return reply

    async def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


class Server:
    """`python -m adkvoice serve --backend gemini` pointed at the emulator."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str, log: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        emulator_env: dict[str, str],
        sessions: str,
        max_sessions: int,
        data_dir: Path,
        prefix: tuple[str, ...] = (),
        extra: tuple[str, ...] = (),
    ) -> Server:
        """`prefix` goes before `-m adkvoice` (e.g. bench/gc_probe.py LOG), `extra` after
        serve's own options."""
        argv = [
            *prefix,
            *("-m", "adkvoice", "serve", "--backend", "gemini", "--port", "0"),
            *("--sessions", sessions, "--max-sessions", str(max_sessions)),
            *("--log-level", "warning"),
            *extra,
        ]
        return await cls.launch(argv, emulator_env, data_dir, "serve")

    @classmethod
    async def launch(
        cls, argv: list[str], emulator_env: dict[str, str], data_dir: Path, name: str
    ) -> Server:
        """`python ARGV` with the emulator's environment; ready when it prints
        " at http://127.0.0.1:PORT" on stderr (serve does, so does baseline_server.py)."""
        env = clean_env({**emulator_env, "XDG_DATA_HOME": str(data_dir)})
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stderr is not None
        log: list[str] = []
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while line := (await proc.stderr.readline()).decode(errors="replace"):
                    log.append(line.rstrip())
                    if match := re.search(r" at (http://127\.0\.0\.1:\d+)", line):
                        server = cls(proc, match.group(1), log)
                        server._drain = asyncio.create_task(server._keep_reading())
                        return server
        except TimeoutError:
            pass
        proc.kill()
        await proc.wait()
        raise SystemExit(f"{name} did not start:\n" + "\n".join(log[-20:]))

    async def _keep_reading(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode(errors="replace").rstrip())
            del self.log[:-200]

    async def sessions(self) -> int:
        """Sessions the server still holds (GET /readyz)."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(f"GET /readyz HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            response = await reader.read()
        finally:
            writer.close()
        body = response.split(b"\r\n\r\n", 1)[1]
        return int(json.loads(body)["sessions"])

    async def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Until the sessions of the last step are gone (bounded)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while await self.sessions():  # noqa: ASYNC110 - polling another process
                    await asyncio.sleep(0.2)
                return True
        return False

    def base_url(self, port: int | None = None) -> str:
        """http://127.0.0.1:PORT of the server, or of a proxy in front of it at `port`."""
        return self.url if port is None else f"http://127.0.0.1:{port}"

    def ws_url(self, session_id: str, port: int | None = None) -> str:
        """The seeds' and adkvoice.v1's WebSocket URL for `session_id`."""
        base = self.base_url(port).replace("http://", "ws://")
        return f"{base}/ws/{session_id}?is_audio=true"

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            async with asyncio.timeout(20):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="serve_bench's emulator role")
    parser.add_argument("--tts", choices=["synthetic", "espeak", "auto"], default="synthetic")
    emulator_role(parser.parse_args().tts)
