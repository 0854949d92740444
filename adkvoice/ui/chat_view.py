"""Views of a conversation: Rich for a terminal, plain text for pipes, JSON lines for scripts.

A view only turns events into output on the stream it was given; it owns no I/O
resources and no event loop, so tests render into `io.StringIO`.
"""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Protocol

from rich.console import Console, Group
from rich.status import Status
from rich.table import Table
from rich.text import Text

from adkvoice.events import (
    AgentAudio,
    AgentText,
    AnswerComplete,
    ErrorEvent,
    Event,
    Handoff,
    ImageSent,
    Interrupted,
    Notice,
    SegmentText,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
    Usage,
    UserText,
    to_json_dict,
)
from adkvoice.redaction import redact
from adkvoice.ui.lines import (
    AGENT_SPOKE,
    AGENT_TYPED,
    INTERRUPTED,
    USER_SPOKE,
    USER_TYPED,
    AgentNames,
    agent_label,
    error_line,
    format_duration,
    handoff_line,
    image_sent_line,
    image_sent_text,
    is_handoff_tool,
    label,
    notice_line,
    speaker_line,
    tool_call_line,
    tool_result_line,
)
from adkvoice.wire.adk_events import stored_events

if TYPE_CHECKING:
    from google.adk.sessions.session import Session

    from adkvoice.audio.devices import DeviceInfo
    from adkvoice.store.sessions import SessionSummary


