"""The live-session options a user asks for (voice, language, voice activity detection,
proactive audio, affective dialog, thinking) and what they become for one model.

`plan_session` meets the options with the model's family in the catalogue before anything
connects: what the model rejects is a `ConfigError` (one line, exit 2; serve closes the
connection with 1008), what it ignores or handles by itself is a notice, and the rest is
what the backend asks the model for. A model the catalogue does not know gets the options
as given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from adkvoice.errors import ConfigError
from adkvoice.live_models import (
    THINKING_LEVELS,
    ModelFamily,
    ThinkingLevel,
    family_of,
    find_voice,
    model_id,
)

Sensitivity = Literal["low", "high"]
SENSITIVITIES: tuple[Sensitivity, ...] = ("low", "high")
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}|\d{3}))?$")
MAX_SILENCE_MS = 10_000


@dataclass(frozen=True)
class LiveOptions:
    """What the user asked of the live session (flags, or serve's query parameters)."""

    voice: str | None = None
    language: str | None = None  # BCP-47, e.g. de-DE
    vad_silence_ms: int | None = None  # silence that ends the user's turn
    vad_sensitivity: Sensitivity | None = None  # start and end of speech alike
    barge_in: bool = True  # False: the user's speech does not cut the agent off
    proactive: bool = False  # the model may choose not to answer (proactive audio)
    affective: bool = False  # the model adapts to the user's tone (affective dialog)
    thinking: str | None = None  # a thinking level (minimal..high) or a token budget

    @property
    def asked(self) -> bool:
        return self != LiveOptions()


@dataclass(frozen=True)
class Thinking:
    level: ThinkingLevel | None = None
    budget: int | None = None


@dataclass(frozen=True)
class LivePlan:
    """What to ask one model for."""

    family: ModelFamily | None
    speech_as_text: bool = False  # text replies from an audio-only model: its transcript
    voice: str | None = None
    language: str | None = None
    silence_ms: int | None = None
    sensitivity: Sensitivity | None = None
    barge_in: bool = True
    proactive_audio: bool = False  # send proactivity.proactiveAudio = true
    affective_dialog: bool = False  # send enableAffectiveDialog = true
    thinking: Thinking | None = None
    notices: tuple[str, ...] = field(default=(), compare=False)


def normalize_language(code: str) -> str:
    """`de-de` → `de-DE`; raise ConfigError for something that is not a language code."""
    match = _LANGUAGE.match(code.strip())
    if match is None:
        raise ConfigError(
            f"--language {code!r} is not a language code: use BCP-47 such as en-US, de-DE or ja-JP"
        )
    primary, region = match.group(1).lower(), match.group(2)
    return primary if region is None else f"{primary}-{region.upper()}"


def parse_thinking(value: str) -> str:
    """A thinking level or a token budget, as typed; checked against the model later."""
    word = value.strip().lower()
    if word in THINKING_LEVELS or word.isdigit():
        return word
    raise ConfigError(
        f"--thinking {value!r}: use a level (minimal, low, medium, high) or a token budget "
        "such as 1024 (0 turns thinking off where the model allows it)"
    )


def plan_session(options: LiveOptions, model: str, *, text_replies: bool) -> LivePlan:
    """What `options` become for `model`; raise ConfigError for what it rejects."""
    family = family_of(model) if model else None
    name = model_id(model) or "this agent's model"
    notices: list[str] = []
    speech_as_text = bool(text_replies and family is not None and not family.text_replies)
    if speech_as_text:
        notices.append(f"{name} answers in audio only: its transcript is shown as the text reply")
    if family is None and options.asked and model:
        notices.append(
            f"{name} is not in adkvoice's model table (adkvoice models): the session "
            "options are sent as given"
        )
    return LivePlan(
        family=family,
        speech_as_text=speech_as_text,
        voice=_voice(options.voice, family, name),
        language=_language(options.language, family, name, notices),
        silence_ms=options.vad_silence_ms,
        sensitivity=options.vad_sensitivity,
        barge_in=options.barge_in,
        proactive_audio=_proactive(options.proactive, family, name, notices),
        affective_dialog=_affective(options.affective, family, name),
        thinking=_thinking(options.thinking, family, name, notices),
        notices=tuple(notices),
    )


def _voice(voice: str | None, family: ModelFamily | None, name: str) -> str | None:
    if voice is None:
        return None
    known = find_voice(voice)
    if known is None:
        raise ConfigError(f"--voice {voice!r} is not a Gemini voice: `adkvoice voices` lists them")
    if family is not None and known not in family.voices:
        raise ConfigError(
            f"{name} has {len(family.voices)} voices and {known} is not one of them: "
            + ", ".join(family.voices)
        )
    return known


def _language(
    language: str | None, family: ModelFamily | None, name: str, notices: list[str]
) -> str | None:
    if language is None:
        return None
    code = normalize_language(language)
    if family is not None and family.language_code == "ignored":
        notices.append(
            f"{name} chooses its spoken language itself and may not follow --language "
            f"{code}; ask for the language in the conversation or the agent's instruction"
        )
    return code


def _proactive(wanted: bool, family: ModelFamily | None, name: str, notices: list[str]) -> bool:
    if not wanted:
        return False
    if family is None or family.proactive_audio == "optional":
        return True
    if family.proactive_audio == "always":
        notices.append(f"proactive audio is always on for {name}: --proactive changes nothing")
        return False
    raise ConfigError(
        f"{name} has no proactive audio: drop --proactive, or use a native-audio model "
        "(gemini-2.5-flash-native-audio-latest) or gemini-3.8-live, where it is always on"
    )


def _affective(wanted: bool, family: ModelFamily | None, name: str) -> bool:
    if not wanted:
        return False
    if family is None or family.affective_dialog:
        return True
    raise ConfigError(
        f"{name} has no affective dialog (Gemini 3.x Live models dropped it): drop "
        "--affective, or use gemini-2.5-flash-native-audio-latest"
    )


def _thinking(
    value: str | None, family: ModelFamily | None, name: str, notices: list[str]
) -> Thinking | None:
    if value is None:
        if family is not None and family.thinking_required:
            default = family.thinking_levels[0]
            notices.append(f"{name} needs a thinking level: using {default} (set --thinking)")
            return Thinking(level=default)
        return None
    level = _level(value)
    budget = None if level is not None else int(value)
    if family is None:
        return Thinking(level=level, budget=budget)
    if family.thinking == "none":
        raise ConfigError(
            f"{name} takes no thinking setting (it reasons on its own): drop --thinking"
            + (", or use gemini-3.8-live-extended-thinking" if family.key == "3.8" else "")
        )
    if family.thinking == "budget" and level is not None:
        raise ConfigError(
            f"{name} takes a thinking budget in tokens, not a level: e.g. --thinking 1024 "
            "(0 turns thinking off)"
        )
    if family.thinking == "levels" and (level is None or level not in family.thinking_levels):
        raise ConfigError(f"{name} takes a thinking level: " + ", ".join(family.thinking_levels))
    return Thinking(level=level, budget=budget)


def _level(value: str) -> ThinkingLevel | None:
    return next((level for level in THINKING_LEVELS if level == value), None)


# serve's query parameters for the options (`/ws/ID?voice=Kore&barge_in=false`), which
# `--url` clients send to a /ws/ server too.
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def to_query(options: LiveOptions) -> dict[str, str]:
    """The options that differ from the defaults, as query parameters."""
    query: dict[str, str] = {}
    if options.voice is not None:
        query["voice"] = options.voice
    if options.language is not None:
        query["language"] = options.language
    if options.vad_silence_ms is not None:
        query["vad_silence_ms"] = str(options.vad_silence_ms)
    if options.vad_sensitivity is not None:
        query["vad_sensitivity"] = options.vad_sensitivity
    if not options.barge_in:
        query["barge_in"] = "false"
    if options.proactive:
        query["proactive"] = "true"
    if options.affective:
        query["affective"] = "true"
    if options.thinking is not None:
        query["thinking"] = options.thinking
    return query


def from_query(query: Mapping[str, str], defaults: LiveOptions) -> LiveOptions:
    """`defaults` with what the query parameters set; ConfigError names a bad one."""

    def flag(name: str, default: bool) -> bool:
        value = query.get(name)
        if value is None:
            return default
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false")

    silence = defaults.vad_silence_ms
    if (raw := query.get("vad_silence_ms")) is not None:
        if not raw.strip().isdigit() or int(raw) > MAX_SILENCE_MS:
            raise ConfigError(f"vad_silence_ms must be 0 to {MAX_SILENCE_MS} milliseconds")
        silence = int(raw)
    sensitivity = defaults.vad_sensitivity
    if (raw := query.get("vad_sensitivity")) is not None:
        sensitivity = next((s for s in SENSITIVITIES if s == raw.strip().lower()), None)
        if sensitivity is None:
            raise ConfigError("vad_sensitivity must be low or high")
    thinking = defaults.thinking
    if (raw := query.get("thinking")) is not None:
        thinking = parse_thinking(raw)
    language = defaults.language
    if (raw := query.get("language")) is not None:
        language = normalize_language(raw)
    return LiveOptions(
        voice=query.get("voice", defaults.voice),
        language=language,
        vad_silence_ms=silence,
        vad_sensitivity=sensitivity,
        barge_in=flag("barge_in", defaults.barge_in),
        proactive=flag("proactive", defaults.proactive),
        affective=flag("affective", defaults.affective),
        thinking=thinking,
    )
