"""Images on `WS /ws/{id}` with adkvoice.v1 (`{"type": "image"}`): passed to the model
through the real ADK, under the same size and rate limits as the bidi-demo route."""

from __future__ import annotations

import base64
import json

import pytest

from adkvoice.wire.adkvoice_v1 import encode_client_image

from .emulator_support import MODEL_3X, wait_until
from .server_support import client, expect_error, ext_turn, json_frames, serving

pytestmark = pytest.mark.integration

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # not a picture: the emulator only counts


def said(frames: list[str | bytes]) -> str:
    return "".join(
        f["text"] for f in json_frames(frames) if f["type"] == "agent_text" and f["partial"]
    )


@pytest.mark.parametrize("model", ["gemini-2.0-flash-live-001", MODEL_3X])
async def test_images_reach_the_model(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with (
        serving(monkeypatch, model=model) as served,
        client(served.ws("img1"), extended=True) as ws,
    ):
        hello = json.loads(await ws.recv())
        assert hello["limits"]["max_image_bytes"] == 2 * 1024 * 1024
        assert hello["limits"]["images_per_s"] == 2.0
        await ws.send(encode_client_image(JPEG, "image/jpeg"))
        # As a browser sends it: no spaces, PNG.
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + JPEG).decode()
        await ws.send('{"type":"image","mime_type":"image/png","data":"' + png + '"}')
        frames = await ext_turn(ws, "what is this?")
        assert "You said: what is this?" in said(frames)
        await wait_until(lambda: served.emulator.stats.media_in == 2)
        assert served.emulator.stats.protocol_errors == 0


async def test_image_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, max_image_bytes=1000, image_burst=2) as served,
        client(served.ws("img2"), extended=True) as ws,
    ):
        await ws.recv()  # hello
        await ws.send(encode_client_image(JPEG, "image/jpeg"))  # over max_image_bytes
        await expect_error(ws, "image_too_large")
        await ws.send(encode_client_image(JPEG[:100], "image/gif"))
        await expect_error(ws, "unsupported_mime_type")
        for _ in range(3):
            await ws.send(encode_client_image(JPEG[:100], "image/jpeg"))
        error = await expect_error(ws, "image_rate_exceeded")
        assert "2 a second" in error["message"]
        await wait_until(lambda: served.emulator.stats.media_in == 2)
        # Still a working session.
        assert "You said: still here" in said(await ext_turn(ws, "still here"))


async def test_a_seeds_connection_is_told_images_need_the_extension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch) as served, client(served.ws("img3")) as ws:
        await ws.send(encode_client_image(JPEG[:100], "image/jpeg"))
        error = await expect_error(ws, "extension_not_enabled")
        assert "adkvoice.v1" in error["message"]
    assert served.emulator.stats.media_in == 0
