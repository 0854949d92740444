"""What the emulated model sees: the images and video frames a connection was shown.

Accepted as Gemini documents for image input: image/jpeg (image/jpg too), image/png,
image/webp, image/heic and image/heif, in `realtimeInput.video` (3.x) or `mediaChunks`
(2.x). Anything else, and an image over `MAX_IMAGE_BYTES`, closes the connection with
1007 and "Request contains an invalid argument." like any input Gemini refuses. The
limit is 7 MiB: Gemini's documented ceiling for an inline image (7 MB per file for
inline data); a 768 px JPEG frame is 20-100 kB.

Per connection the emulator remembers how many frames it saw, the last one's size (from
OpenCV's decode where the vision extra is installed, else from the image's header, see
`adkvoice.vision.headers`), its mean colour as a name and hex, and whether it differed
from the frame before. Rules read them as {vision}, {vision.frames}, {vision.size},
{vision.colour}, {vision.hex} and {vision.changed}.
"""

from __future__ import annotations

import colorsys
import importlib
from functools import cache
from typing import Any

from adkvoice.errors import ProtocolError
from adkvoice.vision.headers import image_size

IMAGE_MIME_TYPES = (
    "image/jpeg",
    "image/jpg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
)
MAX_IMAGE_BYTES = 7 * 1024 * 1024
VISION_FIELDS = ("frames", "size", "colour", "hex", "changed")
# Two frames whose 16 x 16 grey thumbnails differ by at most this many levels (of 255)
# anywhere are "the same picture".
SAME_PICTURE_LEVELS = 8


class ImageRefused(ProtocolError):
    """An image blob Gemini does not take (its type or its size)."""


def image_refusal(mime_type: str, size: int) -> str | None:
    """Why Gemini would refuse this image blob; None if it takes it."""
    mime = mime_type.split(";", 1)[0].strip().lower()
    if mime not in IMAGE_MIME_TYPES:
        return f"{mime_type[:40]!r} is not a supported image type (jpeg, png, webp, heic, heif)"
    if size > MAX_IMAGE_BYTES:
        return f"the image is {size} bytes; the limit is {MAX_IMAGE_BYTES} (7 MiB)"
    return None


def colour_name(red: float, green: float, blue: float) -> str:
    """A plain name for an RGB colour (0-255 each): black, grey, white, or a hue (red,
    orange, yellow, green, cyan, blue, purple, pink)."""
    hue, lightness, saturation = colorsys.rgb_to_hls(red / 255, green / 255, blue / 255)
    if lightness < 0.12:
        return "black"
    if lightness > 0.92:
        return "white"
    if saturation < 0.2:
        return "grey"
    degrees = hue * 360
    for limit, name in (
        (15, "red"),
        (45, "orange"),
        (70, "yellow"),
        (165, "green"),
        (195, "cyan"),
        (255, "blue"),
        (290, "purple"),
        (335, "pink"),
    ):
        if degrees < limit:
            return name
    return "red"


@cache
def _cv2() -> Any:
    try:
        return importlib.import_module("cv2")
    except ImportError:
        return None


def _decode(data: bytes, *, reduced: bool) -> Any:
    """The image as a BGR array, or None. `reduced`: a quarter of the size is enough (the
    size is known from the header), which JPEG decodes several times faster."""
    cv2 = _cv2()
    if cv2 is None:
        return None
    import numpy as np  # here: an emulator that is shown no image never loads numpy

    buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        return cv2.imdecode(buffer, cv2.IMREAD_REDUCED_COLOR_4 if reduced else cv2.IMREAD_COLOR)
    except cv2.error:
        return None


class Sight:
    """What one connection has been shown."""

    def __init__(self) -> None:
        self.frames = 0
        self.size: tuple[int, int] | None = None  # width, height of the last image
        self.colour: tuple[int, int, int] | None = None  # its mean RGB
        self.changed: bool | None = None  # None until there are two frames
        self._previous: Any = None  # the last frame's thumbnail (or bytes, undecoded)

    def see(self, data: bytes) -> None:
        """Look at one image (blocking: OpenCV decodes it when installed). Everything is
        worked out first and stored last, so `facts()` never reads half an update."""
        size = image_size(data)
        picture = _decode(data, reduced=size is not None)
        colour: tuple[int, int, int] | None = None
        mark: Any = data
        if picture is not None:
            import numpy as np

            cv2 = _cv2()
            height, width = picture.shape[:2]
            size = size or (width, height)
            blue, green, red = (round(float(v)) for v in picture.reshape(-1, 3).mean(axis=0))
            colour = (red, green, blue)
            small = cv2.resize(picture, (16, 16), interpolation=cv2.INTER_AREA)
            mark = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.int16)
        changed = None if self.frames == 0 else _differs(self._previous, mark)
        self.size, self.colour, self.changed, self._previous = size, colour, changed, mark
        self.frames += 1

    def facts(self) -> dict[str, str]:
        """The template values: `summary` for {vision}, the rest for {vision.NAME}; the
        fields are empty while nothing has been seen."""
        if self.frames == 0:
            none = "I don't see anything: no image or video frame has reached me."
            return {"summary": none} | dict.fromkeys(VISION_FIELDS, "")
        size = f"{self.size[0]}×{self.size[1]}" if self.size else "size unknown"
        colour = name = hex_ = ""
        if self.colour is not None:
            hex_ = "#{:02x}{:02x}{:02x}".format(*self.colour)
            name = colour_name(*self.colour)
            colour = f"mostly {name} ({hex_})"
        else:
            colour = "colour unknown"
        summary = f"I see {self.frames} frame(s), {size}, {colour}"
        if self.changed is not None:
            summary += ", changed since the one before" if self.changed else ", unchanged"
        changed = "" if self.changed is None else ("yes" if self.changed else "no")
        return {
            "summary": summary + ".",
            "frames": str(self.frames),
            "size": size if self.size else "",
            "colour": name,
            "hex": hex_,
            "changed": changed,
        }


def _differs(previous: Any, current: Any) -> bool:
    if isinstance(previous, bytes) or isinstance(current, bytes):
        return bool(previous != current)
    import numpy as np

    return float(np.abs(previous - current).max()) > SAME_PICTURE_LEVELS