class View(Protocol):
    """A conversation sink that renders: `handle` every event, `close` at the end."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


class _Line:
    """The streamed line (agent text or a transcript) being printed, so the whole-text
    event that follows its deltas is not printed twice (`SegmentText`)."""

    def __init__(self) -> None:
        self.open = False
        self.segment = SegmentText()

    def reset(self) -> None:
        self.open = False
        self.segment.reset()


class RichChatView:
    """Streams a conversation into a Rich console: text as it arrives, tool calls with
    arguments, result and duration, interruptions, and a line at each answer's end.
    Times come from the events, so the view never reads the clock."""

    def __init__(self, console: Console, *, spoken_replies: bool = False) -> None:
        self._console = console
        self._spoken = spoken_replies
        # The segment being streamed, per kind ("agent-text", "agent-speech",
        # "user-speech"), so its whole text is not printed again after its deltas even
        # when other lines (a background tool's result) came between them.
        self._segments: dict[str, SegmentText] = {}
        self._open_kind: str | None = None  # whose line is open on screen
        self._status: Status | None = None
        self._turn_started: float | None = None
        self._first_output: float | None = None
        self._tokens: int | None = None
        self._audio_s = 0.0
        self._names = AgentNames()  # a team's agents are named on their lines

    # -- turn bookkeeping -------------------------------------------------------------
    def _user_turn(self, event: UserText) -> None:
        self._end_segments()
        self._turn_started = event.at
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

    def _mark_output(self, event: Event) -> None:
        self._stop_spinner()
        if self._first_output is None:
            self._first_output = event.at

    # -- streamed lines -----------------------------------------------------------------
    def _end_line(self) -> None:
        """End the line on screen (another kind of line follows); segments go on."""
        if self._open_kind is not None:
            self._console.print()
            self._open_kind = None

    def _end_segments(self) -> None:
        """A model turn ended, was cut, or a new one starts: nothing carries over."""
        self._end_line()
        self._segments.clear()

    def _stream(self, kind: str, who: tuple[str, str], text: str, *, partial: bool) -> None:
        """Print a delta (partial) or the whole text of a segment (not partial)."""
        shown = self._segments.setdefault(kind, SegmentText()).feed(text, final=not partial)
        if shown is not None:
            if self._open_kind != kind:
                self._end_line()
                self._console.print(label(who), end="")
                self._open_kind = kind
            self._console.print(Text(shown), end="", soft_wrap=True)
        if not partial and self._open_kind == kind:
            self._end_line()

    # -- events -------------------------------------------------------------------------
    def handle(self, event: Event) -> None:
        self._names.observe(event)
        author = self._names.of(event)
        if isinstance(event, UserText):
            self._user_turn(event)
        elif isinstance(event, AgentText):
            self._mark_output(event)
            who = agent_label(AGENT_TYPED, author)
            self._stream(f"agent-text:{author}", who, event.text, partial=event.partial)
        elif isinstance(event, Transcript):
            if event.speaker == "agent":
                self._mark_output(event)
            if event.speaker == "agent":
                who = agent_label(AGENT_SPOKE, author)
                kind = f"agent-speech:{author}"
                self._stream(kind, who, event.text, partial=not event.finished)
            else:
                self._stream("user-speech", USER_SPOKE, event.text, partial=not event.finished)
        elif isinstance(event, AgentAudio):
            self._mark_output(event)
            self._audio_s += event.duration_s
        elif isinstance(event, ToolCall):
            self._mark_output(event)
            if not is_handoff_tool(event):  # the handoff line says it
                self._end_line()
                self._console.print(tool_call_line(event))
        elif isinstance(event, ToolResult):
            if not is_handoff_tool(event):
                self._end_line()
                self._console.print(tool_result_line(event))
        elif isinstance(event, Handoff):
            self._end_segments()
            self._console.print(handoff_line(event))
        elif isinstance(event, Interrupted):
            self._stop_spinner()
            self._end_segments()
            self._console.print(INTERRUPTED)
        elif isinstance(event, Usage):
            self._tokens = event.total_tokens
        elif isinstance(event, TurnComplete):
            self._end_segments()
            if event.interaction == "in_progress" and self._console.is_terminal:
                # More of the answer follows (a background tool, another segment).
                self._stop_spinner()
                self._status = self._console.status("still working…", spinner="dots")
                self._status.start()
        elif isinstance(event, AnswerComplete):
            self._answer_complete(event)
        elif isinstance(event, Notice):
            self._end_line()
            self._console.print(notice_line(event))
        elif isinstance(event, ErrorEvent):
            self._stop_spinner()
            self._end_line()
            self._console.print(error_line(event))
        elif isinstance(event, ImageSent):
            self._end_line()
            self._console.print(image_sent_line(event))

    def _answer_complete(self, event: AnswerComplete) -> None:
        self._stop_spinner()
        self._end_segments()
        parts: list[str] = []
        if self._turn_started is not None:
            parts.append(format_duration(event.at - self._turn_started))
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
        self._audio_s = 0.0
        self._tokens = None

    def close(self) -> None:
        self._stop_spinner()
        self._end_line()


class PlainChatView:
    """Replies only, as plain text: one line per answer, for pipes and scripts."""

    def __init__(self, out: IO[str], err: IO[str] | None = None) -> None:
        self._out = out
        self._err = err  # notices and errors, kept off the replies
        self._line = _Line()
        self._kind: str | None = None
        self._wrote_in_turn = False
        # A team's agents: each answer line names who speaks, and a handoff is "→".
        self._names = AgentNames()
        self._author = ""  # the agent named last on this line

    def _write(self, kind: str, text: str, *, partial: bool, author: str = "") -> None:
        if self._kind != kind:
            self._line.reset()
            self._kind = kind
        shown = self._line.segment.feed(text, final=not partial)
        if shown is not None:
            if self._wrote_in_turn and not self._line.open:
                self._out.write(" ")
            if author and author != self._author:
                self._out.write(f"{author}: ")
                self._author = author
            self._out.write(shown)
            self._line.open = True
            self._wrote_in_turn = True
            self._out.flush()
        if not partial:
            self._line.reset()

    def handle(self, event: Event) -> None:
        self._names.observe(event)
        author = self._names.of(event)
        if isinstance(event, UserText):
            self._wrote_in_turn = False
            self._author = ""
        elif isinstance(event, AgentText):
            self._write("text", event.text, partial=event.partial, author=author)
        elif isinstance(event, Transcript) and event.speaker == "agent":
            self._write("speech", event.text, partial=not event.finished, author=author)
        elif isinstance(event, Handoff):
            self._out.write((" " if self._wrote_in_turn else "") + f"→ {event.to_agent}:")
            self._out.flush()
            self._line.reset()
            self._kind = None
            self._wrote_in_turn = True
            self._author = event.to_agent
        elif isinstance(event, Interrupted) and self._wrote_in_turn:
            # A reply cut off (a lost connection; the turn is asked again): mark the cut
            # and let the fresh reply follow on the same line, one line per turn.
            self._out.write("…")
            self._out.flush()
            self._line.reset()
            self._kind = None
        elif isinstance(event, Notice | ErrorEvent) and self._err is not None:
            prefix = "error: " if isinstance(event, ErrorEvent) else ""
            self._err.write(f"{prefix}{redact(event.message)}\n")
            self._err.flush()
        elif isinstance(event, ImageSent) and self._err is not None:
            self._err.write(image_sent_text(event) + "\n")
            self._err.flush()
        elif isinstance(event, AnswerComplete):
            if self._wrote_in_turn:
                self._out.write("\n")
                self._out.flush()
            self._line.reset()
            self._kind = None
            self._wrote_in_turn = False
            self._author = ""

    def close(self) -> None:
        if self._wrote_in_turn:
            self._out.write("\n")
            self._out.flush()


class JsonLinesView:
    """One JSON object per event (JSONL), flushed per line so consumers see it live."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

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
    for event in stored_events(session.events):
        if isinstance(event, UserText):
            lines.append(speaker_line(USER_TYPED, event.text))
        elif isinstance(event, Transcript):
            who = USER_SPOKE if event.speaker == "user" else AGENT_SPOKE
            lines.append(speaker_line(who, event.text))
        elif isinstance(event, AgentText):
            lines.append(speaker_line(AGENT_TYPED, event.text))
        elif isinstance(event, ToolCall | ToolResult) and is_handoff_tool(event):
            continue  # the handoff line says it
        elif isinstance(event, ToolCall):
            lines.append(tool_call_line(event))
        elif isinstance(event, ToolResult):
            lines.append(tool_result_line(event))
        elif isinstance(event, Handoff):
            lines.append(handoff_line(event))
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
