"""Single keys from the terminal for `adkvoice talk`, read in a daemon thread.

The terminal is put in cbreak mode (keys arrive unbuffered, no echo; Ctrl-C still
signals) and restored on stop. Keys map to commands by a pure function; typing a line
(`t`, then the text and Enter) switches the terminal back to line mode for that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable
from dataclasses import dataclass


class Command(enum.Enum):
    TALK = "talk"  # push-to-talk: start or end the user's turn
    MUTE = "mute"
    TYPE = "type"  # type a line of text
    QUIT = "quit"


_KEYS: dict[str, Command] = {
    " ": Command.TALK,
    "m": Command.MUTE,
    "M": Command.MUTE,
    "t": Command.TYPE,
    "T": Command.TYPE,
    "\r": Command.TYPE,
    "\n": Command.TYPE,
    "q": Command.QUIT,
    "Q": Command.QUIT,
    "\x04": Command.QUIT,  # Ctrl-D
}


def command_for(key: str) -> Command | None:
    return _KEYS.get(key)


@dataclass(frozen=True)
class TypedLine:
    text: str


class KeyReader:
    """Hands `Command`s and `TypedLine`s to `on_input` on the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_input: Callable[[Command | TypedLine], None],
        *,
        on_error: Callable[[BaseException], None] | None = None,
        fd: int | None = None,
    ) -> None:
        self._loop = loop
        self._on_input = on_input
        self._on_error = on_error  # a failure in the reading thread, handed to the loop
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._saved: list[int | list[bytes | int]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)

    @staticmethod
    def available() -> bool:
        return sys.stdin.isatty()

    def start(self) -> None:
        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _hand_over(self, item: Command | TypedLine) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._on_input, item)

    def _run(self) -> None:
        try:
            self._read_keys()
        except Exception as exc:
            if self._on_error is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    self._loop.call_soon_threadsafe(self._on_error, exc)

    def _read_keys(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if not ready:
                continue
            try:
                data = os.read(self._fd, 1)
            except OSError:
                return
            if not data:
                self._hand_over(Command.QUIT)
                return
            command = command_for(data.decode("utf-8", errors="ignore"))
            if command is Command.TYPE:
                line = self._read_line()
                if line:
                    self._hand_over(TypedLine(line))
            elif command is not None:
                self._hand_over(command)

    def _read_line(self) -> str:
        """Read one line with echo and editing, then return to cbreak mode."""
        if self._saved is None:
            return ""
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        try:
            sys.stderr.write("type › ")
            sys.stderr.flush()
            chunks: list[bytes] = []
            while not self._stop.is_set():
                ready, _, _ = select.select([self._fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self._fd, 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    break
            return b"".join(chunks).decode("utf-8", errors="replace").strip()
        finally:
            if not self._stop.is_set():
                tty.setcbreak(self._fd)
