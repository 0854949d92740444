"""The voice conversation view: a status line under a scrolling transcript.

`TalkState` is pure state changed only by `apply_event` and the small setters; the
status line is a pure function of it (`status_line`). `TalkView` prints finished lines
into the scrollback and keeps the status line live at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console
from rich.live import Live
from rich.text import Text

from adkvoice import events as ev
from adkvoice.ui.lines import (
    AGENT_SPOKE,
    AGENT_TYPED,
    INTERRUPTED,
    USER_CUT_IN,
    USER_SPOKE,
    USER_TYPED,
    AgentNames,
    agent_label,
    error_line,
    format_duration,
    frames_status,
    handoff_line,
    image_sent_line,
    is_handoff_tool,
    notice_line,
    speaker_line,
    tool_call_line,
    tool_result_line,
)

Mode = Literal["listening", "thinking", "working", "speaking", "muted", "reconnecting"]

_METER_WIDTH = 20
_METER_FLOOR_DB = -60.0


@dataclass
class TalkState:
    mode: Mode = "listening"
    muted: bool = False
    push_to_talk: bool = False
    holding_talk_key: bool = False
    mic_level_db: float = _METER_FLOOR_DB
    # What cleans the microphone before the model hears it ("echo cancel", "noise
    # suppression", "gain control"), shown after the meter.
    mic_processing: tuple[str, ...] = ()
    # A camera or screen feed shown to the model (its name), and how many frames it sent.
    showing: str | None = None
    frames_sent: int = 0
    # The model said more of its answer follows (interactionStatus IN_PROGRESS: a
    # background tool runs, or another segment comes) and has not said it is done.
    working: bool = False
    user_partial: str = ""
    agent_partial: str = ""
    agent_author: str = ""  # the agent speaking, named when the team has several
    names: AgentNames = field(default_factory=AgentNames)
    # Finished lines the view has yet to print, oldest first.
    pending_lines: list[Text] = field(default_factory=list)

    def emit(self, line: Text) -> None:
        self.pending_lines.append(line)

    def take_lines(self) -> list[Text]:
        lines, self.pending_lines = self.pending_lines, []
        return lines


def _idle_mode(state: TalkState) -> Mode:
    """What the status shows when nobody is speaking."""
    if state.muted:
        return "muted"
    return "working" if state.working else "listening"


def _agent_line(text: str, author: str = "") -> Text:
    return speaker_line(agent_label(AGENT_SPOKE, author), text)


def _user_line(text: str) -> Text:
    return speaker_line(USER_SPOKE, text)


def apply_event(state: TalkState, event: ev.Event) -> None:
    """Fold one conversation event into the state."""
    state.names.observe(event)
    if state.names.of(event):
        state.agent_author = state.names.of(event)
    who = state.agent_author if state.names.shown else ""
    if isinstance(event, ev.Transcript) and event.speaker == "user":
        if event.finished:
            if event.text.strip():
                state.emit(_user_line(event.text.strip()))
            state.user_partial = ""
            if not state.muted:
                state.mode = "thinking"
        else:
            state.user_partial += event.text
    elif isinstance(event, ev.Transcript):
        if event.finished:
            state.emit(_agent_line(event.text.strip() or state.agent_partial.strip(), who))
            state.agent_partial = ""
        else:
            state.agent_partial += event.text
    elif isinstance(event, ev.AgentText):
        if event.partial:
            state.agent_partial += event.text
        else:
            state.emit(speaker_line(agent_label(AGENT_TYPED, who), event.text))
            state.agent_partial = ""
    elif isinstance(event, ev.AgentAudio):
        state.mode = "speaking"
    elif isinstance(event, ev.ToolCall):
        state.mode = "thinking"
        if not is_handoff_tool(event):  # the handoff line says it
            state.emit(tool_call_line(event))
    elif isinstance(event, ev.ToolResult):
        if not is_handoff_tool(event):
            state.emit(tool_result_line(event))
    elif isinstance(event, ev.Handoff):
        if state.agent_partial.strip():
            state.emit(_agent_line(state.agent_partial.strip(), who))
        state.agent_partial = ""
        state.agent_author = event.to_agent
        state.emit(handoff_line(event))
    elif isinstance(event, ev.Interrupted) and event.source == "user":
        # The speaker stopped at once; the model's own interruption follows.
        state.emit(Text(f"! {USER_CUT_IN}", "cyan"))
        state.working = False
        state.mode = _idle_mode(state)
    elif isinstance(event, ev.Interrupted):
        if state.agent_partial.strip():
            state.emit(_agent_line(state.agent_partial.strip() + " —", who))
        state.agent_partial = ""
        state.emit(INTERRUPTED)
        state.mode = _idle_mode(state)
    elif isinstance(event, ev.UserText):
        state.emit(speaker_line(USER_TYPED, event.text))
    elif isinstance(event, ev.TurnComplete):
        if state.agent_partial.strip():
            state.emit(_agent_line(state.agent_partial.strip(), who))
        state.agent_partial = ""
        state.working = event.interaction == "in_progress"
        if state.mode != "speaking":
            state.mode = _idle_mode(state)
    elif isinstance(event, ev.AnswerComplete):
        state.working = False
        if state.mode not in ("speaking", "reconnecting"):
            state.mode = _idle_mode(state)
    elif isinstance(event, ev.Notice):
        state.emit(notice_line(event))
    elif isinstance(event, ev.ErrorEvent):
        state.emit(error_line(event))
    elif isinstance(event, ev.ImageSent) and event.stream:
        state.showing, state.frames_sent = event.source, event.count
    elif isinstance(event, ev.ImageSent):
        state.emit(image_sent_line(event))


def playback_finished(state: TalkState) -> None:
    """The speaker has played the last of the agent's audio."""
    if state.mode == "speaking":
        state.mode = _idle_mode(state)


