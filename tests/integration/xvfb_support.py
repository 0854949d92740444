"""A private X server (Xvfb) for screen-capture tests, and a painter that draws on it.

`running_xvfb()` starts `Xvfb -displayfd` (the server picks a free display number and
writes it back, so parallel test workers never collide), waits for it (bounded) and stops
it afterwards. `Painter` draws through libX11 directly (ctypes): the root window filled
with a colour, or a titled window. (`xsetroot -solid` does not reach Xvfb's framebuffer
on Debian 12: the root stays black to a capture; setting the background and clearing
through one's own connection does.)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import shutil
import subprocess
from collections.abc import Iterator

import pytest

START_TIMEOUT_S = 10.0
SCREEN = (1024, 768)


@contextlib.contextmanager
def running_xvfb(width: int = SCREEN[0], height: int = SCREEN[1]) -> Iterator[str]:
    """A fresh Xvfb screen; yields its display name (":N")."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb; scripts/setup --test)")
    read_fd, write_fd = os.pipe()
    command = ["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp"]
    proc = subprocess.Popen(
        [*command, "-screen", "0", f"{width}x{height}x24"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], START_TIMEOUT_S)
        number = os.read(read_fd, 32).decode().strip() if ready else ""
        if not number.isdigit():
            raise RuntimeError(f"Xvfb did not start within {START_TIMEOUT_S} s")
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _x11() -> ctypes.CDLL:
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.skip("libX11 is not installed")
    x = ctypes.CDLL(name)
    display, window = ctypes.c_void_p, ctypes.c_ulong
    x.XOpenDisplay.restype = display
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XDefaultRootWindow.restype = window
    x.XDefaultRootWindow.argtypes = [display]
    x.XCreateSimpleWindow.restype = window
    x.XCreateSimpleWindow.argtypes = [display, window, ctypes.c_int, ctypes.c_int]
    x.XCreateSimpleWindow.argtypes += [ctypes.c_uint] * 3 + [ctypes.c_ulong] * 2
    for name in ("XMapRaised", "XClearWindow", "XDestroyWindow"):
        getattr(x, name).argtypes = [display, window]
    x.XSetWindowBackground.argtypes = [display, window, ctypes.c_ulong]
    x.XStoreName.argtypes = [display, window, ctypes.c_char_p]
    x.XSync.argtypes = [display, ctypes.c_int]
    x.XCloseDisplay.argtypes = [display]
    return x


def _pixel(rgb: tuple[int, int, int]) -> int:
    red, green, blue = rgb
    return (red << 16) | (green << 8) | blue


class Painter:
    """Draws on an X display through its own connection (windows live while it is open)."""

    def __init__(self, display: str) -> None:
        self._x = _x11()
        self._display = self._x.XOpenDisplay(display.encode())
        if not self._display:
            raise RuntimeError(f"cannot open X display {display}")
        self._root = self._x.XDefaultRootWindow(self._display)

    def fill(self, rgb: tuple[int, int, int]) -> None:
        """The whole screen (the root window) in one colour."""
        self._x.XSetWindowBackground(self._display, self._root, _pixel(rgb))
        self._x.XClearWindow(self._display, self._root)
        self._x.XSync(self._display, 0)

    def window(self, title: str, box: tuple[int, int, int, int], rgb: tuple[int, int, int]) -> int:
        """A window titled `title` at (x, y, width, height), filled with `rgb`."""
        left, top, width, height = box
        win = self._x.XCreateSimpleWindow(
            self._display, self._root, left, top, width, height, 0, 0, _pixel(rgb)
        )
        self._x.XStoreName(self._display, win, title.encode())
        self._x.XMapRaised(self._display, win)
        self._x.XSync(self._display, 0)
        return int(win)

    def close(self) -> None:
        if self._display:
            self._x.XCloseDisplay(self._display)
            self._display = None
