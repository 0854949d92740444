"""Bad input never takes the server down: each kind gets a clear answer on its own
connection, which keeps working (or is closed with the right code); other sessions are
unaffected; the server logs each kind once per connection."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .emulator_support import STEP_TIMEOUT_S
from .server_support import (
    Served,
    client,
    expect_close,
    expect_error,
    ext_turn,
    seed_text,
    seed_turn,
    serving,
)

pytestmark = pytest.mark.integration

SMALL_FRAME_LIMIT = 4096


@dataclass(frozen=True)
class Bad:
    frame: str | bytes
    code: str
    extended: bool = False


BAD_INPUT = {
    "malformed json": Bad("{not json", "invalid_json"),
    "json array": Bad("[1, 2]", "invalid_message"),
    "no mime type": Bad('{"data": "hi"}', "invalid_message"),
    "no data": Bad('{"mime_type": "text/plain"}', "invalid_message"),
    "text data not a string": Bad('{"mime_type": "text/plain", "data": 5}', "invalid_message"),
    "empty text": Bad('{"mime_type": "text/plain", "data": "  "}', "empty_text"),
    "lone surrogate": Bad('{"mime_type": "text/plain", "data": "\\ud800"}', "invalid_message"),
    "unknown mime type": Bad('{"mime_type": "image/png", "data": "AAAA"}', "unsupported_mime_type"),
    "bad base64": Bad('{"mime_type": "audio/pcm", "data": "%%%not base64"}', "invalid_base64"),
    "odd pcm": Bad('{"mime_type": "audio/pcm", "data": "AA=="}', "invalid_audio"),
    "wrong rate": Bad('{"mime_type": "audio/pcm;rate=8000", "data": "AAAA"}', "invalid_audio"),
    "binary garbage": Bad(b"\x00\xff\xfe garbage", "binary_not_enabled"),
    "typed message on seeds": Bad('{"type": "text", "text": "hi"}', "extension_not_enabled"),
    "too long text": Bad(
        json.dumps({"mime_type": "text/plain", "data": "x" * 101}), "text_too_long"
    ),
    "ext unknown type": Bad('{"type": "selfdestruct"}', "unknown_type", extended=True),
    "ext odd binary": Bad(b"\x01\x02\x03", "invalid_audio", extended=True),
    "ext text not a string": Bad('{"type": "text", "text": null}', "invalid_message", True),
}


@pytest.mark.parametrize("bad", BAD_INPUT.values(), ids=BAD_INPUT.keys())
async def test_bad_input_gets_an_error_and_the_connection_keeps_working(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bad: Bad
) -> None:
    caplog.set_level(logging.INFO, logger="adkvoice.server")
    async with (
        serving(monkeypatch, max_text_chars=100) as served,
        client(served.ws("victim"), extended=bad.extended) as ws,
        client(served.ws("bystander")) as other,
    ):
        if bad.extended:
            await ws.recv()  # hello
        for _ in range(3):
            await ws.send(bad.frame)
            error = await expect_error(ws, bad.code)
        assert "Traceback" not in error["message"]
        if bad.extended:
            frames = await ext_turn(ws, "still there?")
            assert '"You said: still there?"' in "".join(str(f) for f in frames)
        else:
            frames = await seed_turn(ws, "still there?")
            assert seed_text(frames) == "You said: still there?"
        frames = await seed_turn(other, "and me?")
        assert seed_text(frames) == "You said: and me?"
    logged = [r.getMessage() for r in caplog.records if f"({bad.code})" in r.getMessage()]
    assert len(logged) == 1, logged  # once per connection, not once per frame


async def test_oversized_frame_closes_1009(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, max_frame_bytes=SMALL_FRAME_LIMIT) as served,
        client(served.ws("big"), max_size=None) as ws,
        client(served.ws("small")) as other,
    ):
        huge = json.dumps({"mime_type": "text/plain", "data": "x" * (SMALL_FRAME_LIMIT * 2)})
        await ws.send(huge)
        code, _ = await expect_close(ws)
        assert code == 1009
        frames = await seed_turn(other, "fine here")
        assert seed_text(frames) == "You said: fine here"


async def test_too_many_invalid_messages_close_1007(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, max_client_errors=5) as served, client(served.ws("x")) as ws:
        for _ in range(5):
            await ws.send("nonsense")
        code, reason = await expect_close(ws)
        assert code == 1007
        assert "too many invalid messages" in reason


async def test_unknown_path_and_bad_params(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served:
        async with client(served.ws("bad%20id")) as ws:
            assert (await expect_close(ws))[0] == 1008
        async with client(f"{served.server.ws_url}/ws/ok?is_audio=maybe") as ws:
            code, reason = await expect_close(ws)
            assert code == 1008
            assert "is_audio" in reason


# ------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
seed_like = st.fixed_dictionaries(
    {
        "mime_type": st.sampled_from(["text/plain", "audio/pcm", "audio/pcm;rate=16000", "x/y"])
        | st.text(max_size=12),
        "data": json_values,
    }
).map(json.dumps)
typed_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "audio", "end", "hello"]) | st.text(max_size=8)},
    optional={"text": json_values, "data": json_values},
).map(json.dumps)
frames = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.text(max_size=64),
        json_values.map(json.dumps),
        seed_like,
        typed_like,
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
async def fuzz_target(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Served, ClientConnection]]:
    """One server and one steady session for all fuzz examples (they run in one loop)."""
    async with (
        serving(monkeypatch, max_client_errors=4, max_text_chars=40) as served,
        client(served.ws("steady")) as steady,
    ):
        yield served, steady


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=frames, extended=st.booleans())
async def test_fuzzed_frames_never_hurt_another_session(
    fuzz_target: tuple[Served, ClientConnection], batch: list[str | bytes], extended: bool
) -> None:
    served, steady = fuzz_target
    code: int | None = 0
    async with client(served.ws("fuzz"), extended=extended) as ws:
        try:
            for frame in batch:
                await ws.send(frame)
            # Whatever happened, the fuzzed connection still answers or was closed cleanly.
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await (await ws.ping())
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
    assert code in (0, 1000, 1007, 1009)
    frames = await seed_turn(steady, "still fine")
    assert seed_text(frames) == "You said: still fine"
    assert served.server.hub.ready
