"""The frame pipeline's pure parts, the image header reader, colour naming, and what the
emulator makes of images (decoding, refusals, the {vision} placeholders)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from adkvoice.emulator import client_messages as p
from adkvoice.emulator import vision as emu_vision
from adkvoice.emulator.rules import TemplateContext, parse_rules, render
from adkvoice.emulator.vision import ImageRefused, Sight, colour_name, image_refusal
from adkvoice.errors import ConfigError, ProtocolError
from adkvoice.vision.headers import image_size, jpeg_size, png_size, webp_size
from adkvoice.vision.policy import (
    ChangeDetector,
    FrameGate,
    FramePolicy,
    Pacer,
    fit_size,
    thumbnail_size,
)
from adkvoice.vision.screen import Monitor, Region, Window, parse_screen_spec
from adkvoice.vision.sender import FrameSender

cv2 = pytest.importorskip("cv2", reason="the vision extra is not installed")


def solid(width: int, height: int, bgr: tuple[int, int, int]) -> np.ndarray:
    frame = np.zeros((height, width, 3), dtype=np.uint8)
    frame[:, :] = bgr
    return frame


def encoded(ext: str, frame: np.ndarray, *params: int) -> bytes:
    ok, data = cv2.imencode(ext, frame, list(params))
    assert ok
    return bytes(data)


# -- sizes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), (768, 432)),
        ((1080, 1920), (432, 768)),
        ((1024, 768), (768, 576)),
        ((640, 480), (640, 480)),  # never enlarged
        ((768, 768), (768, 768)),
        ((10000, 5), (768, 1)),  # never 0
    ],
)
def test_fit_size_keeps_the_aspect(size: tuple[int, int], expected: tuple[int, int]) -> None:
    assert fit_size(*size) == expected


def test_fit_size_refuses_an_empty_image() -> None:
    with pytest.raises(ValueError, match="not an image size"):
        fit_size(0, 10)
    assert thumbnail_size(1920, 1080) == (96, 54)


# -- pacing and the gate -------------------------------------------------------------------
def test_pacer_keeps_the_rate_and_never_bursts() -> None:
    pacer = Pacer(1.0)
    assert pacer.delay(100.0) == 0.0
    pacer.tick(100.0)
    assert pacer.delay(100.2) == pytest.approx(0.8)
    pacer.tick(101.0)
    assert pacer.delay(101.0) == pytest.approx(1.0)
    # A frame that took 2.5 s: the missed slots are skipped, not sent in a burst.
    pacer.tick(104.5)
    assert pacer.delay(104.5) == pytest.approx(0.5)
    pacer.tick(105.0)
    assert pacer.delay(105.0) == pytest.approx(1.0)
    assert Pacer(4.0).interval == 0.25
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


def test_gate_while_speaking_holds_open_briefly_after() -> None:
    gate = FrameGate("while-speaking", hold_s=1.0)
    assert not gate.is_open(0.0)
    gate.set_speaking(True, 1.0)
    assert gate.is_open(5.0)
    gate.set_speaking(False, 6.0)
    assert gate.is_open(6.9)
    assert not gate.is_open(7.1)
    always = FrameGate("always")
    assert always.is_open(0.0)
    always.set_speaking(False, 1.0)
    assert always.is_open(2.0)
    with pytest.raises(ValueError, match="frames mode"):
        FrameGate("sometimes")  # type: ignore[arg-type]


def test_policy_checks_its_values() -> None:
    assert FramePolicy().fps == 1.0
    for bad in ({"fps": 0}, {"fps": 60}, {"quality": 0}, {"max_side": 8}, {"mode": "x"}):
        with pytest.raises(ValueError, match=r"fps|quality|max_side|mode"):
            FramePolicy(**bad)  # type: ignore[arg-type]


# -- change detection ----------------------------------------------------------------------
def test_change_detector_threshold() -> None:
    detector = ChangeDetector(threshold=8)
    base = np.full((54, 96), 100, dtype=np.uint8)
    assert detector.changed(base)  # nothing sent yet
    detector.accept(base)
    noisy = base.copy()
    noisy[::7, ::5] += 5  # sensor noise, under the threshold
    assert not detector.changed(noisy)
    typed = base.copy()
    typed[10, 10] = 80  # one thumbnail pixel 20 levels darker: a typed character
    assert detector.changed(typed)
    assert detector.difference(typed) == 20
    assert detector.changed(np.full((96, 54), 100, dtype=np.uint8))  # another shape
    detector.reset()
    assert detector.changed(base)


def test_a_typed_character_on_a_big_screen_counts_as_a_change() -> None:
    from adkvoice.vision.codec import grey_thumbnail

    screen = solid(1920, 1080, (255, 255, 255))
    detector = ChangeDetector()
    detector.accept(grey_thumbnail(screen))
    with_char = screen.copy()
    cv2.putText(with_char, "W", (900, 500), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
    assert detector.changed(grey_thumbnail(with_char))
    noise = np.random.default_rng(1).integers(-6, 7, screen.shape)
    noisy = np.clip(screen.astype(int) - np.abs(noise), 0, 255).astype(np.uint8)
    assert not detector.changed(grey_thumbnail(noisy))


# -- headers -------------------------------------------------------------------------------
def test_image_sizes_from_headers() -> None:
    frame = solid(640, 480, (0, 0, 255))
    assert jpeg_size(encoded(".jpg", frame)) == (640, 480)
    progressive = encoded(".jpg", frame, cv2.IMWRITE_JPEG_PROGRESSIVE, 1)
    assert jpeg_size(progressive) == (640, 480)
    assert png_size(encoded(".png", solid(33, 17, (1, 2, 3)))) == (33, 17)
    assert webp_size(encoded(".webp", solid(50, 30, (1, 2, 3)))) == (50, 30)
    lossless = encoded(".webp", solid(51, 31, (1, 2, 3)), cv2.IMWRITE_WEBP_QUALITY, 101)
    assert image_size(lossless) == (51, 31)
    assert image_size(encoded(".png", frame)) == (640, 480)


def test_header_reader_by_hand_and_on_garbage() -> None:
    # SOI, an APP0 segment, then SOF0 (precision 8, height 2, width 3).
    app0 = b"\xff\xe0" + struct.pack(">H", 4) + b"ab"
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 2, 3) + b"\x01\x11\x00"
    assert jpeg_size(b"\xff\xd8" + app0 + b"\xff" + sof0) == (3, 2)  # a fill byte too
    assert jpeg_size(b"\xff\xd8" + app0 + b"\xff\xda\x00\x02") is None  # scan before frame
    assert jpeg_size(b"\xff\xd8" + app0[:3]) is None  # truncated
    assert jpeg_size(b"\xff\xd8\x00\x00") is None
    for junk in (b"", b"GIF89a", b"\xff\xd8\xff\xe0" + bytes(range(256)), b"RIFF" * 10):
        assert image_size(junk) is None


# -- colour names --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((255, 0, 0), "red"),
        ((224, 16, 16), "red"),
        ((255, 140, 0), "orange"),
        ((250, 230, 20), "yellow"),
        ((0, 200, 0), "green"),
        ((0, 230, 230), "cyan"),
        ((0, 0, 255), "blue"),
        ((140, 30, 200), "purple"),
        ((255, 105, 180), "pink"),
        ((250, 250, 250), "white"),
        ((10, 10, 10), "black"),
        ((128, 128, 128), "grey"),
    ],
)
def test_colour_names(rgb: tuple[int, int, int], name: str) -> None:
    assert colour_name(*rgb) == name


# -- the emulator's sight ------------------------------------------------------------------
def test_sight_decodes_size_colour_and_change() -> None:
    sight = Sight()
    assert sight.facts()["summary"].startswith("I don't see anything")
    assert sight.facts()["frames"] == ""
    red = encoded(".jpg", solid(640, 480, (16, 16, 224)))
    sight.see(red)
    facts = sight.facts()
    assert facts["frames"] == "1"
    assert facts["size"] == "640×480"
    assert facts["colour"] == "red"
    assert re.fullmatch(r"#[de][0-9a-f]1[0-9a-f]1[0-9a-f]", facts["hex"]), facts
    assert facts["summary"] == f"I see 1 frame(s), 640×480, mostly red ({facts['hex']})."
    sight.see(red)
    assert sight.facts()["changed"] == "no"
    assert sight.facts()["summary"].endswith(", unchanged.")
    sight.see(encoded(".png", solid(100, 50, (255, 0, 0))))
    facts = sight.facts()
    assert (facts["frames"], facts["size"], facts["colour"], facts["changed"]) == (
        "3",
        "100×50",
        "blue",
        "yes",
    )


def test_sight_without_opencv_reads_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emu_vision, "_cv2", lambda: None)
    sight = Sight()
    jpeg = encoded(".jpg", solid(320, 200, (0, 255, 0)))
    sight.see(jpeg)
    assert sight.facts()["summary"] == "I see 1 frame(s), 320×200, colour unknown."
    sight.see(jpeg)
    assert sight.changed is False
    sight.see(b"not an image")
    assert sight.facts()["summary"] == (
        "I see 3 frame(s), size unknown, colour unknown, changed since the one before."
    )


def test_sight_survives_an_undecodable_image() -> None:
    sight = Sight()
    sight.see(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    assert sight.frames == 1
    assert sight.size is None


# -- refusals ------------------------------------------------------------------------------
def test_image_refusals() -> None:
    for mime in ("image/jpeg", "image/jpg", "image/png", "image/webp", "IMAGE/HEIC"):
        assert image_refusal(mime, 1000) is None
    assert "not a supported image type" in (image_refusal("image/gif", 10) or "")
    assert "not a supported image type" in (image_refusal("video/mp4", 10) or "")
    assert "limit" in (image_refusal("image/jpeg", emu_vision.MAX_IMAGE_BYTES + 1) or "")
    assert image_refusal("image/jpeg", emu_vision.MAX_IMAGE_BYTES) is None


def realtime(field: str, mime: str, data: bytes = b"\xff\xd8") -> str:
    blob = {"mimeType": mime, "data": base64.b64encode(data).decode()}
    return json.dumps({"realtime_input": {field: [blob] if field == "mediaChunks" else blob}})


def test_image_blobs_decode_or_are_refused() -> None:
    msg = p.decode_client_message(realtime("video", "image/jpeg", b"abc"))
    assert isinstance(msg, p.RealtimeInput)
    assert msg.images == (p.ImageBlob(b"abc", "image/jpeg"),)
    assert msg.other_media == 1
    msg = p.decode_client_message(realtime("mediaChunks", "image/png"))
    assert isinstance(msg, p.RealtimeInput)
    assert msg.other_media == 1
    assert msg.used_media_chunks
    for field, mime in (("video", "image/gif"), ("mediaChunks", "text/plain")):
        with pytest.raises(ImageRefused, match="not a supported image type"):
            p.decode_client_message(realtime(field, mime))
    with pytest.raises(ProtocolError, match="video must be an image"):
        p.decode_client_message(realtime("video", "audio/pcm;rate=16000", b"\0\0"))
    big = bytes(emu_vision.MAX_IMAGE_BYTES + 1)
    with pytest.raises(ImageRefused, match="limit"):
        p.decode_client_message(realtime("video", "image/jpeg", big))


# -- templates -----------------------------------------------------------------------------
def test_vision_placeholders() -> None:
    rules = parse_rules(
        """
        [[rule]]
        match = "see"
        say = "{vision}"
        [[rule]]
        match = "parts"
        say = "{vision.frames} {vision.size} {vision.colour} {vision.hex} {vision.changed}"
        [[rule]]
        match = "colour"
        say = "{vision.colour|text}"
        """
    )
    sight = Sight()
    sight.see(encoded(".png", solid(8, 4, (0, 0, 255))))
    ctx = TemplateContext(text="colour?", vision=sight.facts())
    assert render(rules.match("see").say or "", ctx) == (
        "I see 1 frame(s), 8×4, mostly red (#ff0000)."
    )
    assert render(rules.match("parts").say or "", ctx) == "1 8×4 red #ff0000 "
    assert render(rules.match("colour").say or "", ctx) == "red"
    nothing = TemplateContext(text="colour?", vision=Sight().facts())
    assert render(rules.match("colour").say or "", nothing) == "colour?"
    with pytest.raises(ConfigError, match=r"\{vision.size\}"):
        parse_rules('[[rule]]\nmatch = "x"\nsay = "{vision.width}"')


# -- sources without the extra, and screen specs ---------------------------------------------
def test_sources_need_the_vision_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from adkvoice.vision.screen import ScreenSource
    from adkvoice.vision.sources import CameraSource, ImageFileSource

    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setitem(sys.modules, "mss", None)
    for make in (
        lambda: CameraSource(0),
        lambda: ImageFileSource("x.png"),
        lambda: ScreenSource("1"),
    ):
        with pytest.raises(ConfigError, match=r"pip install 'adkvoice\[vision\]'"):
            make()


def test_bad_files_are_one_line_errors(tmp_path: Path) -> None:
    from adkvoice.vision.sources import CameraSource, ImageFileSource, camera_source

    base = tmp_path
    with pytest.raises(ConfigError, match="no such video file"):
        camera_source(str(base / "none.mp4"))
    (base / "junk.png").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not an image OpenCV can read"):
        ImageFileSource(base / "junk.png")
    with pytest.raises(ConfigError, match="No such file"):
        ImageFileSource(base / "missing.png")
    with pytest.raises(ConfigError, match="OpenCV cannot read"):
        CameraSource(base / "junk.png")


def test_screen_specs() -> None:
    assert parse_screen_spec("") == Monitor(1)
    assert parse_screen_spec("2") == Monitor(2)
    assert parse_screen_spec("0") == Monitor(0)
    assert parse_screen_spec(" 10, 20 ,640,480") == Region(10, 20, 640, 480)
    assert parse_screen_spec("window:My Editor") == Window("My Editor")
    for bad in ("window:", "10,20,0,5", "left", "1,2,3"):
        with pytest.raises(ConfigError):
            parse_screen_spec(bad)


# -- the sender ----------------------------------------------------------------------------
class ListSource:
    """Frames from a list, then the end."""

    name = "list"

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = list(frames)
        self.closed = False

    def grab(self) -> np.ndarray | None:
        return self.frames.pop(0) if self.frames else None

    def close(self) -> None:
        self.closed = True


async def test_sender_skips_unchanged_frames_and_fits_768() -> None:
    red, blue = solid(1600, 1200, (0, 0, 255)), solid(1600, 1200, (255, 0, 0))
    source = ListSource([red, red, red, blue, blue])
    sent: list[tuple[bytes, str]] = []
    updates = []

    async def send(data: bytes, mime: str) -> None:
        sent.append((data, mime))

    sender = FrameSender(source, send, FramePolicy(fps=10), on_update=updates.append)
    async with asyncio.timeout(5):
        await sender.run()
    stats = sender.stats
    assert (stats.grabbed, stats.sent, stats.skipped, stats.ended) == (5, 2, 3, True)
    assert stats.last_size == (768, 576)
    assert [mime for _, mime in sent] == ["image/jpeg"] * 2
    assert all(jpeg_size(data) == (768, 576) for data, _ in sent)
    assert stats.bytes_sent == sum(len(d) for d, _ in sent)
    assert source.closed
    assert updates[-1] == stats


async def test_sender_while_speaking_gate_and_stop() -> None:
    frames = [solid(64, 48, (i * 20 % 256,) * 3) for i in range(100)]  # each one differs
    source = ListSource(frames)
    sent: list[bytes] = []

    async def send(data: bytes, mime: str) -> None:
        sent.append(data)

    policy = FramePolicy(fps=10, mode="while-speaking", speaking_hold_s=0.0)
    sender = FrameSender(source, send, policy)
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.3)
    assert sender.stats.grabbed == 0  # nobody speaks: nothing grabbed
    sender.set_speaking(True)
    await asyncio.sleep(0.35)
    sender.set_speaking(False)
    await asyncio.sleep(0.05)
    during = sender.stats.sent
    assert 2 <= during <= 5
    await asyncio.sleep(0.3)
    assert sender.stats.sent == during
    sender.stop()
    async with asyncio.timeout(2):
        await task
    assert source.closed
    assert not sender.stats.ended


async def test_sender_resend_and_errors_propagate() -> None:
    frame = solid(32, 32, (0, 255, 0))

    class Forever(ListSource):
        def grab(self) -> np.ndarray | None:
            return frame

    calls = 0

    async def send(data: bytes, mime: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("backend gone")

    sender = FrameSender(Forever([]), send, FramePolicy(fps=10))
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.25)
    assert sender.stats.sent == 1
    sender.resend()  # the same picture again: sent, and this send fails
    with pytest.raises(RuntimeError, match="backend gone"):
        async with asyncio.timeout(2):
            await task


async def test_encode_image_file(tmp_path: Path) -> None:
    from adkvoice.vision.sender import encode_image_file

    path = tmp_path / "wide.png"
    assert cv2.imwrite(str(path), solid(2000, 1000, (0, 0, 0)))
    frame = await encode_image_file(path)
    assert (frame.width, frame.height, frame.mime_type) == (768, 384, "image/jpeg")
    assert jpeg_size(frame.data) == (768, 384)
