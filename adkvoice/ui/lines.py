"""How each kind of line looks, in every view: speaker labels, tools, notices, errors.

Pure: text in, `rich.text.Text` out. The chat view, the talk view and the stored-session
transcript all draw their lines from here, so a label or colour changes in one place.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text

from adkvoice.events import ErrorEvent, Notice, ToolCall, ToolResult
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


def error_line(event: ErrorEvent) -> Text:
    return Text(f"✗ {redact(event.message)}", style="bold red")
