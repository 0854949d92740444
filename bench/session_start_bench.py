"""How long starting sessions stalls `adkvoice serve`'s event loop.

Starts the emulator and `serve` (as serve_bench does: separate processes on 127.0.0.1,
the default SQLite store), then, ROUNDS times, opens N sessions at once on the seeds'
WebSocket protocol and has each answer one typed turn, while a probe asks `/healthz`
every 20 ms. A stalled event loop answers nothing, so the slowest `/healthz` during a
round is the longest stall; the first round also pays the imports and first-use work.

Run: .venv/bin/python bench/session_start_bench.py [--sessions 8] [--rounds 4]
Every loop is bounded; the script stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench_procs import Emulator, Server

TURN_TIMEOUT_S = 30.0
PROBE_EVERY_S = 0.02


async def one_turn(ws_base: str, session_id: str) -> None:
    async with connect(f"{ws_base}/ws/{session_id}?is_audio=false", open_timeout=10) as ws:
        await ws.send(json.dumps({"mime_type": "text/plain", "data": "ok"}))
        async with asyncio.timeout(TURN_TIMEOUT_S):
            while not json.loads(await ws.recv()).get("turn_complete"):
                pass


async def health_probe(base: str, stop: asyncio.Event) -> list[float]:
    """Seconds each /healthz took, until `stop` (one request at a time, HTTP/1.0)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    took: list[float] = []
    while not stop.is_set():
        started = time.monotonic()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /healthz HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
        await reader.read()
        writer.close()
        took.append(time.monotonic() - started)
        await asyncio.sleep(PROBE_EVERY_S)
    return took


async def main(sessions: int, rounds: int) -> None:
    emulator = await Emulator.start("synthetic")
    with tempfile.TemporaryDirectory() as tmp:
        server = await Server.start(
            emulator.env, str(Path(tmp) / "sessions.db"), sessions * 2, Path(tmp)
        )
        ws_base = server.url.replace("http://", "ws://")
        print(f"{sessions} sessions at once, one typed turn each; /healthz every 20 ms")
        print("round | all answered (s) | /healthz p50 (ms) | worst /healthz (ms)")
        try:
            for number in range(rounds):
                stop = asyncio.Event()
                probe = asyncio.create_task(health_probe(server.url, stop))
                started = time.monotonic()
                await asyncio.gather(
                    *(one_turn(ws_base, f"r{number}s{i}") for i in range(sessions))
                )
                elapsed = time.monotonic() - started
                stop.set()
                took = await probe
                print(
                    f"{number + 1:5d} | {elapsed:16.2f} | {statistics.median(took) * 1000:17.1f} "
                    f"| {max(took) * 1000:19.0f}"
                )
                await server.wait_idle()
        finally:
            await server.stop()
            await emulator.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.rounds))
