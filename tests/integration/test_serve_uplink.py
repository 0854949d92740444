"""Microphone audio in a browser's small frames (8 ms: 256 bytes of 16 kHz PCM) reaches the
model in chunks of at least 40 ms on every route that carries it, is still heard and
answered, and never arrives after what the client sent after it (server/uplink.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from adkvoice.emulator import client_messages as p
from adkvoice.emulator.connection import LiveConnection
from adkvoice.server.uplink import CHUNK_BYTES

from .emulator_support import silence_16k, utterance_16k, wait_until
from .server_support import Served, client, ext_turn, seed_text, seed_turn, serving
from .test_server_bidi import answer
from .test_server_seeds_sse import by_mime, events

pytestmark = pytest.mark.integration

BROWSER_FRAME = 256  # bytes: 128 samples, an AudioWorklet's block at 16 kHz
HEARD = "You said: [speech "


class ModelInput:
    """What the emulator was handed, in order: ("audio", bytes in the chunk) for each audio
    chunk, ("text", 0) for a typed turn."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[tuple[str, int]] = []
        original = LiveConnection.handle

        async def handle(connection: LiveConnection, msg: p.ClientMessage) -> None:
            if isinstance(msg, p.RealtimeInput):
                self.log += [("audio", len(chunk.pcm)) for chunk in msg.audio]
                if msg.text is not None:
                    self.log.append(("text", 0))
            elif isinstance(msg, p.ClientContent) and msg.turns:
                self.log.append(("text", 0))
            await original(connection, msg)

        monkeypatch.setattr(LiveConnection, "handle", handle)

    @property
    def audio_chunks(self) -> list[int]:
        return [size for kind, size in self.log if kind == "audio"]


def frames_of(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + BROWSER_FRAME] for i in range(0, len(pcm), BROWSER_FRAME)]


async def speech() -> bytes:
    return silence_16k(0.2) + await utterance_16k() + silence_16k(0.8)


async def connected(served: Served) -> None:
    """The agent's model connection is up (audio sent before it is held, bounded)."""
    await wait_until(lambda: served.emulator.stats.setups >= 1)


async def assert_coalesced(model_input: ModelInput, sent: bytes) -> None:
    # The answer can come before the tail: the model heard the speech end before it.
    # The tail is held at most 40 ms, then flushed: nothing is lost.
    await wait_until(lambda: sum(model_input.audio_chunks) >= len(sent))
    sizes = model_input.audio_chunks
    assert sum(sizes) == len(sent)
    # Sent as fast as the client can: every chunk is a full one, but for what a timer
    # flushed (the tail, or a pause of the server's loop on a busy machine).
    small = [size for size in sizes if size < CHUNK_BYTES]
    assert len(small) <= 3, sizes
    assert len(sizes) <= len(sent) // CHUNK_BYTES + 3, sizes


async def send_seeds_ws(served: Served, pcm: bytes) -> str:
    async with client(served.ws("8ms", audio=True)) as ws:
        await connected(served)
        for frame in frames_of(pcm):
            data = base64.b64encode(frame).decode()
            await ws.send(json.dumps({"mime_type": "audio/pcm", "data": data}))
        return seed_text(await seed_turn(ws))


async def send_bidi(served: Served, pcm: bytes) -> str:
    async with client(f"{served.server.ws_url}/ws/u8/s8") as ws:
        await connected(served)
        for frame in frames_of(pcm):
            await ws.send(frame)  # binary, as the demo's page sends it
        seen = await answer(ws, HEARD)
        return HEARD if seen else ""


async def send_sse(served: Served, pcm: bytes) -> str:
    async with (
        httpx.AsyncClient(base_url=served.url) as http,
        events(http, "8ms", audio=True) as stream,
    ):
        await connected(served)
        for frame in frames_of(pcm):
            body = {"mime_type": "audio/pcm", "data": base64.b64encode(frame).decode()}
            response = await http.post("/send/8ms", json=body)
            assert response.json() == {"status": "sent"}
        return "".join(by_mime(await stream.turn(), "text/plain"))


ROUTES: dict[str, Any] = {"seeds": send_seeds_ws, "bidi": send_bidi, "sse": send_sse}


@pytest.mark.parametrize("route", list(ROUTES))
async def test_small_frames_reach_the_model_in_40_ms_chunks_and_are_answered(
    monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    model_input = ModelInput(monkeypatch)
    pcm = await speech()
    async with serving(monkeypatch, audio_burst_s=30) as served:
        said = await ROUTES[route](served, pcm)
        assert said.startswith(HEARD)
        await assert_coalesced(model_input, pcm)
    assert served.emulator.stats.utterances == 1


async def test_held_audio_goes_before_a_typed_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Less than a chunk, then text at once: the audio is flushed first, not 40 ms later."""
    model_input = ModelInput(monkeypatch)
    async with (
        serving(monkeypatch) as served,
        client(served.ws("order", audio=True), extended=True) as ws,
    ):
        await ws.recv()  # hello
        await connected(served)
        for frame in frames_of(silence_16k(0.024)):  # three 8 ms frames: 768 bytes
            await ws.send(frame)
        await ext_turn(ws, "hello")
    assert model_input.log[:2] == [("audio", 768), ("text", 0)]
