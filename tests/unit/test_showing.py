"""Showing the agent pictures: the typed commands, the transport check, the speech gate's
wiring in the voice loop, the indicator, the recorder's image files and the flags."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import typer
from rich.console import Console

from adkvoice.audio.capture import CaptureChunk
from adkvoice.audio.recorder import Recorder
from adkvoice.backends.base import Capabilities, require_images
from adkvoice.cli_options import FramesOption, vision_settings
from adkvoice.conversation.images import (
    FrameFeed,
    Showing,
    ShowRequest,
    open_feed_source,
    parse_show_line,
)
from adkvoice.conversation.voice import TalkSession
from adkvoice.errors import ConfigError
from adkvoice.events import Event, ImageSent, Notice, UserText, to_json_dict
from adkvoice.ui.keys import Command, TypedLine
from adkvoice.ui.talk_view import TalkState, TalkView, status_line

JPEG = b"\xff\xd8\xff\xc0\x00\x11\x08\x01\xb0\x03\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"


class FakeBackend:
    description = "test server · seeds"

    def __init__(self, images: bool = True) -> None:
        self.capabilities = Capabilities(
            push_to_talk=True, tool_events=False, user_transcripts=False, images=images
        )
        self.sent: list[tuple[str, object]] = []

    async def send_image(self, data: bytes, mime_type: str) -> None:
        self.sent.append(("image", (len(data), mime_type)))

    async def send_text(self, text: str) -> None:
        self.sent.append(("text", text))

    async def send_audio(self, pcm: bytes) -> None:
        self.sent.append(("audio", len(pcm)))

    async def send_activity_start(self) -> None:
        self.sent.append(("activity", "start"))

    async def send_activity_end(self) -> None:
        self.sent.append(("activity", "end"))


class FakePlayback:
    playing = False
    on_reply_start = None

    def read_played(self) -> list[object]:
        return []


class GateSpy:
    """Stands in for a `FrameFeed`: records what the gate was told."""

    def __init__(self) -> None:
        self.calls: list[bool] = []

    def set_speaking(self, speaking: bool) -> None:
        self.calls.append(speaking)


def session(backend: FakeBackend, *, push_to_talk: bool = False) -> tuple[TalkSession, GateSpy]:
    talk = TalkSession(
        backend,  # type: ignore[arg-type]
        TalkView(Console(file=io.StringIO(), width=200), TalkState(push_to_talk=push_to_talk)),
        FakePlayback(),  # type: ignore[arg-type]
        push_to_talk=push_to_talk,
        half_duplex=False,
    )
    spy = GateSpy()
    talk.feed = spy  # type: ignore[assignment]
    return talk, spy


# -- typed commands --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("/image red.png", ShowRequest("image", "red.png")),
        ("  /image  my photos/a b.jpg ", ShowRequest("image", "my photos/a b.jpg")),
        ("/image", "/image needs a file: /image PATH"),
        ("/screen", ShowRequest("screen", "1")),
        ("/screen 0,0,800,600", ShowRequest("screen", "0,0,800,600")),
        ("/screen window:Editor", ShowRequest("screen", "window:Editor")),
        ("what is /image for?", None),
        ("/imagery", None),
        ("hello", None),
    ],
)
def test_show_commands_parse(line: str, parsed: object) -> None:
    assert parse_show_line(line) == parsed


def test_a_transport_without_images_is_refused_in_one_line() -> None:
    require_images(FakeBackend(images=True))  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        require_images(FakeBackend(images=False))  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    assert str(info.value).startswith("test server · seeds carries no images: show them over")


async def test_a_bad_image_command_is_a_notice_and_nothing_is_held(tmp_path: Path) -> None:
    published: list[Event] = []
    backend = FakeBackend()
    showing = Showing(backend, published.append)  # type: ignore[arg-type]
    assert await showing.handle_line(f"/image {tmp_path}/missing.png")
    assert await showing.handle_line(f"/image {tmp_path}")
    assert not await showing.handle_line("hello")
    assert [e.message for e in published if isinstance(e, Notice)] == [
        f"image {tmp_path}/missing.png: no such file",
        f"image {tmp_path}: is a directory",
    ]
    assert not showing.pending
    no_images = Showing(FakeBackend(images=False), published.append)  # type: ignore[arg-type]
    assert await no_images.handle_line("/screen")
    assert isinstance(published[-1], Notice)
    assert "carries no images" in published[-1].message


async def test_an_image_goes_right_before_the_next_message(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="the vision extra is not installed")
    picture = np.zeros((200, 1600, 3), dtype=np.uint8)
    picture[:, :] = (255, 0, 0)
    assert cv2.imwrite(str(tmp_path / "wide.png"), picture)
    published: list[Event] = []
    backend = FakeBackend()
    talk, _ = session(backend)
    talk.conversation.add_sink(type("Sink", (), {"handle": lambda _s, e: published.append(e)})())
    await talk.on_input(TypedLine(f"/image {tmp_path}/wide.png"))
    assert talk.showing.pending
    assert backend.sent == []  # nothing before the message it goes with
    await talk.on_input(TypedLine("what is this?"))
    assert [kind for kind, _ in backend.sent] == ["image", "text"]
    sent = [e for e in published if isinstance(e, ImageSent)]
    assert len(sent) == 1
    assert (sent[0].source, sent[0].width, sent[0].height) == ("image wide.png", 768, 96)
    assert not sent[0].stream
    kinds = [type(e) for e in published]
    assert kinds.index(ImageSent) < kinds.index(UserText)
    lines = talk.view._console.file.getvalue()  # type: ignore[attr-defined]
    assert "image wide.png goes with your next message" in lines
    assert "image wide.png sent (768×96, " in lines


# -- the while-speaking gate ------------------------------------------------------------------
def chunks(pcm: np.ndarray, start: float = 0.0) -> list[CaptureChunk]:
    out = []
    for i in range(0, pcm.size, 320):
        frame = pcm[i : i + 320].astype("<i2")
        out.append(CaptureChunk(pcm=frame.tobytes(), captured_at=start + i / 16000, level_dbfs=-20))
    return out


async def feed_mic(talk: TalkSession, items: list[CaptureChunk]) -> None:
    async def mic() -> AsyncIterator[CaptureChunk]:
        for item in items:
            yield item

    await talk.pump_mic(mic())


def speech_then_silence() -> list[CaptureChunk]:
    rng = np.random.default_rng(1)
    quiet = (rng.standard_normal(16000) * 30).astype(np.int16)
    t = np.arange(16000) / 16000
    voice = (np.sin(2 * np.pi * 220 * t) * 8000 * (1 + np.sin(2 * np.pi * 4 * t)) / 2).astype(
        np.int16
    )
    return chunks(np.concatenate([quiet, voice, quiet, quiet]))


async def test_speech_opens_and_closes_the_gate() -> None:
    talk, spy = session(FakeBackend())
    await feed_mic(talk, speech_then_silence())
    assert spy.calls == [True, False]


async def test_a_muted_microphone_keeps_the_gate_closed() -> None:
    talk, spy = session(FakeBackend())
    await talk.on_input(Command.MUTE)
    await feed_mic(talk, speech_then_silence())
    assert True not in spy.calls


async def test_a_typed_turn_opens_the_gate_for_a_moment() -> None:
    backend = FakeBackend()
    talk, spy = session(backend)
    await talk.on_input(TypedLine("look at this"))
    assert spy.calls == [True, False]  # closed again: the hold lets the current frame out
    assert backend.sent == [("text", "look at this")]


async def test_the_talk_key_opens_the_gate_in_push_to_talk() -> None:
    talk, spy = session(FakeBackend(), push_to_talk=True)
    await talk.on_input(Command.TALK)
    await feed_mic(talk, speech_then_silence())  # the voice detection does not decide
    await talk.on_input(Command.TALK)
    assert spy.calls == [True, False]


async def test_a_feed_publishes_every_frame_it_sends() -> None:
    published: list[Event] = []
    backend = FakeBackend()

    class Source:
        name = "screen 1"

        def grab(self) -> None:
            return None

        def close(self) -> None:
            pass

    from adkvoice.vision.policy import FramePolicy

    feed = FrameFeed(Source(), backend, published.append, FramePolicy())  # type: ignore[arg-type]
    await feed._send(JPEG, "image/jpeg")
    await feed._send(JPEG, "image/jpeg")
    assert [(e.count, e.width, e.height, e.stream) for e in published] == [  # type: ignore[union-attr]
        (1, 768, 432, True),
        (2, 768, 432, True),
    ]
    task = asyncio.create_task(feed.run())  # the source ends at once: a notice, no exit
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()
    assert isinstance(published[-1], Notice)
    assert published[-1].message == "screen 1 ended: no more frames are sent"


# -- the indicator, --json and --record --------------------------------------------------------
def frame_event(count: int, *, stream: bool = True, source: str = "screen 1") -> ImageSent:
    return ImageSent(
        source=source,
        data=bytes(35_000),
        mime_type="image/jpeg",
        width=768,
        height=432,
        count=count,
        stream=stream,
    )


def test_the_status_line_counts_the_frames_sent() -> None:
    out = io.StringIO()
    view = TalkView(Console(file=out, width=200), TalkState())
    assert "sent" not in status_line(view.state).plain
    for n in range(1, 13):
        view.handle(frame_event(n))
    assert "screen 1 · 12 sent" in status_line(view.state).plain
    assert out.getvalue() == ""  # feed frames are counted, not printed
    view.handle(frame_event(1, stream=False, source="image red.png"))
    assert out.getvalue() == "image red.png sent (768×432, 35 kB)\n"


def test_json_names_the_frame_but_not_its_bytes() -> None:
    line = to_json_dict(frame_event(3))
    assert line == {
        "type": "image_sent",
        "t": line["t"],
        "source": "screen 1",
        "stream": True,
        "mime_type": "image/jpeg",
        "width": 768,
        "height": 432,
        "bytes": 35_000,
        "count": 3,
    }


def test_the_recorder_stores_each_frame_and_names_it_in_the_log(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, stem="rec")
    recorder.handle(
        ImageSent(source="camera 0", data=JPEG, mime_type="image/jpeg", width=1, height=1)
    )
    recorder.handle(frame_event(2))
    recorder.close()
    lines = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    files = [x["file"] for x in lines if x["type"] == "image_sent"]
    assert files == ["rec-image-0001.jpg", "rec-image-0002.jpg"]
    assert (tmp_path / "rec-image-0001.jpg").read_bytes() == JPEG
    assert (tmp_path / "rec-image-0002.jpg").stat().st_size == 35_000


# -- flags --------------------------------------------------------------------------------------
def test_vision_flags_become_settings() -> None:
    settings = vision_settings(screen="0,0,800,600", fps=2.5, frames=FramesOption.always)
    assert (settings.screen, settings.fps, settings.frames) == ("0,0,800,600", 2.5, "always")
    assert vision_settings().frames == "while-speaking"
    assert vision_settings().fps == 1.0


@pytest.mark.parametrize(
    "flags",
    [
        {"camera": "0", "screen": "1"},
        {"fps": 0.0},
        {"fps": 11.0},
        {"fps": float("nan")},
        {"camera": " "},
    ],
)
def test_bad_vision_flags_exit_2(
    flags: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info:
        vision_settings(**flags)  # type: ignore[arg-type]
    assert info.value.exit_code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_directory_is_not_a_camera(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory; give a camera number"):
        open_feed_source(str(tmp_path), None)
    assert open_feed_source(None, None) is None