def latency_line(backend_s: float, local_s: float) -> Text:
    """End of user speech → first agent audio at the speaker, split by who spent it."""
    total = backend_s + local_s
    return Text(
        f"── voice-to-voice {format_duration(total)} "
        f"(model {format_duration(backend_s)} · adkvoice {format_duration(local_s)})",
        "dim",
    )


def meter(level_db: float, width: int = _METER_WIDTH) -> Text:
    fraction = min(1.0, max(0.0, (level_db - _METER_FLOOR_DB) / -_METER_FLOOR_DB))
    filled = round(fraction * width)
    style = "green" if level_db < -12 else "yellow" if level_db < -3 else "red"
    return Text.assemble(("▮" * filled, style), ("▯" * (width - filled), "dim"))


_MODE_STYLE: dict[Mode, tuple[str, str]] = {
    "listening": ("● listening", "bold green"),
    "thinking": ("◌ thinking", "bold yellow"),
    "working": ("◌ still working", "bold yellow"),
    "speaking": ("🔊 speaking", "bold magenta"),
    "muted": ("✕ muted", "bold red"),
    "reconnecting": ("↻ reconnecting", "bold yellow"),
}


def status_line(state: TalkState) -> Text:
    label, style = _MODE_STYLE["muted" if state.muted else state.mode]
    if state.push_to_talk and not state.muted:
        label = "● talk" if state.holding_talk_key else "space to talk"
        style = "bold green" if state.holding_talk_key else "dim"
    parts: list[Text | str | tuple[str, str]] = [(label, style), "  ", meter(state.mic_level_db)]
    if state.mic_processing:
        parts += ["  ", (" · ".join(state.mic_processing), "dim")]
    if state.showing is not None:
        parts += ["  ", ("▣ " + frames_status(state.showing, state.frames_sent), "bold blue")]
    if state.user_partial:
        parts += ["  ", ("you: ", "cyan"), state.user_partial[-60:]]
    elif state.agent_partial:
        speaking = state.agent_author if state.names.shown and state.agent_author else "agent"
        parts += ["  ", (f"{speaking}: ", "green"), state.agent_partial[-60:]]
    keys = "space talk · m mute · q quit" if state.push_to_talk else "m mute · q quit"
    parts += ["   ", (keys, "dim")]
    return Text.assemble(*parts)


class TalkView:
    """Prints finished lines into the scrollback and keeps the status line at the bottom."""

    def __init__(self, console: Console, state: TalkState) -> None:
        self._console = console
        self.state = state
        self._live: Live | None = None

    def start(self) -> None:
        if self._console.is_terminal:
            self._live = Live(
                status_line(self.state),
                console=self._console,
                refresh_per_second=15,
                transient=True,
            )
            self._live.start()

    def handle(self, event: ev.Event) -> None:
        apply_event(self.state, event)
        self.refresh()

    def print_line(self, line: Text) -> None:
        self.state.emit(line)
        self.refresh()

    def refresh(self) -> None:
        for line in self.state.take_lines():
            self._console.print(line)
        if self._live is not None:
            self._live.update(status_line(self.state))

    def stop(self) -> None:
        self.refresh()
        if self._live is not None:
            self._live.stop()
            self._live = None
