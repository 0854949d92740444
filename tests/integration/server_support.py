"""Helpers for the `adkvoice serve` tests: an emulator + server pair, and small clients.

Everything binds 127.0.0.1 on port 0 and stops itself; nothing is mocked: the server runs
the real ADK against the in-process emulator.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from google.adk.agents import Agent
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from adkvoice.agents.loading import LoadedAgent
from adkvoice.emulator import Emulator
from adkvoice.server import AgentServer, ServeOptions
from adkvoice.wire.adkvoice_v1 import SUBPROTOCOL

from .emulator_support import MODEL_2X, STEP_TIMEOUT_S, running_emulator

SEED_DONE = '{"turn_complete": true, "interrupted": null}'
EXT_DONE = '{"type": "turn_complete"}'


class Clock:
    """A tool that counts its executions."""

    def __init__(self) -> None:
        self.calls = 0

    def get_current_time(self) -> dict[str, str]:
        """Returns the current local time."""
        self.calls += 1
        return {"time": "10:42"}


def make_agent(model: str = MODEL_2X, clock: Clock | None = None) -> LoadedAgent:
    agent = Agent(
        name="served",
        model=model,
        instruction="You are a test agent.",
        tools=[clock.get_current_time] if clock else [],
    )
    return LoadedAgent(app_name="servetest", agent=agent, app=None, source="test agent")


@dataclass
class Served:
    emulator: Emulator
    server: AgentServer
    clock: Clock = field(default_factory=Clock)

    def ws(self, session_id: str, *, audio: bool = False, **query: str) -> str:
        params = "&".join(
            [f"is_audio={'true' if audio else 'false'}"] + [f"{k}={v}" for k, v in query.items()]
        )
        return f"{self.server.ws_url}/ws/{session_id}?{params}"

    @property
    def url(self) -> str:
        return self.server.url


@asynccontextmanager
async def serving(
    monkeypatch: pytest.MonkeyPatch,
    *,
    model: str = MODEL_2X,
    emulator: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[Served]:
    """An emulator, and `adkvoice serve` for a test agent pointed at it."""
    options.setdefault("port", 0)
    options.setdefault("handle_signals", False)
    options.setdefault("endpoint_label", "emulator")
    async with running_emulator(monkeypatch, **(emulator or {})) as emu:
        clock = Clock()
        loaded = make_agent(model, clock)
        async with AgentServer(loaded, ServeOptions(**options)) as server:
            yield Served(emu, server, clock)


@asynccontextmanager
async def client(
    url: str, *, extended: bool = False, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    async with connect(
        url,
        subprotocols=[SUBPROTOCOL] if extended else None,  # type: ignore[list-item]
        open_timeout=STEP_TIMEOUT_S,
        close_timeout=2,
        **kwargs,
    ) as ws:
        yield ws


async def recv_until(
    ws: ClientConnection, done: Callable[[str | bytes], bool]
) -> list[str | bytes]:
    """Frames up to and including the first for which `done` is true (bounded)."""
    frames: list[str | bytes] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while True:
            frame = await ws.recv()
            frames.append(frame)
            if done(frame):
                return frames


async def seed_turn(ws: ClientConnection, text: str | None = None) -> list[str | bytes]:
    """Send a seeds text message (optional) and read until the seeds' turn_complete."""
    if text is not None:
        await ws.send(json.dumps({"mime_type": "text/plain", "data": text}))
    return await recv_until(ws, lambda f: f == SEED_DONE)


async def ext_turn(ws: ClientConnection, text: str | None = None) -> list[str | bytes]:
    if text is not None:
        await ws.send(json.dumps({"type": "text", "text": text}))
    return await recv_until(ws, lambda f: f == EXT_DONE)


def seed_text(frames: list[str | bytes]) -> str:
    """The text/plain data of seeds frames, concatenated."""
    out = []
    for frame in frames:
        obj = json.loads(frame)
        if obj.get("mime_type") == "text/plain":
            out.append(obj["data"])
    return "".join(out)


def seed_audio(frames: list[str | bytes]) -> bytes:
    out = b""
    for frame in frames:
        obj = json.loads(frame)
        if obj.get("mime_type") == "audio/pcm":
            out += base64.b64decode(obj["data"])
    return out


def json_frames(frames: list[str | bytes]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames if isinstance(f, str)]


async def expect_error(ws: ClientConnection, code: str) -> dict[str, Any]:
    """The next error frame, which must have `code`."""
    frames = await recv_until(ws, lambda f: isinstance(f, str) and '"type": "error"' in f)
    error = json.loads(frames[-1])
    assert error["code"] == code, error
    assert error["message"]
    return error  # type: ignore[no-any-return]


async def expect_close(ws: ClientConnection) -> tuple[int | None, str]:
    """Drain until the server closes; its close code and reason."""
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        rcvd = closed.rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")
    raise AssertionError("unreachable")


async def sse_lines(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> tuple[httpx.Response, list[str]]:
    """The `data:` payloads of an SSE response (bounded)."""
    data: list[str] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        async with client.stream(method, url, **kwargs) as response:
            if response.status_code != 200:
                await response.aread()
                return response, data
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    data.append(line.removeprefix("data: "))
    return response, data
