"""The frame pipeline's decisions, pure: what size to send, when to grab, when a frame is
not worth sending, and whether frames flow at all.

Gemini Live takes video as JPEG frames, about one a second, scaled to fit 768 px; each
frame costs input tokens, so an unchanged picture is not sent again: the model still has
the last one in its context.

The unchanged test: the frame is shrunk (area-averaged) to a grey thumbnail whose long
side is `THUMBNAIL_SIDE` (96) pixels, and compared with the thumbnail of the last frame
SENT. The frame counts as changed when any thumbnail pixel differs by more than
`CHANGE_THRESHOLD` (8) grey levels of 255. On a 1920 px screen a thumbnail pixel averages
a 20 x 20 block, so one typed character (ink on about a tenth of its block) moves it by
about 20 levels and is sent, while a camera's sensor noise, averaged over the block, stays
near 1 level and is not. Comparing with the last frame sent (not the last one grabbed)
means a slow drift is sent once it adds up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

FramesMode = Literal["always", "while-speaking"]
FRAMES_MODES: tuple[str, ...] = get_args(FramesMode)
MAX_SIDE = 768  # Gemini scales larger images down to fit 768 x 768: larger costs bytes only
DEFAULT_FPS = 1.0
MAX_FPS = 10.0
DEFAULT_QUALITY = 80  # JPEG quality: about 30-60 kB for a busy 768 px frame
THUMBNAIL_SIDE = 96
CHANGE_THRESHOLD = 8.0
# `while-speaking`: frames go on flowing this long after the user stops, so the picture at
# the end of what they said is sent too.
SPEAKING_HOLD_S = 1.0


@dataclass(frozen=True)
class FramePolicy:
    """How a `FrameSender` sends: the rate, the size, the JPEG quality, when frames flow
    (`mode`) and how unchanged frames are recognised (`change_threshold`; None sends every
    frame)."""

    fps: float = DEFAULT_FPS
    max_side: int = MAX_SIDE
    quality: int = DEFAULT_QUALITY
    mode: FramesMode = "always"
    change_threshold: float | None = CHANGE_THRESHOLD
    speaking_hold_s: float = SPEAKING_HOLD_S

    def __post_init__(self) -> None:
        if not (0 < self.fps <= MAX_FPS) or math.isnan(self.fps):
            raise ValueError(f"fps must be above 0 and at most {MAX_FPS:g}, got {self.fps}")
        if self.max_side < 16:
            raise ValueError(f"max_side must be at least 16 pixels, got {self.max_side}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"JPEG quality must be 1-100, got {self.quality}")
        if self.mode not in FRAMES_MODES:
            raise ValueError(f"frames mode must be one of {', '.join(FRAMES_MODES)}")


def fit_size(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """The size that fits `max_side` on both sides, keeping the aspect ratio; never
    enlarges, never rounds a side to 0."""
    if width <= 0 or height <= 0:
        raise ValueError(f"not an image size: {width}x{height}")
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    return fit_size(width, height, THUMBNAIL_SIDE)


class ChangeDetector:
    """Says whether a grey thumbnail differs from the last one `accept`ed (the last frame
    sent); see the module's description for the test and its threshold."""

    def __init__(self, threshold: float = CHANGE_THRESHOLD) -> None:
        self.threshold = threshold
        self._reference: np.ndarray | None = None

    def difference(self, thumbnail: np.ndarray) -> float:
        """The largest per-pixel difference from the reference, in grey levels (inf when
        there is no reference or the shape changed)."""
        ref = self._reference
        if ref is None or ref.shape != thumbnail.shape:
            return math.inf
        delta = np.abs(thumbnail.astype(np.int16) - ref.astype(np.int16))
        return float(delta.max()) if delta.size else 0.0

    def changed(self, thumbnail: np.ndarray) -> bool:
        return self.difference(thumbnail) > self.threshold

    def accept(self, thumbnail: np.ndarray) -> None:
        """This thumbnail's frame was sent: later frames are compared with it."""
        self._reference = thumbnail.copy()

    def reset(self) -> None:
        """Forget the reference (e.g. a new connection): the next frame is sent."""
        self._reference = None


class Pacer:
    """Frame times at `fps` from the first tick: frame n is due at start + n / fps. A
    frame that took longer than its interval does not cause a burst: the schedule skips
    the slots already missed."""

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.interval = 1.0 / fps
        self._start: float | None = None
        self._index = 0

    def delay(self, now: float) -> float:
        """Seconds to wait before grabbing the next frame (0: grab now)."""
        if self._start is None:
            return 0.0
        return max(0.0, self._start + self._index * self.interval - now)

    def tick(self, now: float) -> None:
        """A frame was grabbed at `now`: schedule the next one."""
        if self._start is None:
            self._start = now
        elapsed = now - self._start
        self._index = max(self._index + 1, math.floor(elapsed / self.interval + 1e-9) + 1)


class FrameGate:
    """Whether frames flow: always, or only while the user speaks (and `hold_s` after).
    The caller says when speech starts and stops; the gate reads no clock itself."""

    def __init__(self, mode: FramesMode = "always", *, hold_s: float = SPEAKING_HOLD_S) -> None:
        if mode not in FRAMES_MODES:
            raise ValueError(f"frames mode must be one of {', '.join(FRAMES_MODES)}")
        self.mode = mode
        self.hold_s = hold_s
        self._speaking = False
        self._stopped_at: float | None = None

    def set_speaking(self, speaking: bool, now: float) -> None:
        if self._speaking and not speaking:
            self._stopped_at = now
        self._speaking = speaking

    def is_open(self, now: float) -> bool:
        if self.mode == "always" or self._speaking:
            return True
        return self._stopped_at is not None and now - self._stopped_at < self.hold_s
