"""What each Gemini Live model family accepts and does: one table, read by the emulator
(to behave like the model) and by the client (to ask each model only for what it takes).

Facts come from the Gemini API model pages ("gemini-3.8-live" and its "Migrating from
Gemini 3.1 Flash Live" notes, "gemini-3.8-live-extended-thinking", "gemini-3.1-flash-live-
preview", the Live API tools, thinking and voice pages), google-genai 2.34 and google-adk
2.13, and public live probes (pydantic/pydantic-ai#7269, pipecat-ai/pipecat#4175,
googleapis/python-genai#1780 and #2238, livekit/agents#7302). Where the sources are silent
the entry says ASSUMPTION and why; the emulator behaves by the assumption and the client
does not rely on it (an unexpected refusal is still handled, see `text_refusal`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ToolBehavior = Literal["BLOCKING", "NON_BLOCKING"]
# When the model speaks a background (NON_BLOCKING) call's result (FunctionResponse.
# scheduling): after what it is saying (WHEN_IDLE), cutting that short (INTERRUPT), or
# never (SILENT: the result only informs it).
Scheduling = Literal["SILENT", "WHEN_IDLE", "INTERRUPT"]
SCHEDULINGS: tuple[Scheduling, ...] = ("SILENT", "WHEN_IDLE", "INTERRUPT")
DEFAULT_SCHEDULING: Scheduling = "WHEN_IDLE"  # google-genai: "Defaults to WHEN_IDLE."
ThinkingLevel = Literal["minimal", "low", "medium", "high"]
THINKING_LEVELS: tuple[ThinkingLevel, ...] = ("minimal", "low", "medium", "high")
ProactiveAudio = Literal["unsupported", "optional", "always"]
Thinking = Literal["none", "budget", "levels"]
LanguageCode = Literal["honoured", "ignored"]

# The close Gemini sends for a TEXT setup to an audio-only model (pydantic-ai#7269, 2026-08:
# gemini-3.1-flash-live-preview and gemini-2.5-flash-native-audio-latest). Vertex closes
# the same setup with 1007 "Request contains an invalid argument." (python-genai#1780).
TEXT_REFUSAL_CODE = 1007
TEXT_REFUSAL_REASON = (
    "The requested combination of response modalities (TEXT) is not supported by the model"
)
INVALID_ARGUMENT = "Request contains an invalid argument."


@dataclass(frozen=True)
class Voice:
    name: str
    style: str  # Google's one-word description


# The 30 prebuilt voices of native-audio and 3.x Live models (the Gemini TTS voices; the
# Vertex "Configure language and voice" page lists them with these descriptions).
VOICES: tuple[Voice, ...] = tuple(
    Voice(name, style)
    for name, style in (
        ("Zephyr", "Bright"),
        ("Puck", "Upbeat"),
        ("Charon", "Informative"),
        ("Kore", "Firm"),
        ("Fenrir", "Excitable"),
        ("Leda", "Youthful"),
        ("Orus", "Firm"),
        ("Aoede", "Breezy"),
        ("Callirrhoe", "Easy-going"),
        ("Autonoe", "Bright"),
        ("Enceladus", "Breathy"),
        ("Iapetus", "Clear"),
        ("Umbriel", "Easy-going"),
        ("Algieba", "Smooth"),
        ("Despina", "Smooth"),
        ("Erinome", "Clear"),
        ("Algenib", "Gravelly"),
        ("Rasalgethi", "Informative"),
        ("Laomedeia", "Upbeat"),
        ("Achernar", "Soft"),
        ("Alnilam", "Firm"),
        ("Schedar", "Even"),
        ("Gacrux", "Mature"),
        ("Pulcherrima", "Forward"),
        ("Achird", "Friendly"),
        ("Zubenelgenubi", "Casual"),
        ("Vindemiatrix", "Gentle"),
        ("Sadachbia", "Lively"),
        ("Sadaltager", "Knowledgeable"),
        ("Sulafat", "Warm"),
    )
)
ALL_VOICES = tuple(v.name for v in VOICES)
# Half-cascade models had the first eight only.
HALF_CASCADE_VOICES = ("Puck", "Charon", "Kore", "Fenrir", "Aoede", "Leda", "Orus", "Zephyr")
DEFAULT_VOICE = "Puck"  # what Live models speak with when no voice is asked for


@dataclass(frozen=True)
class ModelFamily:
    """One family of Live models and what it does with each setup option."""

    key: str  # short id: "3.8", "2.5-native-audio", ...
    title: str
    models: tuple[str, ...]  # documented model ids, newest first
    text_replies: bool  # accepts responseModalities TEXT (else audio only, refused with 1007)
    # Message shapes: "3.x" sends transcription inside audio messages, no turnComplete
    # before a tool response, and refuses realtimeInput.mediaChunks.
    shapes: Literal["2.x", "3.x"]
    default_tool_behavior: ToolBehavior  # for declarations without `behavior`
    background_tools: bool  # NON_BLOCKING declarations run in the background
    blocking_tools: bool  # BLOCKING declarations are accepted
    interaction_status: bool  # turnComplete carries interactionStatus IN_PROGRESS / IDLE
    proactive_audio: ProactiveAudio
    affective_dialog: bool
    thinking: Thinking
    thinking_levels: tuple[ThinkingLevel, ...] = ()
    thinking_required: bool = False  # a setup without a thinking setting is refused
    voices: tuple[str, ...] = ALL_VOICES
    language_code: LanguageCode = "ignored"
    tools: bool = True
    retired: str = ""  # when Google retired it on the Gemini API, if it did
    notes: tuple[str, ...] = ()  # assumptions and sources, shown by `adkvoice voices --models`

    @property
    def newest_model(self) -> str:
        return self.models[0]


HALF_CASCADE = ModelFamily(
    key="half-cascade",
    title="Gemini 2.0 / 2.5 Live (half-cascade)",
    models=(
        "gemini-live-2.5-flash-preview",
        "gemini-live-2.5-flash",
        "gemini-2.0-flash-live-001",
        "gemini-2.0-flash-exp",
    ),
    text_replies=True,
    shapes="2.x",
    default_tool_behavior="BLOCKING",
    background_tools=True,  # "only supported in half-cascade audio generation" (2025 docs)
    blocking_tools=True,
    interaction_status=False,
    proactive_audio="unsupported",
    affective_dialog=False,
    thinking="none",
    voices=HALF_CASCADE_VOICES,
    language_code="honoured",
    retired="2025-12-09",
    notes=(
        "Retired on the Gemini API on 2025-12-09 (it now closes with 1008); Vertex AI's "
        "gemini-live-2.5-flash remains.",
        "ASSUMPTION: no proactive audio and no affective dialog (documented only for "
        "native audio).",
    ),
)

NATIVE_AUDIO_25 = ModelFamily(
    key="2.5-native-audio",
    title="Gemini 2.5 Flash native audio",
    models=(
        "gemini-2.5-flash-native-audio-latest",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-live-2.5-flash-native-audio",
    ),
    text_replies=False,
    shapes="2.x",
    default_tool_behavior="BLOCKING",
    background_tools=True,  # Live API tools page: synchronous and asynchronous
    blocking_tools=True,
    interaction_status=False,
    proactive_audio="optional",
    affective_dialog=True,
    thinking="budget",  # thinkingBudget; 0 turns thinking off
    notes=(
        "Native-audio models choose the spoken language themselves; languageCode is "
        "ASSUMED accepted and ignored.",
    ),
)

GEMINI_31 = ModelFamily(
    key="3.1",
    title="Gemini 3.1 Flash Live (legacy preview)",
    models=("gemini-3.1-flash-live-preview",),
    text_replies=False,
    shapes="3.x",
    default_tool_behavior="BLOCKING",
    # "Async function calling: not yet supported." ASSUMPTION: a NON_BLOCKING declaration
    # is accepted and run as a blocking one.
    background_tools=False,
    blocking_tools=True,
    interaction_status=False,
    proactive_audio="unsupported",  # "Remove any configuration for these features."
    affective_dialog=False,
    thinking="levels",
    thinking_levels=THINKING_LEVELS,  # default minimal
    notes=(
        "Proactive audio and affective dialog are not supported; ASSUMPTION: a setup "
        "with either is refused with 1007 (a probe saw no setupComplete at all).",
    ),
)

GEMINI_38 = ModelFamily(
    key="3.8",
    title="Gemini 3.8 Live",
    models=("gemini-3.8-live",),
    text_replies=False,  # "the supported response modality is audio"
    shapes="3.x",
    default_tool_behavior="NON_BLOCKING",  # asynchronous function calling is the default
    background_tools=True,
    blocking_tools=True,  # behavior: BLOCKING restores the old mode
    # The issue reports and google-genai document IN_PROGRESS/IDLE alongside turnComplete;
    # ASSUMPTION: plain 3.8 sends it as extended thinking does.
    interaction_status=True,
    proactive_audio="always",  # "Setting proactive_audio: false returns an error."
    affective_dialog=False,  # "removed from the API"
    thinking="none",  # "thinking_level is not supported on gemini-3.8-live"
    notes=(
        "ASSUMPTION: refusals (TEXT, proactive audio off, affective dialog, a thinking "
        "setting) close with 1007 like 3.1's; the 3.8 pages give no close codes.",
    ),
)

GEMINI_38_EXTENDED = ModelFamily(
    key="3.8-extended-thinking",
    title="Gemini 3.8 Live Extended Thinking",
    models=("gemini-3.8-live-extended-thinking",),
    text_replies=False,
    shapes="3.x",
    default_tool_behavior="NON_BLOCKING",
    background_tools=True,
    blocking_tools=False,  # "Only asynchronous non-blocking execution is supported"
    interaction_status=True,
    proactive_audio="always",
    affective_dialog=False,
    thinking="levels",
    thinking_levels=("low", "medium", "high"),
    # Third-party report (vercel/ai#20787): a setup without a thinking level is refused.
    thinking_required=True,
    notes=("ASSUMPTION: minimal is refused, as third-party validators do.",),
)

TRANSLATE_35 = ModelFamily(
    key="3.5-translate",
    title="Gemini 3.5 Live Translate (preview)",
    models=("gemini-3.5-live-translate-preview",),
    text_replies=False,
    shapes="2.x",  # ADK does not count it among the 3.x Live models
    default_tool_behavior="BLOCKING",
    background_tools=False,
    blocking_tools=False,
    interaction_status=False,
    proactive_audio="unsupported",
    affective_dialog=False,
    thinking="none",
    tools=False,  # "no support for tools or instructions"
    notes=("Translates the user's speech; takes audio input only and no tools.",),
)

FAMILIES: tuple[ModelFamily, ...] = (
    GEMINI_38_EXTENDED,
    GEMINI_38,
    GEMINI_31,
    TRANSLATE_35,
    NATIVE_AUDIO_25,
    HALF_CASCADE,
)
# The model the built-in assistant uses, and the family an unknown future Live name is
# emulated as (the newest behaviour is the likeliest).
RECOMMENDED_MODEL = GEMINI_38.newest_model
NEWEST_FAMILY = GEMINI_38

_PATTERNS: tuple[tuple[re.Pattern[str], ModelFamily], ...] = (
    (re.compile(r"^gemini-3\.8-live-extended-thinking"), GEMINI_38_EXTENDED),
    (re.compile(r"^gemini-3\.8-live"), GEMINI_38),
    (re.compile(r"^gemini-3\.5-live-translate"), TRANSLATE_35),
    (re.compile(r"^gemini-3\.1-flash-live"), GEMINI_31),
    (re.compile(r"native-audio"), NATIVE_AUDIO_25),
    (re.compile(r"^gemini-2\.[05]-flash-(live|exp$)|^gemini-live-2\.5-flash"), HALF_CASCADE),
)
# Live-capable names that do not say so.
EARLY_LIVE_MODELS = frozenset({"gemini-2.0-flash-exp"})


def model_id(model: str) -> str:
    """`models/gemini-3.8-live` → `gemini-3.8-live`."""
    return model.strip().removeprefix("models/")


def is_live_model(model: str) -> bool:
    """A name the Live API could serve: it says live or native-audio (or is the first Live
    model, which the ADK streaming samples use). Others are refused with 1008."""
    name = model_id(model).lower()
    return "live" in name or "native-audio" in name or name in EARLY_LIVE_MODELS


def family_of(model: str) -> ModelFamily | None:
    """The family of a Live model name; None for a name this table does not know."""
    name = model_id(model).lower()
    for pattern, family in _PATTERNS:
        if pattern.search(name):
            return family
    return None


def message_shapes(model: str) -> Literal["2.x", "3.x"]:
    """The message shapes a model uses. For a name the table does not know, ADK's own rule
    (google.adk.utils.model_name_utils): a "gemini-3." name with "-live" in it, except
    the translate model, is 3.x. Client and server must agree on this, or a tool call
    waits for a turnComplete that never comes."""
    family = family_of(model)
    if family is not None:
        return family.shapes
    name = model_id(model).lower()
    gemini3 = name.startswith("gemini-3.") and "-live" in name
    return "3.x" if gemini3 and not name.startswith("gemini-3.5-live-translate") else "2.x"


def find_voice(name: str) -> str | None:
    """The voice's proper spelling, matched without regard to case; None if unknown."""
    wanted = name.strip().lower()
    return next((v for v in ALL_VOICES if v.lower() == wanted), None)


def rejection_reason(model: str, api_version: str) -> str:
    """The close reason Gemini gives for a model that cannot do bidiGenerateContent."""
    return (
        f"models/{model_id(model)} is not found for API version {api_version}, "
        "or is not supported for bidiGenerateContent."
    )


def mentions_text_refusal(reason: str) -> bool:
    """The Gemini API's wording of a refused TEXT setup, wherever it is passed on (ADK's
    api_server closes with 1011 and the error's text as the reason)."""
    return "response modalities (TEXT)" in reason


def is_text_refusal(code: int | None, reason: str) -> bool:
    """Gemini's close for a TEXT setup to an audio-only model."""
    return code == TEXT_REFUSAL_CODE and mentions_text_refusal(reason)
