"""The screen as a frame source (mss): a monitor, a region, or a window by its title.

`--screen SPEC`: "1" (the first monitor; the default), "0" (all monitors as one picture),
"X,Y,W,H" (a region in screen pixels), or "window:TITLE". A window is found by its exact
title with `xwininfo` (X11 only, Debian package x11-utils) and captured as the region it
covers, so whatever is on top of it is captured too; its position is looked up again
every few seconds, so moving it is followed. mss has no window capture of its own, and
other systems (Wayland, macOS, Windows) have no such tool to ask: there a window is
refused with a line suggesting a region.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from adkvoice.errors import ConfigError

from .codec import require_module

WINDOW_REFRESH_S = 5.0  # how often a window's position is looked up again
_REGION = re.compile(r"^\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")


@dataclass(frozen=True)
class Monitor:
    number: int  # 0: all monitors together; 1: the first


@dataclass(frozen=True)
class Region:
    left: int
    top: int
    width: int
    height: int

    def box(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Window:
    title: str


ScreenTarget = Monitor | Region | Window


def parse_screen_spec(spec: str) -> ScreenTarget:
    """A monitor number, "X,Y,W,H" or "window:TITLE"; `ConfigError` for anything else."""
    text = spec.strip()
    if text.lower().startswith("window:"):
        title = text.split(":", 1)[1].strip()
        if not title:
            raise ConfigError("--screen window:TITLE needs the window's title")
        return Window(title)
    if text == "" or text.isdigit():
        return Monitor(int(text or "1"))
    match = _REGION.match(text)
    if match is None:
        raise ConfigError(
            f"--screen {spec!r}: use a monitor number (1), a region X,Y,W,H or window:TITLE"
        )
    left, top, width, height = (int(g) for g in match.groups())
    if width == 0 or height == 0:
        raise ConfigError(f"--screen {spec!r}: the region is empty")
    return Region(left, top, width, height)


def window_region(title: str, display: str | None = None) -> Region | None:
    """Where the window titled `title` is (X11, `xwininfo`); None if there is none."""
    if not sys.platform.startswith("linux"):
        raise ConfigError(
            f"--screen window:{title}: windows are found by title on Linux (X11) only; "
            "give a region X,Y,W,H"
        )
    tool = shutil.which("xwininfo")
    if tool is None:
        raise ConfigError(
            f"--screen window:{title}: finding a window needs xwininfo "
            "(Debian package x11-utils); or give a region X,Y,W,H"
        )
    command = [tool, "-name", title] + (["-display", display] if display else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    fields = dict(re.findall(r"^\s*([A-Za-z -]+):\s*(-?\d+)\s*$", done.stdout, re.MULTILINE))
    try:
        return Region(
            int(fields["Absolute upper-left X"]),
            int(fields["Absolute upper-left Y"]),
            int(fields["Width"]),
            int(fields["Height"]),
        )
    except (KeyError, ValueError):
        return None


def _clip(region: Region, screen: dict[str, int]) -> Region | None:
    left = max(region.left, screen["left"])
    top = max(region.top, screen["top"])
    right = min(region.left + region.width, screen["left"] + screen["width"])
    bottom = min(region.top + region.height, screen["top"] + screen["height"])
    if right <= left or bottom <= top:
        return None
    return Region(left, top, right - left, bottom - top)


class ScreenSource:
    """Grabs a monitor, a region or a window (see the module). Each thread that grabs
    gets its own mss instance (X11 connections are not shared across threads)."""

    def __init__(self, target: ScreenTarget | str = "1", *, display: str | None = None) -> None:
        self._mss = require_module("mss", "screen capture")
        self.target = parse_screen_spec(target) if isinstance(target, str) else target
        self._display = display
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        sct = self._open()
        try:
            monitors: list[dict[str, int]] = list(sct.monitors)
        finally:
            sct.close()
        self._screen = monitors[0]  # the bounding box of all monitors
        self._box: dict[str, int] = self._initial_box(monitors)
        self._looked_up = time.monotonic()

    @property
    def name(self) -> str:
        target = self.target
        if isinstance(target, Monitor):
            return "screen" if target.number == 0 else f"screen {target.number}"
        if isinstance(target, Window):
            return f"window {target.title!r}"
        return f"screen region {target.width}x{target.height}+{target.left}+{target.top}"

    def _open(self) -> Any:
        factory = getattr(self._mss, "MSS", None) or self._mss.mss
        kwargs = {} if self._display is None else {"display": self._display}
        try:
            return factory(**kwargs)
        except Exception as exc:  # mss raises its ScreenShotError, or OSError for a library
            where = self._display or "from $DISPLAY"
            raise ConfigError(f"screen capture: cannot open the display {where} ({exc})") from None

    def _initial_box(self, monitors: list[dict[str, int]]) -> dict[str, int]:
        target = self.target
        if isinstance(target, Monitor):
            if target.number >= len(monitors):
                count = len(monitors) - 1
                raise ConfigError(
                    f"--screen {target.number}: there are {count} monitor(s); use 1-{count}, "
                    "or 0 for all of them"
                )
            mon = monitors[target.number]
            return {k: int(mon[k]) for k in ("left", "top", "width", "height")}
        region = target if isinstance(target, Region) else self._find_window(target)
        clipped = _clip(region, self._screen)
        if clipped is None:
            raise ConfigError(f"--screen: {self.name} is outside the screen")
        return clipped.box()

    def _find_window(self, window: Window) -> Region:
        region = window_region(window.title, self._display)
        if region is None:
            raise ConfigError(f"--screen window:{window.title}: no window has this title")
        return region

    def _instance(self) -> Any:
        sct = getattr(self._local, "sct", None)
        if sct is None:
            sct = self._local.sct = self._open()
            with self._lock:
                self._opened.append(sct)
        return sct

    def grab(self) -> np.ndarray | None:
        """The target now, as BGRA; None once a captured window has gone."""
        if isinstance(self.target, Window) and time.monotonic() - self._looked_up > (
            WINDOW_REFRESH_S
        ):
            self._looked_up = time.monotonic()
            region = window_region(self.target.title, self._display)
            clipped = None if region is None else _clip(region, self._screen)
            if clipped is None:
                return None
            self._box = clipped.box()
        return np.asarray(self._instance().grab(self._box))

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for sct in opened:
            sct.close()
        self._local = threading.local()
