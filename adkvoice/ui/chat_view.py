"""Views of a conversation: Rich for a terminal, plain text for pipes, JSON lines for scripts.

A view only turns events into output on the stream it was given; it owns no I/O
resources and no event loop, so tests render into `io.StringIO`.
"""

from __future__ import annotations

import json
import time
from typing import IO, TYPE_CHECKING, Any, Protocol

from rich.console import Console, Group
from rich.status import Status
from rich.table import Table
from rich.text import Text

from adkvoice.conversation.turns import TurnTracker
from adkvoice.events import (
    AgentAudio,
    AgentText,
    ErrorEvent,
    Event,
    Interrupted,
    Notice,
    ResumptionHandle,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
    Usage,
    UserText,
    to_json_dict,
)

if TYPE_CHECKING:
    from google.adk.sessions.session import Session

    from adkvoice.audio.devices import DeviceInfo
    from adkvoice.store.sessions import SessionSummary

_MAX_VALUE_CHARS = 120


class View(Protocol):
    def user_turn(self, text: str) -> None: ...

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


def format_value(value: Any, limit: int = _MAX_VALUE_CHARS) -> str:
    """A compact one-line rendering of tool arguments or results."""
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_call(name: str, args: dict[str, Any]) -> str:
    inner = ", ".join(f"{key}={format_value(val, 60)}" for key, val in args.items())
    return f"{name}({inner})"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


class _Segment:
    """Tracks one streamed line (agent text or a transcript) so the whole-text event
    that follows its deltas is not printed twice."""

    def __init__(self) -> None:
        self.open = False
        self.shown_delta = False

    def reset(self) -> None:
        self.open = False
        self.shown_delta = False


