"""OpenCV behind one loader: scaling, the grey thumbnail and JPEG encoding.

OpenCV comes with the `vision` extra; without it, `require_cv2` raises `ConfigError` with
the one line that says what to install. It is imported as `Any` on purpose: older
OpenCV releases ship no type information, and none of it leaks out of this package.
Frames are numpy arrays, H x W x 3 uint8 in BGR order (OpenCV's).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from adkvoice.errors import ConfigError

from .policy import MAX_SIDE, fit_size, thumbnail_size

INSTALL_HINT = "pip install 'adkvoice[vision]'"
JPEG_MIME = "image/jpeg"


def require_module(name: str, what: str) -> Any:
    """Import `name` (a module of the vision extra) or raise a one-line `ConfigError`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ConfigError(f"{what} needs the vision extra: {INSTALL_HINT}") from None


def require_cv2(what: str = "showing images to the model") -> Any:
    return require_module("cv2", what)


@dataclass(frozen=True)
class EncodedFrame:
    """One frame ready to send: JPEG bytes and the size they decode to."""

    data: bytes
    width: int
    height: int
    mime_type: str = JPEG_MIME


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A 3-channel BGR view of a grey, BGR or BGRA (screen capture) frame."""
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        return frame[:, :, :3]
    return frame


def scale_to_fit(frame: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The frame shrunk (area-averaged) to fit `max_side`, aspect kept; as is if it fits."""
    height, width = frame.shape[:2]
    size = fit_size(width, height, max_side)
    if size == (width, height):
        return frame
    cv2 = require_cv2()
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def grey_thumbnail(frame: np.ndarray) -> np.ndarray:
    """The small grey picture `policy.ChangeDetector` compares."""
    cv2 = require_cv2()
    height, width = frame.shape[:2]
    small = cv2.resize(frame, thumbnail_size(width, height), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if small.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        small = cv2.cvtColor(small, code)
    return np.asarray(small, dtype=np.uint8)


def encode_jpeg(frame: np.ndarray, quality: int) -> EncodedFrame:
    """JPEG-encode a frame (already scaled). Blocking: run it off the event loop."""
    cv2 = require_cv2()
    bgr = np.ascontiguousarray(as_bgr(frame))
    ok, buffer = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    height, width = bgr.shape[:2]
    return EncodedFrame(data=bytes(buffer), width=width, height=height)


def prepare(frame: np.ndarray, *, max_side: int, quality: int) -> EncodedFrame:
    """Scale to fit and encode: what a frame goes through before it is sent."""
    return encode_jpeg(scale_to_fit(frame, max_side), quality)
