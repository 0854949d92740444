"""Which model names the emulator accepts, and which behave like the Gemini 3.x Live family.

Rule: a name is a Live model when it contains "live" or "native-audio" (after an optional
"models/" prefix), e.g. gemini-2.0-flash-live-001, gemini-live-2.5-flash-preview,
gemini-2.5-flash-native-audio-preview-12-2025, gemini-3.1-flash-live-preview, plus the
first Live model, gemini-2.0-flash-exp, which the ADK streaming samples use. Anything
else is refused the way Gemini refuses a non-Live model: close 1008 with the
"is not found ... or is not supported for bidiGenerateContent" reason.

The 3.x family is recognised with ADK's own rule (google.adk.utils.model_name_utils):
the name starts with "gemini-3." and contains "-live", except gemini-3.5-live-translate.
"""

from __future__ import annotations

GEMINI_3_TRANSLATE_PREFIX = "gemini-3.5-live-translate"
# Live-capable names that do not say so.
EARLY_LIVE_MODELS = frozenset({"gemini-2.0-flash-exp"})


def model_id(model: str) -> str:
    return model.strip().removeprefix("models/")


def is_live_model(model: str) -> bool:
    name = model_id(model).lower()
    return "live" in name or "native-audio" in name or name in EARLY_LIVE_MODELS


def is_gemini_3_live(model: str) -> bool:
    name = model_id(model).lower()
    return (
        name.startswith("gemini-3.")
        and "-live" in name
        and not name.startswith(GEMINI_3_TRANSLATE_PREFIX)
    )


def rejection_reason(model: str, api_version: str) -> str:
    """The close reason Gemini gives for a model that cannot do bidiGenerateContent."""
    return (
        f"models/{model_id(model)} is not found for API version {api_version}, "
        "or is not supported for bidiGenerateContent."
    )
