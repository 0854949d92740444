"""`WS /ws/{user_id}/{session_id}`: ADK's bidi-demo protocol on `adkvoice serve`, end to
end through the real ADK and the emulator, spoken to the way the demo's page does (binary
PCM and JSON up, ADK Event JSON down)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.typing import Origin

from .emulator_support import MODEL_3X, silence_16k, utterance_16k, wait_until
from .server_support import client, expect_close, recv_until, serving

pytestmark = pytest.mark.integration

NATIVE_AUDIO = "gemini-2.5-flash-native-audio-latest"
TOKEN = "s3cret-token"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # not a picture: the emulator only counts
PAGE_FRAME = 256  # bytes of PCM in each binary frame the demo's page sends


def bidi_url(served: Any, user: str, session: str, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"{served.server.ws_url}/ws/{user}/{session}" + (f"?{params}" if params else "")


def events(frames: list[str | bytes]) -> list[dict[str, Any]]:
    out = []
    for frame in frames:
        assert isinstance(frame, str), "bidi-demo sends text frames only"
        out.append(json.loads(frame))
    return out


def said(frames: list[dict[str, Any]]) -> str:
    """What the agent said: its streamed text and transcript deltas, as the page shows them."""
    out = []
    for event in frames:
        if event.get("author") == "user" or not event.get("partial"):
            continue
        for part in (event.get("content") or {}).get("parts", []):
            out.append(part.get("text", ""))
        out.append((event.get("outputTranscription") or {}).get("text", ""))
    return "".join(out)


async def answer(ws: ClientConnection, text: str, send: str | None = None) -> list[dict[str, Any]]:
    """Events up to the turnComplete that follows the agent saying `text` (bounded)."""
    if send is not None:
        await ws.send(json.dumps({"type": "text", "text": send}))
    seen: list[dict[str, Any]] = []

    def done(frame: str | bytes) -> bool:
        seen.extend(events([frame]))
        return bool(seen[-1].get("turnComplete")) and text in said(seen)

    await recv_until(ws, done)
    return seen


async def error(ws: ClientConnection, code: str) -> dict[str, Any]:
    """The next error event, which must have `code`."""
    frames = await recv_until(ws, lambda f: isinstance(f, str) and '"errorCode"' in f)
    event: dict[str, Any] = json.loads(frames[-1])
    assert event["errorCode"] == code, event
    assert event["errorMessage"]
    return event


def image(data: bytes = JPEG, mime: str = "image/jpeg") -> str:
    return json.dumps({"type": "image", "data": base64.b64encode(data).decode(), "mimeType": mime})


async def test_typed_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, client(bidi_url(served, "u1", "s1")) as ws:
        seen = await answer(ws, "You said: my name is Ada", send="my name is Ada")
        assert said(seen) == "You said: my name is Ada"
        texts = [e for e in seen if e.get("content")]
        assert all(e["author"] == "served" and e["content"]["role"] == "model" for e in texts)
        assert texts[-1]["partial"] is False  # the whole text after its deltas, as ADK sends
        assert seen[-1]["turnComplete"] is True
        assert all(e["invocationId"] == seen[0]["invocationId"] for e in seen)


async def test_tool_call(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served, client(bidi_url(served, "u1", "s2")) as ws:
        seen = await answer(ws, "It is 10:42.", send="what time is it?")
        parts = [p for e in seen for p in (e.get("content") or {}).get("parts", [])]
        call = next(p["functionCall"] for p in parts if "functionCall" in p)
        result = next(p["functionResponse"] for p in parts if "functionResponse" in p)
        assert call["name"] == result["name"] == "get_current_time"
        assert result["id"] == call["id"]
        assert result["response"] == {"time": "10:42"}
        assert any("usageMetadata" in e for e in seen)
    assert served.clock.calls == 1


@pytest.mark.parametrize("model", [NATIVE_AUDIO, MODEL_3X])
async def test_spoken_turn(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """A model that only speaks answers in speech with both transcripts, and the page's
    small binary frames are its microphone."""
    speech = silence_16k(0.2) + await utterance_16k() + silence_16k(0.8)
    async with (
        serving(monkeypatch, model=model, audio_burst_s=30) as served,
        client(bidi_url(served, "u1", "s3")) as ws,
    ):
        for i in range(0, len(speech), PAGE_FRAME):
            await ws.send(speech[i : i + PAGE_FRAME])
        seen = await answer(ws, "You said: [speech ")
        heard = [e for e in seen if "inputTranscription" in e]
        assert heard
        assert all(e["author"] == "user" for e in heard)
        assert heard[-1]["inputTranscription"]["finished"] is True
        audio = [
            p["inlineData"]
            for e in seen
            for p in (e.get("content") or {}).get("parts", [])
            if "inlineData" in p
        ]
        assert {a["mimeType"] for a in audio} == {"audio/pcm;rate=24000"}
        pcm = b"".join(
            base64.urlsafe_b64decode(a["data"] + "=" * (-len(a["data"]) % 4)) for a in audio
        )
        assert len(pcm) > 24_000  # over half a second of speech
    assert served.emulator.stats.utterances == 1


@pytest.mark.parametrize("model", ["gemini-2.0-flash-live-001", MODEL_3X])
async def test_image_is_passed_to_the_model(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """The page's camera button: a JPEG reaches the model (mediaChunks for 2.x, video for
    3.x) and the session goes on."""
    async with (
        serving(monkeypatch, model=model) as served,
        client(bidi_url(served, "u1", "s4")) as ws,
    ):
        await ws.send(image())
        await ws.send(image(b"\x89PNG\r\n\x1a\n" + JPEG, "image/png"))
        await answer(ws, "You said: what is this?", send="what is this?")
        await wait_until(lambda: served.emulator.stats.media_in == 2)
        assert served.emulator.stats.protocol_errors == 0


async def test_token_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, token=TOKEN) as served:
        for query in ({}, {"token": "wrong"}):
            async with client(bidi_url(served, "u1", "t", **query)) as ws:
                code, reason = await expect_close(ws)
                assert code == 1008
                assert "token" in reason
        async with client(bidi_url(served, "u1", "t", token=TOKEN)) as ws:
            await answer(ws, "You said: let me in", send="let me in")
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with client(bidi_url(served, "u1", "t"), additional_headers=headers) as ws:
            await answer(ws, "You said: me too", send="me too")


async def test_other_origins_and_bad_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served:
        evil = Origin("http://evil.example")
        async with client(bidi_url(served, "u1", "o"), origin=evil) as ws:
            code, reason = await expect_close(ws)
            assert code == 1008
            assert "origin" in reason
        async with client(bidi_url(served, "u1", "o"), origin=Origin(served.url)) as ws:
            await answer(ws, "You said: my own page", send="my own page")
        async with client(bidi_url(served, "u!1", "o")) as ws:
            assert (await expect_close(ws))[0] == 1008
        # What the model cannot do is refused, saying why: 2.x has no proactive audio.
        async with client(bidi_url(served, "u1", "p", proactivity="true")) as ws:
            code, reason = await expect_close(ws)
            assert code == 1008
            assert "proactive" in reason


async def test_bad_frames_hurt_only_their_sender(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        serving(monkeypatch, max_image_bytes=1000, max_client_errors=8) as served,
        client(bidi_url(served, "u1", "bad")) as ws,
        client(bidi_url(served, "u2", "good")) as good,
    ):
        await ws.send(b"\x00\x01\x02")
        await error(ws, "invalid_audio")
        await ws.send("not json")
        await error(ws, "invalid_json")
        await ws.send('{"type": "video"}')
        await error(ws, "unknown_type")
        await ws.send(image(mime="image/gif"))
        await error(ws, "unsupported_mime_type")
        await ws.send(image(JPEG))  # over max_image_bytes
        await error(ws, "image_too_large")
        await ws.send('{"type": "activity_start"}')
        await error(ws, "activity_not_enabled")
        # Still a working session, and so is the other connection.
        await answer(ws, "You said: still here", send="still here")
        await answer(good, "You said: fine", send="fine")
        await ws.send('{"type": "text"}')
        await error(ws, "invalid_message")
        await ws.send('{"type": "text", "text": " "}')  # the 8th: closed
        await error(ws, "empty_text")
        code, reason = await expect_close(ws)
        assert code == 1007
        assert "invalid" in reason
        await answer(good, "You said: still fine", send="still fine")
    assert served.emulator.stats.media_in == 0


async def test_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch, image_burst=2, max_frame_bytes=64 * 1024) as served:
        async with client(bidi_url(served, "u1", "lim")) as ws:
            for _ in range(3):
                await ws.send(image(JPEG[:100]))
            await error(ws, "image_rate_exceeded")
            await wait_until(lambda: served.emulator.stats.media_in == 2)
        async with client(bidi_url(served, "u1", "lim"), max_size=None) as ws:
            await ws.send(b"\x00" * (64 * 1024 + 2))
            code, _reason = await expect_close(ws)
            assert code == 1009


async def test_reconnect_continues_the_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serving(monkeypatch) as served:
        async with client(bidi_url(served, "u1", "again")) as ws:
            await answer(ws, "You said: my name is Ada", send="my name is Ada")
        async with client(bidi_url(served, "u1", "again")) as ws:
            seen = await answer(ws, "Before that you said: my name is Ada", send="what did I say?")
            assert "Before that you said: my name is Ada" in said(seen)
        # Another user's session of the same name is another conversation.
        async with client(bidi_url(served, "u2", "again")) as ws:
            seen = await answer(ws, "Before that you said:", send="what did I say?")
            assert "my name is Ada" not in said(seen)


async def test_a_newer_connection_takes_the_conversation_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch) as served, client(bidi_url(served, "u1", "two")) as old:
        await answer(old, "You said: my name is Ada", send="my name is Ada")
        async with client(bidi_url(served, "u1", "two")) as new:
            code, _reason = await expect_close(old)
            assert code == 1000
            await answer(new, "Before that you said: my name is Ada", send="what did I say?")
