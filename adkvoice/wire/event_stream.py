"""Reading a `text/event-stream` (Server-Sent Events) as it arrives, pure.

The HTML standard's rules, as far as the servers adkvoice talks to use them: lines end in
LF, CRLF or CR; a blank line ends an event; `data:` lines are joined with LF (one space
after the colon is dropped); lines starting with `:` are comments (keep-alives);
`event:`, `id:` and `retry:` lines are read past. An event with no `data:` is no event.
"""

from __future__ import annotations

# A server that never ends an event could grow the buffer without bound.
MAX_EVENT_CHARS = 16 * 1024 * 1024


class EventStreamError(ValueError):
    """The stream broke the format in a way that cannot be read past."""


class EventStreamDecoder:
    """Feed text as it arrives; take whole events' data out."""

    def __init__(self, *, max_event_chars: int = MAX_EVENT_CHARS) -> None:
        self._max = max_event_chars
        self._pending = ""  # text after the last line end
        self._data: list[str] = []
        self._size = 0
        self._after_cr = False  # the last chunk ended in CR: a LF next belongs to it

    def feed(self, text: str) -> list[str]:
        """The data of every event completed by `text`, in order."""
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        lines = (self._pending + text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        if len(self._pending) > self._max:
            raise EventStreamError(f"an event stream line is longer than {self._max} characters")
        out: list[str] = []
        for line in lines:
            if line == "":
                if self._data:
                    out.append("\n".join(self._data))
                self._data, self._size = [], 0
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name != "data":
                continue
            value = value[1:] if value.startswith(" ") else value
            self._size += len(value)
            if self._size > self._max:
                raise EventStreamError(f"an event is longer than {self._max} characters")
            self._data.append(value)
        return out
