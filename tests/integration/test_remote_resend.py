"""`--url` clients after a drop mid-turn: one whole answer, and the turn sent only if needed.

A scripted server on loopback speaks the seeds' protocol. Its first connection takes the
turn, starts answering and fails. On the second, an ADK server answers the turn by itself
(it replays the stored history, which ends with it), so the client must not send it
again; a server that never got the turn stays silent, and the client sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from adkvoice.backends.endpoints import SeedsEndpoint
from adkvoice.backends.recovery import Backoff
from adkvoice.backends.remote import RemoteBackend
from adkvoice.events import AgentText, AnswerComplete, Event, Interrupted, Notice, TurnComplete
from adkvoice.wire.adkvoice_v1 import SUBPROTOCOL, encode_hello
from adkvoice.wire.base import Hello

pytestmark = pytest.mark.integration

DONE = json.dumps({"turn_complete": True, "interrupted": None})


def _text(data: str) -> str:
    return json.dumps({"mime_type": "text/plain", "data": data})


class ScriptedServer:
    def __init__(self, *, answers_after_reconnect: bool) -> None:
        self.answers_after_reconnect = answers_after_reconnect
        self.connections = 0
        self.received: list[str] = []

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        if self.connections == 1:
            self.received.append(str(await ws.recv()))
            await ws.send(_text("Hel"))
            await ws.close(1011, "internal error")
            return
        if self.answers_after_reconnect:
            await ws.send(_text("Hello there"))
            await ws.send(DONE)
        async for message in ws:
            self.received.append(str(message))
            await ws.send(_text("Hello there"))
            await ws.send(DONE)


@asynccontextmanager
async def scripted(answers_after_reconnect: bool) -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer(answers_after_reconnect=answers_after_reconnect)
    async with serve(server.handle, "127.0.0.1", 0) as running:
        port = next(iter(running.sockets)).getsockname()[1]
        yield server, f"ws://127.0.0.1:{port}/ws/s1"


async def _one_turn(url: str, resend_after_s: float = 0.3) -> tuple[list[Event], list[Event]]:
    """Events up to the turn's end, and any that follow within 0.8 s (there must be none)."""
    backend = RemoteBackend(
        SeedsEndpoint(url, modality="TEXT"),
        backoff=Backoff(first_s=0.01, max_s=0.05, attempts=3),
        resend_after_s=resend_after_s,
    )
    await backend.start()
    events: list[Event] = []
    later: list[Event] = []
    try:
        stream = backend.events()
        await backend.send_text("hi")
        async with asyncio.timeout(10):
            async for event in stream:
                events.append(event)
                if isinstance(event, AnswerComplete):
                    break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.8):
                later.extend([event async for event in stream])
    finally:
        await backend.close()
    return events, later


def _answer_after_cut(events: list[Event]) -> str:
    cut = next(i for i, e in enumerate(events) if isinstance(e, Interrupted))
    return "".join(e.text for e in events[cut:] if isinstance(e, AgentText) and e.partial)


async def test_a_server_that_answers_after_the_reconnect_is_not_asked_twice() -> None:
    async with scripted(answers_after_reconnect=True) as (server, url):
        events, later = await _one_turn(url)
    assert _answer_after_cut(events) == "Hello there"
    assert server.received == [_text("hi")]  # sent once
    assert later == []
    assert sum(isinstance(e, TurnComplete) for e in events) == 1
    assert not any(isinstance(e, Notice) and "again" in e.message for e in events)


async def test_a_silent_server_gets_the_turn_again() -> None:
    async with scripted(answers_after_reconnect=False) as (server, url):
        events, later = await _one_turn(url)
    assert _answer_after_cut(events) == "Hello there"
    assert server.received == [_text("hi"), _text("hi")]
    assert later == []
    assert any(
        isinstance(e, Notice) and e.message == "sending your last message again" for e in events
    )


class ExtendedServer:
    """Speaks adkvoice.v1: its hello says whether it answers the turn in flight itself."""

    def __init__(self, *, awaiting_reply: bool) -> None:
        self.awaiting_reply = awaiting_reply
        self.connections = 0
        self.received: list[str] = []

    def _hello(self) -> str:
        return encode_hello(
            Hello(
                session_id="s1",
                modality="TEXT",
                resumed=self.connections > 1,
                limits={},
                awaiting_reply=self.awaiting_reply and self.connections > 1,
            )
        )

    async def _answer(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "agent_text", "text": "Hello there", "partial": True}))
        await ws.send(json.dumps({"type": "turn_complete"}))

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        await ws.send(self._hello())
        if self.connections == 1:
            self.received.append(str(await ws.recv()))
            await ws.send(json.dumps({"type": "agent_text", "text": "Hel", "partial": True}))
            await ws.close(1011, "internal error")
            return
        if self.awaiting_reply:
            await self._answer(ws)
        async for message in ws:
            if json.loads(message)["type"] == "end":  # the client's goodbye
                return
            self.received.append(str(message))
            await self._answer(ws)


@pytest.mark.parametrize("awaiting_reply", [True, False])
async def test_the_servers_hello_settles_whether_to_send_again(awaiting_reply: bool) -> None:
    server = ExtendedServer(awaiting_reply=awaiting_reply)
    async with serve(server.handle, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)]) as s:
        port = next(iter(s.sockets)).getsockname()[1]
        started = time.monotonic()
        # A long guessing window: only the hello can make this turn finish quickly.
        events, later = await _one_turn(f"ws://127.0.0.1:{port}/ws/s1", resend_after_s=30)
        took = time.monotonic() - started
    assert _answer_after_cut(events) == "Hello there"
    sent = json.dumps({"type": "text", "text": "hi"})
    assert server.received == ([sent] if awaiting_reply else [sent, sent])
    assert later == []
    assert took < 10
