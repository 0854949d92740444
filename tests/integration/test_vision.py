"""Showing the agent a screen, a camera and an image, on real sources: a private Xvfb
screen captured through mss, a video file written here with OpenCV as the camera, a PNG
file. Frames go through the real embedded ADK backend (`EmbeddedBackend.send_image`) to
the emulator, which is then asked "what do you see?".

Also: an idle screen costs one frame, and the emulator refuses what Gemini refuses.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from adkvoice.backends.embedded import EmbeddedBackend
from adkvoice.emulator.stats import ConnectionRecord
from adkvoice.emulator.vision import MAX_IMAGE_BYTES
from adkvoice.vision.policy import FramePolicy
from adkvoice.vision.screen import ScreenSource
from adkvoice.vision.sender import FrameSender
from adkvoice.vision.sources import CameraSource, FrameSource, ImageFileSource
from tests.contract.support import Live, shown_text, started

from .emulator_support import MODEL_2X, MODEL_3X, MODELS, running_emulator, wait_until
from .xvfb_support import Painter, running_xvfb

cv2 = pytest.importorskip("cv2", reason="the vision extra is not installed")
pytest.importorskip("mss", reason="the vision extra is not installed")

pytestmark = pytest.mark.integration

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
STEP_S = 10.0


def last_connection(live: Live) -> ConnectionRecord:
    return live.emulator.stats.connection_log[-1]


async def show(live: Live, source: FrameSource, policy: FramePolicy, frames: int) -> FrameSender:
    """Send `source` through the embedded backend until the emulator has seen `frames`
    frames (or the source ended), then stop."""
    backend = live.backend
    assert isinstance(backend, EmbeddedBackend)
    await live.model_connected()
    sender = FrameSender(source, backend.send_image, policy)
    task = asyncio.create_task(sender.run())
    try:
        await wait_until(lambda: last_connection(live).sight.frames >= frames or task.done())
    finally:
        sender.stop()
        async with asyncio.timeout(STEP_S):
            await task
    await wait_until(lambda: last_connection(live).sight.frames >= sender.stats.sent)
    return sender


async def ask_what_it_sees(live: Live) -> str:
    await live.backend.send_text("what do you see?")
    seen = await live.events.answers(1)
    return shown_text(seen)


async def until_closed(session: genai.live.AsyncSession) -> None:
    async with asyncio.timeout(STEP_S):
        async for _ in session.receive():
            pass


@pytest.mark.parametrize("model", MODELS)
async def test_screen_is_seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: str) -> None:
    """A red 1024x768 screen reaches the model as a 768x576 JPEG (mediaChunks on 2.x,
    `video` on 3.x) and the emulator says so."""
    with running_xvfb() as display:
        painter = Painter(display)
        painter.fill(RED)
        try:
            async with started("embedded", monkeypatch, tmp_path, model=model) as live:
                source = ScreenSource("1", display=display)
                sender = await show(live, source, FramePolicy(fps=4), frames=1)
                assert sender.stats.sent >= 1
                assert sender.stats.last_size == (768, 576)
                text = await ask_what_it_sees(live)
        finally:
            painter.close()
    assert re.search(
        r"I see \d+ frame\(s\), 768×576, mostly red \(#f[0-9a-f]0[0-9a-f]0[0-9a-f]\)", text
    ), text
    assert live.emulator.stats.media_in >= 1
    assert live.emulator.stats.protocol_errors == 0


async def test_video_file_as_camera(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A 1280x720 solid blue video played as the camera: one frame sent (the rest are the
    same picture), fitted to 768x432."""
    video = tmp_path / "blue.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (1280, 720))
    assert writer.isOpened()
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    frame[:, :] = (255, 0, 0)  # BGR: blue
    for _ in range(15):  # 1.5 s
        writer.write(frame)
    writer.release()
    async with started("embedded", monkeypatch, tmp_path, model=MODEL_2X) as live:
        camera = CameraSource(video)
        sender = await show(live, camera, FramePolicy(fps=4), frames=99)  # until it ends
        assert sender.stats.ended
        assert sender.stats.sent == 1
        assert sender.stats.skipped >= 1
        text = await ask_what_it_sees(live)
    assert "I see 1 frame(s), 768×432, mostly blue (#" in text, text


