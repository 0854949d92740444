"""What the user shows the model in a conversation: a camera or screen feed, and one-off
images.

- `FrameFeed` runs a `vision.FrameSender` on a camera or the screen and publishes an
  `ImageSent` for every frame sent (the talk status line counts them, `--json` and the
  recorder see each one). Its `set_speaking` feeds the `while-speaking` gate.
- `Showing` handles the typed commands `/image PATH` and `/screen [MONITOR|REGION]`: the
  picture is taken when the command is typed and goes to the model right before the next
  message (`send_pending`: `send_image`, then the message). A bad path or a screen that
  cannot be captured is one notice line; the conversation goes on.
A transport that carries no images is refused in one line (`backends.base.require_images`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Literal

from adkvoice.backends.base import require_images
from adkvoice.errors import AdkVoiceError, ConfigError
from adkvoice.events import Event, ImageSent, Notice

if TYPE_CHECKING:
    from collections.abc import Callable

    from adkvoice.backends.base import Backend
    from adkvoice.vision.codec import EncodedFrame
    from adkvoice.vision.policy import FramePolicy
    from adkvoice.vision.sender import FrameSender
    from adkvoice.vision.sources import FrameSource

    Publish = Callable[[Event], None]


@dataclass(frozen=True)
class ShowRequest:
    """A typed `/image PATH` (`arg` the path) or `/screen [SPEC]` (`arg` the screen spec,
    "1" when none is given)."""

    kind: Literal["image", "screen"]
    arg: str


def parse_show_line(text: str) -> ShowRequest | str | None:
    """A typed line as a show command: a `ShowRequest`, a one-line complaint (str) for a
    malformed one, or None for an ordinary message."""
    stripped = text.strip()
    word, _, rest = stripped.partition(" ")
    rest = rest.strip()
    if word == "/image":
        if not rest:
            return "/image needs a file: /image PATH"
        return ShowRequest("image", rest)
    if word == "/screen":
        return ShowRequest("screen", rest or "1")
    return None


def image_sent(
    frame: EncodedFrame, source: str, *, count: int = 1, stream: bool = False
) -> ImageSent:
    return ImageSent(
        source=source,
        data=frame.data,
        mime_type=frame.mime_type,
        width=frame.width,
        height=frame.height,
        count=count,
        stream=stream,
    )


async def image_file_frame(path: str | Path, policy: FramePolicy | None = None) -> EncodedFrame:
    """An image file fitted and JPEG-encoded (in a thread); `ConfigError` for a missing
    or unreadable file, or without the vision extra."""
    return await asyncio.to_thread(_image_file_frame, str(path), policy)


def _image_file_frame(given: str, policy: FramePolicy | None) -> EncodedFrame:
    from adkvoice.vision.codec import prepare
    from adkvoice.vision.policy import FramePolicy
    from adkvoice.vision.sources import read_image

    path = Path(given).expanduser()
    if not path.is_file():
        raise ConfigError(f"image {given}: {'is a directory' if path.is_dir() else 'no such file'}")
    fit = policy or FramePolicy()
    return prepare(read_image(path), max_side=fit.max_side, quality=fit.quality)


async def screen_frame(spec: str, policy: FramePolicy | None = None) -> tuple[EncodedFrame, str]:
    """One picture of the screen now (in a thread), and the source's name."""
    from adkvoice.vision.codec import prepare
    from adkvoice.vision.policy import FramePolicy
    from adkvoice.vision.screen import ScreenSource

    fit = policy or FramePolicy()

    def grab() -> tuple[EncodedFrame, str]:
        source = ScreenSource(spec)
        try:
            picture = source.grab()
            if picture is None:
                raise ConfigError(f"/screen {spec}: the window has gone")
            return prepare(picture, max_side=fit.max_side, quality=fit.quality), source.name
        finally:
            source.close()

    return await asyncio.to_thread(grab)


class Showing:
    """One-off pictures for a conversation: taken when asked for, sent with the next
    message."""

    def __init__(self, backend: Backend, publish: Publish) -> None:
        self._backend = backend
        self._publish = publish
        self._pending: tuple[EncodedFrame, str] | None = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    async def handle_line(self, text: str) -> bool:
        """If `text` is `/image …` or `/screen …`, take the picture (or say in one line
        why not) and return True; an ordinary message returns False."""
        request = parse_show_line(text)
        if request is None:
            return False
        try:
            if isinstance(request, str):
                raise ConfigError(request)
            require_images(self._backend)
            if request.kind == "image":
                frame = await image_file_frame(request.arg)
                name = f"image {PurePath(request.arg).name}"
            else:
                frame, name = await screen_frame(request.arg)
        except AdkVoiceError as exc:
            self._publish(Notice(message=str(exc), level="warning"))
            return True
        self.hold(frame, name)
        self._publish(Notice(message=f"{name} goes with your next message", level="info"))
        return True

    def hold(self, frame: EncodedFrame, source: str) -> None:
        """Send `frame` right before the next message (replacing one held already)."""
        self._pending = (frame, source)

    async def send_pending(self) -> None:
        """The held picture to the model, now (before the message it goes with)."""
        if self._pending is None:
            return
        frame, source = self._pending
        self._pending = None
        await self._backend.send_image(frame.data, frame.mime_type)
        self._publish(image_sent(frame, source))


class FrameFeed:
    """A camera or the screen shown to the model as `policy` says, publishing an
    `ImageSent` per frame sent."""

    def __init__(
        self, source: FrameSource, backend: Backend, publish: Publish, policy: FramePolicy
    ) -> None:
        from adkvoice.vision.sender import FrameSender

        self.name = source.name
        self._backend = backend
        self._publish = publish
        self.sender: FrameSender = FrameSender(source, self._send, policy)
        self.sent = 0

    async def _send(self, data: bytes, mime_type: str) -> None:
        from adkvoice.vision.headers import image_size

        await self._backend.send_image(data, mime_type)
        self.sent += 1
        width, height = image_size(data) or (0, 0)
        self._publish(
            ImageSent(
                source=self.name,
                data=data,
                mime_type=mime_type,
                width=width,
                height=height,
                count=self.sent,
                stream=True,
            )
        )

    def set_speaking(self, speaking: bool) -> None:
        self.sender.set_speaking(speaking)

    async def run(self) -> None:
        """Send until stopped; a source that ends (a video file) leaves the conversation
        running without frames, and says so."""
        await self.sender.run()
        self._publish(Notice(message=f"{self.name} ended: no more frames are sent"))
        await asyncio.Event().wait()

    def stop(self) -> None:
        self.sender.stop()


def open_feed_source(camera: str | None, screen: str | None) -> FrameSource | None:
    """The `--camera` or `--screen` source, opened and checked (a one-line `ConfigError`
    for a bad device, file or region, or without the vision extra)."""
    if camera is not None and screen is not None:
        raise ConfigError(
            "show the agent a camera or the screen, not both: drop --camera or --screen"
        )
    if camera is not None:
        from adkvoice.vision.sources import camera_source

        path = Path(camera).expanduser()
        if path.is_dir():
            raise ConfigError(
                f"--camera {camera}: is a directory; give a camera number (0) or a video file "
                "(the agent's directory goes before --camera)"
            )
        return camera_source(camera)
    if screen is not None:
        from adkvoice.vision.screen import ScreenSource

        return ScreenSource(screen)
    return None
