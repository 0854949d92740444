"""The model catalogue as tables: `adkvoice voices` and `adkvoice models` (pure)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from adkvoice.live_models import (
    DEFAULT_VOICE,
    FAMILIES,
    HALF_CASCADE_VOICES,
    VOICES,
    ModelFamily,
    family_of,
    model_id,
)


def voices_table(model: str | None = None) -> Table:
    """The prebuilt voices, with Google's description; for `model`, only its own."""
    family = family_of(model) if model else None
    names = family.voices if family is not None else tuple(v.name for v in VOICES)
    title = f"Voices of {model_id(model)}" if model else "Gemini Live voices"
    table = Table(title=title, title_justify="left")
    table.add_column("voice", style="cyan", no_wrap=True)
    table.add_column("sounds")
    if family is None:
        table.add_column("models", style="dim")
    for voice in VOICES:
        if voice.name not in names:
            continue
        name = Text(voice.name)
        if voice.name == DEFAULT_VOICE:
            name.append(" (default)", "bold green")
        row: list[Text | str] = [name, voice.style]
        if family is None:
            row.append("all" if voice.name in HALF_CASCADE_VOICES else "native audio, 3.x")
        table.add_row(*row)
    return table


def _tools(family: ModelFamily) -> str:
    if not family.tools:
        return "no tools"
    if not family.blocking_tools:
        return "tools run in the background only"
    if family.default_tool_behavior == "NON_BLOCKING":
        return "tools run in the background by default"
    if family.background_tools:
        return "waits for tools (background on request)"
    return "waits for tools"


def _thinking(family: ModelFamily) -> str:
    if family.thinking == "levels":
        levels = "/".join(family.thinking_levels)
        return f"{levels}, required" if family.thinking_required else levels
    return "a token budget" if family.thinking == "budget" else "no"


_PROACTIVE = {"optional": "yes", "always": "always on", "unsupported": "no"}


def family_lines(family: ModelFamily) -> list[RenderableType]:
    """One family: its names, then what it does, in lines that fit a narrow terminal."""
    head = Text.assemble((family.title, "bold"), "  ", (", ".join(family.models), "cyan"))
    if family.retired:
        head.append(f"  (retired {family.retired})", "dim")
    replies = (
        "text or speech" if family.text_replies else "speech only (--text shows the transcript)"
    )
    facts = [
        f"replies: {replies}",
        _tools(family),
        "answers in several turns" if family.interaction_status else "one turn per answer",
        f"--proactive: {_PROACTIVE[family.proactive_audio]}",
        f"--affective: {'yes' if family.affective_dialog else 'no'}",
        f"--thinking: {_thinking(family)}",
        f"{len(family.voices)} voices",
    ]
    lines: list[RenderableType] = [head, Padding(Text(" · ".join(facts)), (0, 0, 0, 2))]
    lines.extend(Padding(Text(note, "dim"), (0, 0, 0, 2)) for note in family.notes)
    return lines


def models_table() -> Group:
    """What each family of Live models does with adkvoice's options."""
    lines: list[RenderableType] = [Text("Gemini Live models", "bold underline")]
    for family in FAMILIES:
        lines.append(Text())
        lines.extend(family_lines(family))
    lines.append(Text())
    lines.append(
        Text(
            "A model name not listed is used as given; adkvoice learns from its refusals.",
            "dim",
        )
    )
    return Group(*lines)