class RichChatView:
    """Streams a conversation into a Rich console: text as it arrives, tool calls with
    arguments, result and duration, interruptions, and a line at each turn's end."""

    def __init__(self, console: Console, *, spoken_replies: bool = False) -> None:
        self._console = console
        self._spoken = spoken_replies
        self._line: _Segment = _Segment()
        self._line_kind: str | None = None  # "agent-text", "agent-speech", "user-speech"
        self._status: Status | None = None
        self._turn_started: float | None = None
        self._first_output: float | None = None
        self._tokens: int | None = None
        self._audio_s = 0.0
        self._tools: dict[str, ToolCall] = {}
        self._turns = TurnTracker()

    # -- turn bookkeeping -------------------------------------------------------------
    def user_turn(self, text: str) -> None:
        self._end_line()
        self._turn_started = time.monotonic()
        self._first_output = None
        self._tokens = None
        self._audio_s = 0.0
        if self._console.is_terminal:
            self._status = self._console.status("thinking…", spinner="dots")
            self._status.start()

    def _stop_spinner(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _mark_output(self) -> None:
        self._stop_spinner()
        if self._first_output is None:
            self._first_output = time.monotonic()

    # -- streamed lines -----------------------------------------------------------------
    def _end_line(self) -> None:
        if self._line.open:
            self._console.print()
        self._line.reset()
        self._line_kind = None

    def _stream(self, kind: str, label: Text, text: str, *, partial: bool) -> None:
        """Print a delta (partial) or the whole text of a segment (not partial)."""
        if self._line_kind != kind:
            self._end_line()
            self._line_kind = kind
        if not partial and self._line.shown_delta:
            self._end_line()  # the whole text repeats what the deltas showed
            return
        if not self._line.open:
            self._console.print(label, end="")
            self._line.open = True
        self._console.print(Text(text), end="", soft_wrap=True)
        if partial:
            self._line.shown_delta = True
        else:
            self._end_line()

    # -- events -------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        answered = self._turns.feed(event)
        if isinstance(event, AgentText):
            self._mark_output()
            self._stream(
                "agent-text",
                Text("agent › ", style="bold green"),
                event.text,
                partial=event.partial,
            )
        elif isinstance(event, Transcript):
            self._handle_transcript(event)
        elif isinstance(event, AgentAudio):
            self._mark_output()
            self._audio_s += event.duration_s
        elif isinstance(event, ToolCall):
            self._mark_output()
            self._end_line()
            self._tools[event.call_id] = event
            self._console.print(
                Text.assemble(("⚙ ", "magenta"), (format_call(event.name, event.args), "magenta"))
            )
        elif isinstance(event, ToolResult):
            self._end_line()
            took = "" if event.duration_s is None else f" · {format_duration(event.duration_s)}"
            self._console.print(
                Text.assemble(
                    ("  ↳ ", "magenta"), (format_value(event.response), "dim"), (took, "dim")
                )
            )
        elif isinstance(event, Interrupted):
            self._stop_spinner()
            self._end_line()
            self._console.print(Text("⏹ interrupted", style="yellow"))
        elif isinstance(event, Usage):
            self._tokens = event.total_tokens
        elif isinstance(event, TurnComplete):
            self._end_line()
            if answered:  # not the model turn that only asked for a tool
                self._turn_complete()
        elif isinstance(event, Notice):
            self._end_line()
            style = "yellow" if event.level == "warning" else "cyan"
            self._console.print(Text(f"! {event.message}", style=style))
        elif isinstance(event, ErrorEvent):
            self._stop_spinner()
            self._end_line()
            self._console.print(Text(f"✗ {event.message}", style="bold red"))
        elif isinstance(event, (UserText, ResumptionHandle)):
            pass

    def _handle_transcript(self, event: Transcript) -> None:
        if event.speaker == "agent":
            self._mark_output()
            self._stream(
                "agent-speech",
                Text("agent 🔊 ", style="bold green"),
                event.text,
                partial=not event.finished,
            )
        else:
            self._stream(
                "user-speech",
                Text("you 🎙 ", style="bold cyan"),
                event.text,
                partial=not event.finished,
            )

    def _turn_complete(self) -> None:
        self._stop_spinner()
        self._end_line()
        parts: list[str] = []
        now = time.monotonic()
        if self._turn_started is not None:
            parts.append(format_duration(now - self._turn_started))
            if self._first_output is not None:
                parts.append(
                    f"first output {format_duration(self._first_output - self._turn_started)}"
                )
        if self._audio_s:
            parts.append(f"{self._audio_s:.1f} s of speech")
        if self._tokens is not None:
            parts.append(f"{self._tokens} tokens")
        summary = " · ".join(parts) if parts else "turn complete"
        self._console.print(Text(f"── {summary}", style="dim"))
        self._turn_started = None

    def notice(self, message: str, *, warning: bool = False) -> None:
        self.handle(Notice(message=message, level="warning" if warning else "info"))

    def close(self) -> None:
        self._stop_spinner()
        self._end_line()


class PlainChatView:
    """Replies only, as plain text: one reply per turn, for pipes and scripts."""

    def __init__(self, out: IO[str], err: IO[str] | None = None) -> None:
        self._out = out
        self._err = err  # notices and errors, kept off the replies
        self._segment = _Segment()
        self._kind: str | None = None
        self._wrote_in_turn = False
        self._turns = TurnTracker()

    def user_turn(self, text: str) -> None:
        self._wrote_in_turn = False

    def _write(self, kind: str, text: str, *, partial: bool) -> None:
        if self._kind != kind:
            self._segment.reset()
            self._kind = kind
        if not partial and self._segment.shown_delta:
            self._segment.reset()
            return
        if self._wrote_in_turn and not self._segment.open:
            self._out.write(" ")
        self._out.write(text)
        self._segment.open = True
        self._wrote_in_turn = True
        if partial:
            self._segment.shown_delta = True
        else:
            self._segment.reset()
        self._out.flush()

    def handle(self, event: Event) -> None:
        answered = self._turns.feed(event)
        if isinstance(event, AgentText):
            self._write("text", event.text, partial=event.partial)
        elif isinstance(event, Transcript) and event.speaker == "agent":
            self._write("speech", event.text, partial=not event.finished)
        elif isinstance(event, Interrupted) and self._wrote_in_turn:
            # A reply cut off (a lost connection; the turn is asked again): mark the cut
            # and let the fresh reply follow on the same line, one line per turn.
            self._out.write("…")
            self._out.flush()
            self._segment.reset()
            self._kind = None
        elif isinstance(event, Notice | ErrorEvent) and self._err is not None:
            prefix = "error: " if isinstance(event, ErrorEvent) else ""
            self._err.write(f"{prefix}{event.message}\n")
            self._err.flush()
        elif answered:
            if self._wrote_in_turn:
                self._out.write("\n")
                self._out.flush()
            self._segment.reset()
            self._kind = None
            self._wrote_in_turn = False

    def close(self) -> None:
        if self._wrote_in_turn:
            self._out.write("\n")
            self._out.flush()


class JsonLinesView:
    """One JSON object per event (JSONL), flushed per line so consumers see it live."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def user_turn(self, text: str) -> None:
        self.handle(UserText(text=text))

    def handle(self, event: Event) -> None:
        self._out.write(json.dumps(to_json_dict(event), ensure_ascii=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        self._out.flush()


def sessions_table(summaries: list[SessionSummary], *, store_label: str) -> Table:
    """Past conversations, newest first: when, how many turns, and how each began."""
    table = Table(title=f"Conversations in {store_label}", title_justify="left", expand=False)
    table.add_column("id", no_wrap=True, style="cyan")
    table.add_column("updated", no_wrap=True)
    table.add_column("turns", justify="right")
    table.add_column("first line", overflow="ellipsis", no_wrap=True, max_width=60)
    for item in summaries:
        table.add_row(
            item.session_id,
            item.updated.strftime("%Y-%m-%d %H:%M"),
            str(item.turns),
            Text(item.first_line),
        )
    return table


def session_transcript(session: Session) -> Group:
    """A stored conversation as lines: the user's turns, the agent's replies, tool calls."""
    lines: list[Text] = []
    for event in session.events:
        if event.input_transcription and event.input_transcription.finished:
            lines.append(
                Text.assemble(("you 🎙 ", "bold cyan"), event.input_transcription.text or "")
            )
        if event.output_transcription and event.output_transcription.finished:
            lines.append(
                Text.assemble(("agent 🔊 ", "bold green"), event.output_transcription.text or "")
            )
        if not (event.content and event.content.parts) or event.partial:
            continue
        for part in event.content.parts:
            if part.thought:
                continue
            if part.text and event.author == "user":
                lines.append(Text.assemble(("you › ", "bold cyan"), part.text))
            elif part.text:
                lines.append(Text.assemble(("agent › ", "bold green"), part.text))
            elif part.function_call:
                call = part.function_call
                lines.append(
                    Text("⚙ " + format_call(call.name or "", dict(call.args or {})), "magenta")
                )
            elif part.function_response:
                lines.append(Text("  ↳ " + format_value(part.function_response.response), "dim"))
    return Group(*lines)


def devices_table(devices: list[DeviceInfo]) -> Table:
    """Audio devices with default marks and the rates each accepts, per direction."""
    table = Table(title="Audio devices", title_justify="left")
    table.add_column("#", justify="right", style="cyan")
    table.add_column("name")
    table.add_column("host API", style="dim")
    table.add_column("input (Hz)")
    table.add_column("output (Hz)")

    def rates(values: tuple[int, ...], default: bool) -> Text:
        if not values:
            return Text("—", "dim")
        text = Text(
            ", ".join(f"{r // 1000}k" if r % 1000 == 0 else f"{r / 1000:g}k" for r in values)
        )
        if default:
            text.append(" (default)", "bold green")
        return text

    for device in devices:
        table.add_row(
            str(device.index),
            device.name,
            device.hostapi,
            rates(device.input_rates, device.default_input),
            rates(device.output_rates, device.default_output),
        )
    return table
