"""Lines from stdin, read in a daemon thread and handed to the event loop.

Blocking reads never run inside the loop. On a terminal the thread reads a line only
when asked, so the prompt appears after the previous reply; from a pipe it reads ahead.
A daemon thread never holds up exit while it is blocked in a read.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import IO

from adkvoice.errors import AdkVoiceError, ConfigError


class LineReader:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stream: IO[str],
        *,
        interactive: bool,
        prompt: str = "",
        read_prompted: Callable[[str], str] = input,
    ) -> None:
        self._loop = loop
        self._stream = stream
        self.interactive = interactive
        self._prompt = prompt
        self._read_prompted = read_prompted
        # A line, None at the end of input, or the error that ended reading.
        self._lines: asyncio.Queue[str | AdkVoiceError | None] = asyncio.Queue()
        self._requests: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="stdin-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _hand_over(self, line: str | AdkVoiceError | None) -> None:
        self._loop.call_soon_threadsafe(self._lines.put_nowait, line)

    def _run(self) -> None:
        try:
            if self.interactive:
                while self._requests.get():
                    try:
                        line: str | None = self._read_prompted(self._prompt)
                    except EOFError:
                        line = None
                    self._hand_over(line)
                    if line is None:
                        return
            else:
                for raw in self._stream:
                    self._hand_over(raw.rstrip("\r\n"))
                self._hand_over(None)
        except UnicodeDecodeError as exc:
            # Binary input must not look like a clean end of input.
            with contextlib.suppress(RuntimeError):
                self._hand_over(
                    ConfigError(f"the input is not UTF-8 text ({exc.reason} at byte {exc.start})")
                )
        except (OSError, ValueError, RuntimeError):
            # stdin closed under us, or the loop is gone at exit: nothing more to read.
            with contextlib.suppress(RuntimeError):
                self._hand_over(None)

    async def next_line(self) -> str | None:
        """The next line without its newline, or None at end of input."""
        if self.interactive:
            self._requests.put(True)
        line = await self._lines.get()
        if isinstance(line, AdkVoiceError):
            raise line
        return line
