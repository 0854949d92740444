"""A flood of half-sent requests against a real `adkvoice serve` limited to 1,024 file
descriptors: health checks and sessions go on, and the descriptors stay well under the
limit. Run with `-s` to see the figures."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.integration.conftest import clean_env

pytestmark = pytest.mark.integration

HOST = "127.0.0.2"
TOKEN = "T-flood-token"
SERVER_FDS = 1024  # the common default soft limit, imposed on the server
MARGIN = 64  # descriptors the server must keep free even at the peak of the flood
CONNECTIONS = 2000
CLIENT_FDS = 4096  # what the test needs for its own side of the connections
STEP_S = 20.0


def _limit_server_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FDS, SERVER_FDS))


@contextlib.contextmanager
def _client_fds() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENT_FDS:
        pytest.skip(
            f"the hard RLIMIT_NOFILE is {hard}: the test needs {CLIENT_FDS} descriptors for "
            f"its side of {CONNECTIONS} connections"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, CLIENT_FDS), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class FdSampler:
    """The server's open descriptors, sampled in a thread so the peak is seen."""

    def __init__(self, pid: int) -> None:
        self._dir = f"/proc/{pid}/fd"
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        try:
            n = len(os.listdir(self._dir))
        except OSError:
            return 0
        self.peak = max(self.peak, n)
        return n

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.count()

    def __enter__(self) -> FdSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _pump(stream: object, lines: queue.Queue[str], log: list[str]) -> None:
    # Read the server's log as it comes: a full pipe would stall the server.
    for line in stream:  # type: ignore[attr-defined]
        log.append(line)
        lines.put(line)


def _wait_for_url(lines: queue.Queue[str], deadline_s: float = 40) -> str:
    deadline = time.monotonic() + deadline_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if match := re.search(rf"at (http://{re.escape(HOST)}:\d+)", line):
            return match.group(1)
    raise AssertionError("serve did not say where it listens")


async def _half_open(port: int, count: int) -> list[asyncio.StreamWriter]:
    """`count` connections, all at once, that each send the start of a request and no more."""
    writers: list[asyncio.StreamWriter] = []
    partial = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode()

    async def one() -> None:
        with contextlib.suppress(OSError, TimeoutError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), STEP_S)
            writers.append(writer)
            writer.write(partial)

    await asyncio.gather(*(one() for _ in range(count)))
    return writers


async def _typed_turn(ws_url: str) -> str:
    async with (
        asyncio.timeout(STEP_S),
        connect(ws_url, open_timeout=STEP_S, close_timeout=2) as ws,
    ):
        await ws.send(json.dumps({"mime_type": "text/plain", "data": "still there?"}))
        text = ""
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("turn_complete"):
                return text
            if frame.get("mime_type") == "text/plain":
                text += frame["data"]


def _accept_queue(port: int) -> int:
    """Connections the kernel holds for the server's listening socket, not yet accepted
    (the rx_queue of a LISTEN socket in /proc/net/tcp)."""
    packed = socket.inet_aton(HOST)[::-1].hex().upper()
    local = f"{packed}:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":
            return int(fields[4].split(":")[1], 16)
    return 0


async def _until_accepted(port: int) -> float:
    """Until the server has taken the flood off its listen queue (bounded); how long.
    While the queue is full the kernel drops new SYNs, and a client retries after 1 s:
    that measures the burst still arriving, not the half-open connections being held."""
    start = time.monotonic()
    for _ in range(int(STEP_S / 0.01)):
        if not _accept_queue(port):
            break
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@dataclass
class Figures:
    open_s: float = 0.0
    absorbed_s: float = 0.0  # from the last connect to an empty listen queue
    connected: int = 0
    health_s: float = 0.0
    health_status: int = 0
    turn_s: float = 0.0
    reply: str = ""
    idle_fds: int = 0
    flood_fds: int = 0
    after_fds: int = 0


async def _flood(url: str, fds: FdSampler) -> Figures:
    """The flood, then a health check and a typed turn while the connections are held."""
    port = int(url.rsplit(":", 1)[1])
    figures = Figures(idle_fds=fds.count())
    writers: list[asyncio.StreamWriter] = []
    try:
        start = time.monotonic()
        writers = await _half_open(port, CONNECTIONS)
        figures.open_s = time.monotonic() - start
        figures.connected = len(writers)
        figures.flood_fds = fds.count()
        figures.absorbed_s = await _until_accepted(port)
        async with httpx.AsyncClient(timeout=STEP_S) as http:
            start = time.monotonic()
            figures.health_status = (await http.get(f"{url}/healthz")).status_code
            figures.health_s = time.monotonic() - start
        start = time.monotonic()
        figures.reply = await _typed_turn(
            f"ws://{HOST}:{port}/ws/flood?is_audio=false&token={TOKEN}"
        )
        figures.turn_s = time.monotonic() - start
        figures.after_fds = fds.count()
    finally:
        for writer in writers:
            writer.close()
    return figures


def test_half_sent_requests_cannot_exhaust_the_servers_descriptors(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "adkvoice", "serve", "--host", HOST, "--port", "0"]
    command += ["--token", TOKEN, "--backend", "emulator"]
    with (
        _client_fds(),
        subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
            preexec_fn=_limit_server_fds,
        ) as proc,
    ):
        log: list[str] = []
        try:
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=_pump, args=(proc.stderr, lines, log), daemon=True).start()
            url = _wait_for_url(lines)
            with FdSampler(proc.pid) as fds:
                figures = asyncio.run(_flood(url, fds))
            guard_lines = [line for line in log if "did not finish their request" in line]
            print(
                f"\n{CONNECTIONS} half-open connections opened in {figures.open_s:.2f} s "
                f"({figures.connected} connected), taken off the listen queue "
                f"{figures.absorbed_s * 1000:.0f} ms later; /healthz answered in "
                f"{figures.health_s * 1000:.0f} ms; typed turn in {figures.turn_s:.2f} s; "
                f"server descriptors: {figures.idle_fds} idle, {figures.flood_fds} after the "
                f"flood, {figures.after_fds} after the turn, peak {fds.peak} "
                f"(limit {SERVER_FDS})\n" + "".join(guard_lines),
                end="",
            )
            assert figures.health_status == 200
            assert figures.health_s < 1.0
            assert figures.reply
            assert fds.peak < SERVER_FDS - MARGIN
            assert len(guard_lines) == 1  # one line for the whole flood, not one each
            assert not any("Traceback" in line or "Too many open files" in line for line in log)
            assert proc.poll() is None
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
