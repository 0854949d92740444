"""Frame sources: a camera (a device number, or a video file standing in for one) and
image files. The screen is in `screen.py`.

A source is opened (and checked) when it is constructed, so a bad device or path is a
one-line `ConfigError` before anything connects. `grab()` blocks; `FrameSender` calls it,
and `close()`, from one worker thread of its own, never on the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adkvoice.errors import ConfigError

from .codec import require_cv2


class FrameSource(Protocol):
    """Anything `FrameSender` can show: `grab()` returns the current picture (H x W x 3
    BGR or x 4 BGRA uint8), or None once the source has ended."""

    @property
    def name(self) -> str: ...

    def grab(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class CameraSource:
    """A camera by device number (0 is the first), or a video file played as a camera:
    at real time from the first grab, so a frame grabbed a second later shows the video
    a second later; at its end the file ends the source, or starts over with `loop`."""

    def __init__(
        self,
        device: int | str | Path,
        *,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cv2 = cv2 = require_cv2("a camera")
        self._clock = clock
        self._loop = loop
        self._file = not isinstance(device, int)
        if not isinstance(device, int):
            path = Path(device)
            self.name = f"video {path.name}"
            if not path.is_file():
                raise ConfigError(f"camera {path}: no such video file")
            self._cap = cv2.VideoCapture(str(path))
            if not self._cap.isOpened() or not self._cap.grab():
                raise ConfigError(f"camera {path}: OpenCV cannot read this video file")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # the first frame decoded: rewind
        else:
            self.name = f"camera {device}"
            self._cap = cv2.VideoCapture(int(device))
            if not self._cap.isOpened():
                raise ConfigError(f"camera {device}: cannot be opened (no such device, or busy)")
            # Keep at most one frame queued: at 1 fps a deeper queue shows the past.
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        rate = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.file_fps = rate if rate > 0 and math.isfinite(rate) else 25.0
        self._frames = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._started: float | None = None
        self._position = 0  # index of the next frame the file would decode

    def grab(self) -> np.ndarray | None:
        return self._grab_file() if self._file else self._grab_device()

    def _grab_device(self) -> np.ndarray | None:
        self._cap.grab()  # drop the frame the driver kept: show now, not then
        ok, frame = self._cap.read()
        return np.asarray(frame) if ok else None

    def _grab_file(self) -> np.ndarray | None:
        now = self._clock()
        if self._started is None:
            self._started = now
        target = math.floor((now - self._started) * self.file_fps + 1e-9)
        if self._loop and self._frames > 0:
            target %= self._frames
            if target < self._position:
                self._rewind()
        while self._position < target:  # skip (decode, no colour conversion) to now
            if not self._cap.grab():
                return self._ended()
            self._position += 1
        ok, frame = self._cap.read()
        if not ok:
            return self._ended()
        self._position += 1
        return np.asarray(frame)

    def _rewind(self) -> None:
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, 0)
        self._position = 0

    def _ended(self) -> np.ndarray | None:
        if not self._loop or self._position == 0:
            return None
        self._rewind()
        self._started = self._clock()
        ok, frame = self._cap.read()
        self._position = 1
        return np.asarray(frame) if ok else None

    def close(self) -> None:
        self._cap.release()


class ImageFileSource:
    """An image file (JPEG, PNG, WebP, BMP... whatever OpenCV reads): shown once, then
    the source ends, or shown on every grab with `repeat` (the sender then skips it as
    unchanged)."""

    def __init__(self, path: str | Path, *, repeat: bool = False) -> None:
        self.path = Path(path)
        self.name = f"image {self.path.name}"
        self._repeat = repeat
        self._shown = False
        self.frame = read_image(self.path)

    def grab(self) -> np.ndarray | None:
        if self._shown and not self._repeat:
            return None
        self._shown = True
        return self.frame

    def close(self) -> None:
        pass


def read_image(path: Path) -> np.ndarray:
    """An image file as a BGR array; `ConfigError` for a missing or unreadable file."""
    cv2: Any = require_cv2("showing an image")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ConfigError(f"image {path}: {exc.strerror or exc}") from None
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if frame is None:
        raise ConfigError(f"image {path}: not an image OpenCV can read (use JPEG, PNG or WebP)")
    return np.asarray(frame)


def camera_source(spec: str | int, *, loop: bool = False) -> CameraSource:
    """`--camera SPEC`: a device number ("0") or a video file's path."""
    if isinstance(spec, int) or spec.strip().isdigit():
        return CameraSource(int(spec), loop=loop)
    return CameraSource(Path(spec), loop=loop)
