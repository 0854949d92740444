"""What the embedded backend asks ADK for: the `RunConfig` of a live run, and which tool
calls the model does not wait for.

Both follow from the session's `LivePlan` (the user's options met with the model's family,
see `adkvoice.live_options`), so a reconnect asks for exactly what the first connection
did, except where the model refused part of it (a TEXT setup: `speech_as_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from adkvoice.live_models import ModelFamily, ToolBehavior

if TYPE_CHECKING:
    from google.adk.agents.run_config import RunConfig
    from google.genai.types import RealtimeInputConfig

    from adkvoice.live_options import LivePlan


def run_config(
    plan: LivePlan,
    *,
    audio: bool,
    handle: str | None,
    context_compression: int | None,
    manual_activity: bool,
) -> RunConfig:
    """The run's configuration. `audio`: the model answers in speech (asked for, or
    because it only speaks); then its speech is transcribed too."""
    from google.adk.agents.run_config import RunConfig
    from google.genai import types

    compression = None
    if context_compression is not None:
        compression = types.ContextWindowCompressionConfig(
            sliding_window=types.SlidingWindow(),
            trigger_tokens=context_compression or None,
        )
    speech = None
    if plan.voice is not None or plan.language is not None:
        voice = None
        if plan.voice is not None:
            voice = types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=plan.voice)
            )
        speech = types.SpeechConfig(voice_config=voice, language_code=plan.language)
    return RunConfig(
        response_modalities=[types.Modality.AUDIO if audio else types.Modality.TEXT],
        speech_config=speech,
        output_audio_transcription=types.AudioTranscriptionConfig() if audio else None,
        input_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(handle=handle),
        context_window_compression=compression,
        realtime_input_config=_realtime_input(plan, manual_activity),
        proactivity=(
            types.ProactivityConfig(proactive_audio=True) if plan.proactive_audio else None
        ),
        enable_affective_dialog=True if plan.affective_dialog else None,
    )


def _realtime_input(plan: LivePlan, manual_activity: bool) -> RealtimeInputConfig | None:
    from google.genai import types

    sensitivity = plan.sensitivity
    detection = types.AutomaticActivityDetection(
        disabled=True if manual_activity else None,
        silence_duration_ms=plan.silence_ms,
        start_of_speech_sensitivity=(
            None
            if sensitivity is None
            else types.StartSensitivity(f"START_SENSITIVITY_{sensitivity.upper()}")
        ),
        end_of_speech_sensitivity=(
            None
            if sensitivity is None
            else types.EndSensitivity(f"END_SENSITIVITY_{sensitivity.upper()}")
        ),
    )
    handling = None if plan.barge_in else types.ActivityHandling.NO_INTERRUPTION
    if detection == types.AutomaticActivityDetection() and handling is None:
        return None
    return types.RealtimeInputConfig(
        automatic_activity_detection=detection, activity_handling=handling
    )


def background_rule(
    family: ModelFamily | None, declared: Mapping[str, ToolBehavior]
) -> Callable[[str], bool]:
    """Whether the model goes on without waiting for a call to `name`: its declared
    behavior, else the family's default (an unknown model: only what says NON_BLOCKING)."""
    default: ToolBehavior = family.default_tool_behavior if family is not None else "BLOCKING"
    supported = family is None or family.background_tools

    def runs_in_background(name: str) -> bool:
        return supported and declared.get(name, default) == "NON_BLOCKING"

    return runs_in_background