async def test_image_file_is_seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    image = tmp_path / "green.png"
    picture = np.zeros((500, 1000, 3), dtype=np.uint8)
    picture[:, :] = (0, 200, 0)
    assert cv2.imwrite(str(image), picture)
    async with started("embedded", monkeypatch, tmp_path, model=MODEL_3X) as live:
        sender = await show(live, ImageFileSource(image), FramePolicy(), frames=1)
        assert sender.stats.sent == 1
        text = await ask_what_it_sees(live)
    assert "I see 1 frame(s), 768×384, mostly green (#00c" in text, text
    sight = last_connection(live).sight
    assert sight.size == (768, 384)
    assert sight.colour is not None
    assert abs(sight.colour[1] - 200) <= 3


async def test_idle_screen_sends_one_frame() -> None:
    """At 1 fps an unchanged screen is grabbed every second but sent once; a change is
    sent at the next grab."""
    sent: list[bytes] = []

    async def send(data: bytes, mime: str) -> None:
        assert mime == "image/jpeg"
        sent.append(data)

    with running_xvfb() as display:
        painter = Painter(display)
        painter.fill(GREEN)
        sender = FrameSender(ScreenSource("1", display=display), send, FramePolicy(fps=1))
        task = asyncio.create_task(sender.run())
        try:
            await asyncio.sleep(3.5)  # grabs at 0, 1, 2 and 3 s
            idle = sender.stats
            painter.fill(BLUE)
            await wait_until(lambda: sender.stats.sent == 2)
        finally:
            sender.stop()
            async with asyncio.timeout(STEP_S):
                await task
            painter.close()
    assert idle.sent == 1
    assert idle.skipped == idle.grabbed - 1 >= 2
    assert len(sent) == 2
    assert sender.stats.bytes_sent == sum(map(len, sent))


def test_window_by_title_is_captured() -> None:
    with running_xvfb() as display:
        painter = Painter(display)
        painter.fill(GREEN)
        try:
            painter.window("adkvoice target", (200, 150, 320, 240), BLUE)
            source = ScreenSource("window:adkvoice target", display=display)
            try:
                frame = source.grab()
            finally:
                source.close()
        finally:
            painter.close()
    assert frame is not None
    assert frame.shape[:2] == (240, 320)
    assert tuple(frame[120, 160, :3]) == (255, 0, 0)  # BGRA: blue


async def test_refused_images_close_1007(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Gemini refuses (an unsupported type, an image over the limit) closes the
    connection with 1007; a good image does not."""
    ok, jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), dtype=np.uint8))
    assert ok
    async with running_emulator(monkeypatch) as emu:
        client = genai.Client()
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            output_audio_transcription=types.AudioTranscriptionConfig(),
        )
        cases = [
            (MODEL_3X, "video", types.Blob(data=b"GIF89a", mime_type="image/gif")),
            (MODEL_2X, "media", types.Blob(data=b"\0" * 64, mime_type="video/mp4")),
            (MODEL_2X, "media", types.Blob(data=bytes(MAX_IMAGE_BYTES + 1), mime_type="image/png")),
        ]
        for model, field, blob in cases:
            async with client.aio.live.connect(model=model, config=config) as session:
                await session.send_realtime_input(
                    **{field: types.Blob(data=jpeg.tobytes(), mime_type="image/jpeg")}
                )  # type: ignore[arg-type]
                await session.send_realtime_input(**{field: blob})  # type: ignore[arg-type]
                with pytest.raises(errors.APIError) as info:
                    await until_closed(session)
            assert info.value.code == 1007, (model, blob.mime_type)
            assert "invalid argument" in str(info.value)
        assert emu.stats.refused_images == 3
        assert emu.stats.media_in == 3  # the good ones
        assert [r.sight.size for r in emu.stats.connection_log] == [(64, 48)] * 3
