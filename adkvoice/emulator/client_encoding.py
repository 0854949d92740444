"""The client side of the Live codec: encode messages the way google-genai does.

For tests and probes (round trips against `client_messages.decode_client_message`); the
emulator itself only decodes.
"""

from __future__ import annotations

import base64
import json

from .client_messages import (
    ActivityDetection,
    ClientContent,
    ClientMessage,
    JsonObject,
    RealtimeInput,
    Setup,
    ToolResponse,
    Turn,
)


def _content(turn: Turn) -> JsonObject:
    return {"role": turn.role, "parts": [{"text": turn.text}]}


def encode_client_message(msg: ClientMessage) -> str:
    """Encode a client message the way google-genai does (used by tests and probes)."""
    body: JsonObject
    if isinstance(msg, Setup):
        generation: JsonObject = {"responseModalities": [msg.response_modality]}
        body = {"model": msg.model, "generationConfig": generation}
        if msg.system_instruction:
            body["systemInstruction"] = {"parts": [{"text": msg.system_instruction}]}
        if msg.function_names:
            decls: list[JsonObject] = []
            for name in msg.function_names:
                behavior = msg.behavior_of(name)
                decls.append(
                    {"name": name} if behavior is None else {"name": name, "behavior": behavior}
                )
            body["tools"] = [{"functionDeclarations": decls}]
        generation.update(_speech_and_thinking(msg))
        if msg.proactive_audio is not None:
            body["proactivity"] = {"proactiveAudio": msg.proactive_audio}
        if msg.input_transcription:
            body["inputAudioTranscription"] = {}
        if msg.output_transcription:
            body["outputAudioTranscription"] = {}
        det = msg.activity_detection
        if det != ActivityDetection():
            aad: JsonObject = {"disabled": det.disabled}
            if det.silence_duration_ms is not None:
                aad["silenceDurationMs"] = det.silence_duration_ms
            if det.prefix_padding_ms is not None:
                aad["prefixPaddingMs"] = det.prefix_padding_ms
            if det.start_sensitivity is not None:
                aad["startOfSpeechSensitivity"] = f"START_SENSITIVITY_{det.start_sensitivity}"
            if det.end_sensitivity is not None:
                aad["endOfSpeechSensitivity"] = f"END_SENSITIVITY_{det.end_sensitivity}"
            body["realtimeInputConfig"] = {"automaticActivityDetection": aad}
        if not msg.barge_in:
            realtime = body.setdefault("realtimeInputConfig", {})
            realtime["activityHandling"] = "NO_INTERRUPTION"
        if msg.resumption:
            body["sessionResumption"] = {"handle": msg.resume_handle} if msg.resume_handle else {}
        if msg.initial_history_in_client_content:
            body["historyConfig"] = {"initialHistoryInClientContent": True}
        if msg.compression is not None:
            body["contextWindowCompression"] = {
                "triggerTokens": msg.compression.trigger_tokens,
                "slidingWindow": {"targetTokens": msg.compression.target_tokens},
            }
        return json.dumps({"setup": body})
    if isinstance(msg, ClientContent):
        cc: JsonObject = {
            "turns": [_content(t) for t in msg.turns],
            "turnComplete": msg.turn_complete,
        }
        return json.dumps({"client_content": cc})
    if isinstance(msg, RealtimeInput):
        rt: JsonObject = {}
        blobs = [
            {
                "mimeType": f"audio/pcm;rate={c.sample_rate}",
                "data": base64.urlsafe_b64encode(c.pcm).decode(),
            }
            for c in msg.audio
        ]
        if msg.used_media_chunks:
            rt["mediaChunks"] = blobs
        elif blobs:
            rt["audio"] = blobs[0]
        if msg.text is not None:
            rt["text"] = msg.text
        if msg.activity_start:
            rt["activityStart"] = {}
        if msg.activity_end:
            rt["activityEnd"] = {}
        if msg.audio_stream_end:
            rt["audioStreamEnd"] = True
        return json.dumps({"realtime_input": rt})
    if isinstance(msg, ToolResponse):
        frs: list[JsonObject] = []
        for r in msg.responses:
            response: JsonObject = {"id": r.id, "name": r.name, "response": r.response}
            if r.scheduling is not None:
                response["scheduling"] = r.scheduling
            frs.append(response)
        return json.dumps({"tool_response": {"functionResponses": frs}})
    update: JsonObject = {}
    if msg.system_instruction is not None:
        update["systemInstruction"] = {"parts": [{"text": msg.system_instruction}]}
    if msg.function_names is not None:
        update["tools"] = {
            "tools": [{"functionDeclarations": [{"name": n} for n in msg.function_names]}]
        }
    return json.dumps({"context_update": update})


def _speech_and_thinking(msg: Setup) -> JsonObject:
    """The generationConfig fields for voice, language, affective dialog and thinking."""
    out: JsonObject = {}
    speech: JsonObject = {}
    if msg.voice is not None:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": msg.voice}}
    if msg.language is not None:
        speech["languageCode"] = msg.language
    if speech:
        out["speechConfig"] = speech
    if msg.affective_dialog is not None:
        out["enableAffectiveDialog"] = msg.affective_dialog
    if msg.thinking is not None:
        thinking: JsonObject = {"includeThoughts": msg.thinking.include_thoughts}
        if msg.thinking.level is not None:
            thinking["thinkingLevel"] = msg.thinking.level
        if msg.thinking.budget is not None:
            thinking["thinkingBudget"] = msg.thinking.budget
        out["thinkingConfig"] = thinking
    return out
