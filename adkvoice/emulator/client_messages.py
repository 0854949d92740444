"""Sans-I/O codec for the Gemini Live (BidiGenerateContent) client messages.

Decoding turns one client text frame into a typed message or raises `ProtocolError` saying
what was wrong (frames.py builds the server's replies). Nothing here touches sockets or
the event loop. Key spelling is tolerated both ways on input
(google-genai sends snake_case top-level keys and camelCase nested ones), exactly like
the real service, which accepts either proto JSON spelling.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from adkvoice.errors import ProtocolError
from adkvoice.live_models import SCHEDULINGS, Scheduling, ToolBehavior, model_id

from .vision import ImageRefused, image_refusal

JsonObject = dict[str, Any]
Modality = Literal["TEXT", "AUDIO"]

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
OUTPUT_MIME = f"audio/pcm;rate={OUTPUT_RATE}"

CLIENT_KEYS = ("setup", "client_content", "realtime_input", "tool_response", "context_update")

# Gemini documents a Live session context window of 128k tokens, a default compression
# trigger of 80 % of it, and a default sliding-window target of half the trigger.
CONTEXT_WINDOW_TOKENS = 131_072
DEFAULT_TRIGGER_TOKENS = CONTEXT_WINDOW_TOKENS * 4 // 5


# ---------------------------------------------------------------------------- client messages


Sensitivity = Literal["HIGH", "LOW"]
SENSITIVITIES: tuple[Sensitivity, ...] = ("HIGH", "LOW")


@dataclass(frozen=True)
class ActivityDetection:
    """`realtimeInputConfig.automaticActivityDetection` as the emulator uses it."""

    disabled: bool = False
    silence_duration_ms: int | None = None
    prefix_padding_ms: int | None = None
    start_sensitivity: Sensitivity | None = None  # START_SENSITIVITY_HIGH / _LOW
    end_sensitivity: Sensitivity | None = None


@dataclass(frozen=True)
class Thinking:
    """`generationConfig.thinkingConfig`."""

    level: str | None = None  # MINIMAL, LOW, MEDIUM, HIGH
    budget: int | None = None
    include_thoughts: bool = False

    @property
    def label(self) -> str:
        """In words, for a reply: "low", "1024 tokens" or "none"."""
        if self.level is not None:
            return self.level.lower()
        return "none" if self.budget is None else f"{self.budget} tokens"


@dataclass(frozen=True)
class SlidingWindow:
    """`contextWindowCompression` with a sliding window, defaults resolved.

    Once the context exceeds `trigger_tokens` before a turn, the oldest turns are dropped
    until it is at most `target_tokens`.
    """

    trigger_tokens: int = DEFAULT_TRIGGER_TOKENS
    target_tokens: int = DEFAULT_TRIGGER_TOKENS // 2


@dataclass(frozen=True)
class Setup:
    model: str  # as sent, normally "models/<id>"
    response_modality: Modality = "AUDIO"
    system_instruction: str = ""
    function_names: tuple[str, ...] = ()
    input_transcription: bool = False
    output_transcription: bool = False
    activity_detection: ActivityDetection = field(default_factory=ActivityDetection)
    resumption: bool = False
    resume_handle: str | None = None
    initial_history_in_client_content: bool = False
    compression: SlidingWindow | None = None  # None: the context only grows
    # Declarations that name a `behavior`; the others take the model's default.
    tool_behaviors: tuple[tuple[str, ToolBehavior], ...] = ()
    voice: str | None = None  # speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName
    language: str | None = None  # speechConfig.languageCode
    proactive_audio: bool | None = None  # proactivity.proactiveAudio; None: not sent
    affective_dialog: bool | None = None  # generationConfig.enableAffectiveDialog
    thinking: Thinking | None = None
    barge_in: bool = True  # realtimeInputConfig.activityHandling != NO_INTERRUPTION

    @property
    def model_id(self) -> str:
        return model_id(self.model)

    def behavior_of(self, function: str) -> ToolBehavior | None:
        return dict(self.tool_behaviors).get(function)


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "model"
    text: str
    # A user turn that carries a tool's result (history replayed by a client): the model
    # answers it by speaking about the result, without calling the tool again.
    tool_result: JsonObject | None = None


@dataclass(frozen=True)
class ClientContent:
    turns: tuple[Turn, ...] = ()
    turn_complete: bool = False


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes  # s16le mono
    sample_rate: int


@dataclass(frozen=True)
class ImageBlob:
    data: bytes
    mime_type: str  # one of vision.IMAGE_MIME_TYPES


@dataclass(frozen=True)
class RealtimeInput:
    audio: tuple[AudioChunk, ...] = ()
    used_media_chunks: bool = False  # the 2.x `mediaChunks` field rather than `audio`
    images: tuple[ImageBlob, ...] = ()  # video frames and images (`video` or mediaChunks)
    text: str | None = None
    activity_start: bool = False
    activity_end: bool = False
    audio_stream_end: bool = False

    @property
    def other_media(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class FunctionResponse:
    id: str | None
    name: str
    response: JsonObject
    scheduling: Scheduling | None = None  # for NON_BLOCKING calls; None: WHEN_IDLE


@dataclass(frozen=True)
class ToolResponse:
    responses: tuple[FunctionResponse, ...]


@dataclass(frozen=True)
class ContextUpdate:
    system_instruction: str | None = None
    function_names: tuple[str, ...] | None = None


ClientMessage = Setup | ClientContent | RealtimeInput | ToolResponse | ContextUpdate


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """Read a snake_case field in either spelling."""
    if name in obj:
        return obj[name]
    return obj.get(_camel(name))


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be a JSON array, got {type(value).__name__}")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ProtocolError(f"{where} must be true or false, got {value!r}")
    return value


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtocolError(f"{where} must be an integer, got {value!r}")
    try:
        return int(value)  # proto JSON may quote 64-bit ints
    except ValueError:
        raise ProtocolError(f"{where} must be an integer, got {value!r}") from None


def decode_b64(data: Any, where: str) -> bytes:
    """Decode base64 in either alphabet; google-genai sends the URL-safe one."""
    if not isinstance(data, str):
        raise ProtocolError(f"{where} must be a base64 string")
    text = data.strip().replace("+", "-").replace("/", "_")
    text += "=" * (-len(text) % 4)
    try:
        # validate=True: a stray character is an error, not silently dropped bytes.
        return base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ProtocolError(f"{where} is not valid base64") from None


_RATE_RE = re.compile(r"rate=(\d+)")


def audio_rate(mime_type: str) -> int | None:
    """Sample rate of an `audio/pcm` mime type (16 kHz when unstated); None if not PCM audio."""
    mime = mime_type.strip().lower()
    if not mime.startswith("audio/pcm") and not mime.startswith("audio/l16"):
        return None
    match = _RATE_RE.search(mime)
    return int(match.group(1)) if match else INPUT_RATE


def _content_text(content: Mapping[str, Any], where: str) -> str:
    texts: list[str] = []
    for i, part in enumerate(_list(_get(content, "parts"), f"{where}.parts")):
        part = _obj(part, f"{where}.parts[{i}]")
        text = _get(part, "text")
        if isinstance(text, str):
            texts.append(text)
    return "".join(texts)


def _content_tool_result(content: Mapping[str, Any], where: str) -> JsonObject | None:
    """The response of the first functionResponse part, if any."""
    for i, part in enumerate(_list(_get(content, "parts"), f"{where}.parts")):
        response = _get(_obj(part, f"{where}.parts[{i}]"), "function_response")
        if response is not None:
            result = _get(_obj(response, f"{where}.parts[{i}].functionResponse"), "response")
            return dict(result) if isinstance(result, Mapping) else {}
    return None


_BEHAVIORS: dict[str, ToolBehavior | None] = {
    "BLOCKING": "BLOCKING",
    "NON_BLOCKING": "NON_BLOCKING",
    "UNSPECIFIED": None,
}


def _declarations(tools: Any) -> list[tuple[str, ToolBehavior | None]]:
    """(name, behavior) of every function declaration; behavior None when not given."""
    out: list[tuple[str, ToolBehavior | None]] = []
    for i, tool in enumerate(_list(tools, "setup.tools")):
        tool = _obj(tool, f"setup.tools[{i}]")
        decls = _list(_get(tool, "function_declarations"), f"setup.tools[{i}].functionDeclarations")
        for j, decl in enumerate(decls):
            where = f"setup.tools[{i}].functionDeclarations[{j}]"
            body = _obj(decl, where)
            name = _get(body, "name")
            if not isinstance(name, str) or not name:
                raise ProtocolError(f"{where} has no name")
            behavior = _get(body, "behavior")
            if behavior is not None and (
                not isinstance(behavior, str) or behavior.upper() not in _BEHAVIORS
            ):
                raise ProtocolError(f"{where}.behavior: use BLOCKING or NON_BLOCKING")
            out.append((name, None if behavior is None else _BEHAVIORS[behavior.upper()]))
    return out


def _function_names(tools: Any) -> tuple[str, ...]:
    return tuple(name for name, _behavior in _declarations(tools))


E = TypeVar("E", bound=str)


def _enum(value: Any, where: str, prefix: str, allowed: Iterable[E]) -> E | None:
    """An enum value such as START_SENSITIVITY_HIGH, as its suffix ("HIGH"); None if unset."""
    if value is None:
        return None
    text = str(value).upper().removeprefix(prefix)
    if text.endswith("UNSPECIFIED"):
        return None
    for choice in allowed:
        if choice == text:
            return choice
    raise ProtocolError(f"{where}: {value!r} is not one of {', '.join(allowed)}")


def _decode_thinking(raw: Any) -> Thinking | None:
    where = "setup.generationConfig.thinkingConfig"
    if raw is None:
        return None
    body = _obj(raw, where)
    levels = ("MINIMAL", "LOW", "MEDIUM", "HIGH")
    level = _enum(_get(body, "thinking_level"), f"{where}.thinkingLevel", "", levels)
    return Thinking(
        level=level,
        budget=_opt_int(_get(body, "thinking_budget"), f"{where}.thinkingBudget"),
        include_thoughts=_bool(_get(body, "include_thoughts"), f"{where}.includeThoughts"),
    )


def _decode_speech(gen: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(voice name, language code) from generationConfig.speechConfig."""
    where = "setup.generationConfig.speechConfig"
    speech = _obj(_get(gen, "speech_config"), where)
    voice_config = _obj(_get(speech, "voice_config"), f"{where}.voiceConfig")
    prebuilt = _obj(
        _get(voice_config, "prebuilt_voice_config"), f"{where}.voiceConfig.prebuiltVoiceConfig"
    )
    voice = _get(prebuilt, "voice_name")
    language = _get(speech, "language_code")
    for value, name in ((voice, "voiceName"), (language, "languageCode")):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{where}: {name} must be a string")
    return voice or None, language or None


