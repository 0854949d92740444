"""How each kind of line looks, in every view: speaker labels, tools, notices, errors.

Pure: text in, `rich.text.Text` out. The chat view, the talk view and the stored-session
transcript all draw their lines from here, so a label or colour changes in one place.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from adkvoice.events import (
    AgentTeam,
    ErrorEvent,
    Event,
    Handoff,
    ImageSent,
    Notice,
    ToolCall,
    ToolResult,
)
from adkvoice.redaction import redact

_MAX_VALUE_CHARS = 120

# (label, style) per speaker and medium.
USER_TYPED = ("you › ", "bold cyan")
USER_SPOKE = ("you 🎙 ", "bold cyan")
AGENT_TYPED = ("agent › ", "bold green")
AGENT_SPOKE = ("agent 🔊 ", "bold green")
INTERRUPTED = Text("⏹ interrupted", "yellow")
USER_CUT_IN = "you cut in: agent audio stopped"


def label(which: tuple[str, str]) -> Text:
    return Text(which[0], style=which[1])


def speaker_line(which: tuple[str, str], text: str) -> Text:
    return Text.assemble(which, text)


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


# What the model does with a background call's result.
SCHEDULING_WORDS: dict[str, str] = {
    "WHEN_IDLE": "spoken when the agent is free",
    "INTERRUPT": "spoken at once",
    "SILENT": "not spoken: the agent keeps it in mind",
}


def tool_call_line(event: ToolCall) -> Text:
    line = Text.assemble(("⚙ ", "magenta"), (format_call(event.name, event.args), "magenta"))
    if event.background:
        line.append(" · running in background", "dim")
    return line


def tool_result_line(event: ToolResult) -> Text:
    """A result; a background call's result names its call, since other lines (what the
    agent said meanwhile) may stand between them."""
    took = "" if event.duration_s is None else f" · {format_duration(event.duration_s)}"
    if event.scheduling is None:
        return Text.assemble(
            ("  ↳ ", "magenta"), (format_value(event.response), "dim"), (took, "dim")
        )
    return Text.assemble(
        ("  ↳ ", "magenta"),
        (f"{event.name} → ", "magenta"),
        (format_value(event.response), "dim"),
        (took, "dim"),
        (f" · {SCHEDULING_WORDS.get(event.scheduling, event.scheduling)}", "dim"),
    )


# Notices and errors may quote a URL or a server's reply: shown without secrets.
def notice_line(event: Notice) -> Text:
    style = "yellow" if event.level == "warning" else "cyan"
    return Text(f"! {redact(event.message)}", style=style)


def image_sent_text(event: ImageSent) -> str:
    """What was shown, its size and its bytes: "image red.png sent (768×432, 35 kB)"."""
    kilobytes = max(1, round(len(event.data) / 1000))
    size = f"{event.width}×{event.height}, " if event.width and event.height else ""
    return f"{event.source} sent ({size}{kilobytes} kB)"


def image_sent_line(event: ImageSent) -> Text:
    return Text(image_sent_text(event), style="dim")


def frames_status(source: str, sent: int) -> str:
    """The status line's indicator of a camera or screen feed: "screen 1 · 12 sent"."""
    return f"{source} · {sent} sent"


def error_line(event: ErrorEvent) -> Text:
    return Text(f"✗ {redact(event.message)}", style="bold red")


# Teams of agents ---------------------------------------------------------------------
TRANSFER_TOOL = "transfer_to_agent"  # ADK's handoff tool: its line is the handoff line


class AgentNames:
    """Whether lines name the agent: once the conversation has more than one (an
    `AgentTeam` of two or more, or a handoff). A single agent stays "agent"."""

    def __init__(self) -> None:
        self.shown = False

    def observe(self, event: Event) -> None:
        if isinstance(event, AgentTeam):
            self.shown = len(event.names) > 1
        elif isinstance(event, Handoff):
            self.shown = True

    def of(self, event: Event) -> str:
        """The name to show for an event's agent ("" when names are not shown)."""
        author = getattr(event, "author", "")
        return author if self.shown and isinstance(author, str) else ""


def agent_label(which: tuple[str, str], author: str) -> tuple[str, str]:
    """An agent's label naming `author` ("billing › ") instead of "agent"."""
    return (which[0].replace("agent", author, 1), which[1]) if author else which


def is_handoff_tool(event: ToolCall | ToolResult) -> bool:
    """ADK's `transfer_to_agent` call or result: views show the handoff line instead."""
    return event.name == TRANSFER_TOOL


def handoff_line(event: Handoff) -> Text:
    """The line at a handoff: "→ billing · handed over by front_desk"."""
    line = Text.assemble(("→ ", "bold magenta"), (event.to_agent, "bold magenta"))
    if event.from_agent:
        line.append(f" · handed over by {event.from_agent}", "dim")
    return line
