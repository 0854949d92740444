"""Which model the emulator plays, and what that model refuses in a setup.

The facts are the catalogue's (`adkvoice.live_models`); this module applies them to a
decoded setup. A name the catalogue does not know but that says "live" is played as the
newest family (a future Live model is likeliest to behave like the current one).

Refusals close the connection right after the setup, before setupComplete, as Gemini
does. A TEXT setup to an audio-only model gets Gemini's own reason; the other refusals
use "Request contains an invalid argument." followed by a sentence naming the problem
(Gemini gives no more than the first sentence; the second is the emulator's, so a
developer reading a test failure knows what was refused).
"""

from __future__ import annotations

from adkvoice.live_models import (
    INVALID_ARGUMENT,
    NEWEST_FAMILY,
    TEXT_REFUSAL_CODE,
    TEXT_REFUSAL_REASON,
    ModelFamily,
    family_of,
    find_voice,
)

from .client_messages import Setup

REFUSAL_CODE = 1007


def emulated_family(model: str) -> ModelFamily:
    return family_of(model) or NEWEST_FAMILY


def setup_refusal(setup: Setup, family: ModelFamily) -> tuple[int, str] | None:
    """The close code and reason for a setup this model refuses; None if it accepts it."""
    if setup.response_modality == "TEXT" and not family.text_replies:
        return TEXT_REFUSAL_CODE, TEXT_REFUSAL_REASON
    problem = _problem(setup, family)
    return None if problem is None else (REFUSAL_CODE, f"{INVALID_ARGUMENT} {problem}")


def _problem(setup: Setup, family: ModelFamily) -> str | None:
    if setup.voice is not None:
        voice = find_voice(setup.voice)
        if voice is None or voice not in family.voices:
            return f"Unknown voice {setup.voice[:40]!r}."
    if setup.proactive_audio is not None:
        if family.proactive_audio == "unsupported":
            return "This model has no proactive audio."
        if family.proactive_audio == "always" and not setup.proactive_audio:
            return "Proactive audio is always on for this model; it cannot be turned off."
    if setup.affective_dialog is not None and not family.affective_dialog:
        return "This model has no affective dialog."
    thinking = setup.thinking
    if thinking is not None and (thinking.level is not None or thinking.budget is not None):
        if family.thinking == "none":
            return "This model does not take a thinking configuration."
        if thinking.level is not None and thinking.budget is not None:
            return "Set thinkingLevel or thinkingBudget, not both."
        if family.thinking == "levels" and thinking.budget is not None:
            return "This model takes thinkingLevel, not thinkingBudget."
        if family.thinking == "budget" and thinking.level is not None:
            return "This model takes thinkingBudget, not thinkingLevel."
        if thinking.level is not None and thinking.level.lower() not in family.thinking_levels:
            return f"Thinking level {thinking.level} is not supported by this model."
    elif family.thinking_required:
        return "This model needs a thinking level (thinkingConfig.thinkingLevel)."
    if setup.function_names and not family.tools:
        return "This model takes no tools."
    if not family.blocking_tools:
        blocking = [name for name, b in setup.tool_behaviors if b == "BLOCKING"]
        if blocking:
            return f"Only NON_BLOCKING functions are supported; {blocking[0][:40]} is BLOCKING."
    return None