def _decode_compression(raw: Any) -> SlidingWindow | None:
    """`setup.contextWindowCompression`; genai sends its inner keys in snake_case."""
    where = "setup.contextWindowCompression"
    body = _obj(raw, where)
    trigger = _opt_int(_get(body, "trigger_tokens"), f"{where}.triggerTokens")
    window_raw = _get(body, "sliding_window")
    if window_raw is None:
        return None  # the sliding window is the only mechanism: nothing to compress with
    window = _obj(window_raw, f"{where}.slidingWindow")
    target = _opt_int(_get(window, "target_tokens"), f"{where}.slidingWindow.targetTokens")
    if trigger is not None and trigger < 0:
        raise ProtocolError(f"{where}.triggerTokens must not be negative")
    if target is not None and target < 0:
        raise ProtocolError(f"{where}.slidingWindow.targetTokens must not be negative")
    trigger = DEFAULT_TRIGGER_TOKENS if trigger is None else trigger
    return SlidingWindow(trigger, trigger // 2 if target is None else target)


def _decode_setup(body: Mapping[str, Any]) -> Setup:
    model = _get(body, "model")
    if not isinstance(model, str) or not model.strip():
        raise ProtocolError(
            "setup.model is missing: name a Live model, e.g. models/gemini-live-2.5-flash-preview"
        )
    gen = _obj(_get(body, "generation_config"), "setup.generationConfig")
    modalities = _list(
        _get(gen, "response_modalities"), "setup.generationConfig.responseModalities"
    )
    modality: Modality = "AUDIO"
    if modalities:
        first = str(modalities[0]).upper()
        if first not in ("TEXT", "AUDIO"):
            raise ProtocolError(
                f"setup.generationConfig.responseModalities: {modalities[0]!r} is not supported; "
                "use TEXT or AUDIO"
            )
        modality = "TEXT" if first == "TEXT" else "AUDIO"
    system = _get(body, "system_instruction")
    system_text = _content_text(_obj(system, "setup.systemInstruction"), "setup.systemInstruction")
    rt = _obj(_get(body, "realtime_input_config"), "setup.realtimeInputConfig")
    aad = _obj(
        _get(rt, "automatic_activity_detection"),
        "setup.realtimeInputConfig.automaticActivityDetection",
    )
    where = "setup.realtimeInputConfig.automaticActivityDetection"
    detection = ActivityDetection(
        disabled=_bool(_get(aad, "disabled"), f"{where}.disabled"),
        silence_duration_ms=_opt_int(
            _get(aad, "silence_duration_ms"), f"{where}.silenceDurationMs"
        ),
        prefix_padding_ms=_opt_int(_get(aad, "prefix_padding_ms"), f"{where}.prefixPaddingMs"),
        start_sensitivity=_enum(
            _get(aad, "start_of_speech_sensitivity"),
            f"{where}.startOfSpeechSensitivity",
            "START_SENSITIVITY_",
            SENSITIVITIES,
        ),
        end_sensitivity=_enum(
            _get(aad, "end_of_speech_sensitivity"),
            f"{where}.endOfSpeechSensitivity",
            "END_SENSITIVITY_",
            SENSITIVITIES,
        ),
    )
    handling = _enum(
        _get(rt, "activity_handling"),
        "setup.realtimeInputConfig.activityHandling",
        "",
        ("START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"),
    )
    voice, language = _decode_speech(gen)
    proactivity = _get(body, "proactivity")
    proactive = (
        None
        if proactivity is None
        else _bool(
            _get(_obj(proactivity, "setup.proactivity"), "proactive_audio"),
            "setup.proactivity.proactiveAudio",
        )
    )
    affective = _get(gen, "enable_affective_dialog")
    if affective is None:  # older clients put it at the top of setup
        affective = _get(body, "enable_affective_dialog")
    declarations = _declarations(_get(body, "tools"))
    resumption_raw = _get(body, "session_resumption")
    resumption = _obj(resumption_raw, "setup.sessionResumption")
    handle = _get(resumption, "handle")
    if handle is not None and not isinstance(handle, str):
        raise ProtocolError("setup.sessionResumption.handle must be a string")
    history = _obj(_get(body, "history_config"), "setup.historyConfig")
    return Setup(
        model=model.strip(),
        response_modality=modality,
        system_instruction=system_text,
        function_names=tuple(name for name, _ in declarations),
        input_transcription=_get(body, "input_audio_transcription") is not None,
        output_transcription=_get(body, "output_audio_transcription") is not None,
        activity_detection=detection,
        resumption=resumption_raw is not None,
        resume_handle=handle or None,
        initial_history_in_client_content=_bool(
            _get(history, "initial_history_in_client_content"),
            "setup.historyConfig.initialHistoryInClientContent",
        ),
        compression=_decode_compression(_get(body, "context_window_compression")),
        tool_behaviors=tuple((n, b) for n, b in declarations if b is not None),
        voice=voice,
        language=language,
        proactive_audio=proactive,
        affective_dialog=None
        if affective is None
        else _bool(affective, "setup.generationConfig.enableAffectiveDialog"),
        thinking=_decode_thinking(_get(gen, "thinking_config")),
        barge_in=handling != "NO_INTERRUPTION",
    )


def _decode_client_content(body: Mapping[str, Any]) -> ClientContent:
    turns: list[Turn] = []
    for i, raw in enumerate(_list(_get(body, "turns"), "client_content.turns")):
        content = _obj(raw, f"client_content.turns[{i}]")
        role = _get(content, "role") or "user"
        if not isinstance(role, str):
            raise ProtocolError(f"client_content.turns[{i}].role must be a string")
        where = f"client_content.turns[{i}]"
        turns.append(
            Turn(
                role=role,
                text=_content_text(content, where),
                tool_result=_content_tool_result(content, where),
            )
        )
    complete = _bool(_get(body, "turn_complete"), "client_content.turnComplete")
    return ClientContent(turns=tuple(turns), turn_complete=complete)


def _decode_blob(blob: Mapping[str, Any], where: str) -> AudioChunk | ImageBlob:
    """PCM audio, or an image Gemini takes (else ProtocolError, as Gemini refuses it)."""
    mime = _get(blob, "mime_type")
    if not isinstance(mime, str):
        raise ProtocolError(f"{where}.mimeType is missing (e.g. audio/pcm;rate=16000)")
    data = decode_b64(_get(blob, "data"), f"{where}.data")
    rate = audio_rate(mime)
    if rate is None:
        if (refusal := image_refusal(mime, len(data))) is not None:
            raise ImageRefused(f"{where}: {refusal}")
        return ImageBlob(data, mime)
    if len(data) % 2:
        raise ProtocolError(f"{where}: 16-bit PCM needs an even number of bytes, got {len(data)}")
    return AudioChunk(pcm=data, sample_rate=rate)


def _decode_realtime(body: Mapping[str, Any]) -> RealtimeInput:
    blobs: list[AudioChunk | ImageBlob] = []
    chunks = _list(_get(body, "media_chunks"), "realtime_input.mediaChunks")
    for i, blob in enumerate(chunks):
        where = f"realtime_input.mediaChunks[{i}]"
        blobs.append(_decode_blob(_obj(blob, where), where))
    for key in ("audio", "video"):
        if (raw := _get(body, key)) is not None:
            where = f"realtime_input.{key}"
            blobs.append(decoded := _decode_blob(_obj(raw, where), where))
            if isinstance(decoded, AudioChunk) != (key == "audio"):
                kind = "audio/pcm" if key == "audio" else "an image"
                raise ProtocolError(f"realtime_input.{key} must be {kind}")
    text = _get(body, "text")
    if text is not None and not isinstance(text, str):
        raise ProtocolError("realtime_input.text must be a string")
    return RealtimeInput(
        audio=tuple(b for b in blobs if isinstance(b, AudioChunk)),
        used_media_chunks=bool(chunks),
        images=tuple(b for b in blobs if isinstance(b, ImageBlob)),
        text=text,
        activity_start=_get(body, "activity_start") is not None,
        activity_end=_get(body, "activity_end") is not None,
        audio_stream_end=_bool(_get(body, "audio_stream_end"), "realtime_input.audioStreamEnd"),
    )


def _decode_tool_response(body: Mapping[str, Any]) -> ToolResponse:
    responses: list[FunctionResponse] = []
    raw = _list(_get(body, "function_responses"), "tool_response.functionResponses")
    for i, item in enumerate(raw):
        where = f"tool_response.functionResponses[{i}]"
        item = _obj(item, where)
        name = _get(item, "name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"{where}.name is missing")
        call_id = _get(item, "id")
        if call_id is not None and not isinstance(call_id, str):
            raise ProtocolError(f"{where}.id must be a string")
        response = _get(item, "response")
        scheduling = _enum(_get(item, "scheduling"), f"{where}.scheduling", "", SCHEDULINGS)
        responses.append(
            FunctionResponse(
                call_id,
                name,
                dict(_obj(response, f"{where}.response")),
                scheduling,
            )
        )
    if not responses:
        raise ProtocolError("tool_response.functionResponses is empty")
    return ToolResponse(tuple(responses))


def _decode_context_update(body: Mapping[str, Any]) -> ContextUpdate:
    system = _get(body, "system_instruction")
    tools = _get(body, "tools")
    if isinstance(tools, Mapping):  # {"tools": {"tools": [...]}} wrapper
        tools = _get(tools, "tools")
    return ContextUpdate(
        system_instruction=None
        if system is None
        else _content_text(_obj(system, "context_update.systemInstruction"), "context_update"),
        function_names=None if tools is None else _function_names(tools),
    )


def decode_client_message(raw: str | bytes) -> ClientMessage:
    """Decode one client frame; raise `ProtocolError` with an actionable message if it is bad."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"client frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError('client frame must be a JSON object such as {"setup": {...}}')
    present = [key for key in CLIENT_KEYS if _get(obj, key) is not None]
    unknown = [key for key in obj if key not in CLIENT_KEYS and key not in map(_camel, CLIENT_KEYS)]
    if unknown:
        raise ProtocolError(
            f"unknown client message field {unknown[0]!r}; expected one of {', '.join(CLIENT_KEYS)}"
        )
    if len(present) != 1:
        raise ProtocolError(
            f"client frame must hold exactly one of {', '.join(CLIENT_KEYS)}; got {len(present)}"
        )
    key = present[0]
    body = _obj(_get(obj, key), key)
    if key == "setup":
        return _decode_setup(body)
    if key == "client_content":
        return _decode_client_content(body)
    if key == "realtime_input":
        return _decode_realtime(body)
    if key == "tool_response":
        return _decode_tool_response(body)
    return _decode_context_update(body)
