"""The `adkvoice` command line: parse flags, build settings, run the command.

No asyncio and no ADK imports at module level, so `adkvoice --help` and `--version`
stay fast: each command imports what it needs when it runs. The application and how a
command is run are in `cli_app`, help pages in `cli_help`, `sessions` in `cli_sessions`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from adkvoice.cli_app import app, command, run_action, with_early_emulator
from adkvoice.cli_options import (
    AffectiveOpt,
    AgentArg,
    AllowHostOpt,
    AllowOriginOpt,
    BackendOpt,
    BackendOption,
    CameraOpt,
    CompressionOpt,
    DebugOpt,
    EmulatorRulesOpt,
    FpsOpt,
    FramesOpt,
    FramesOption,
    GainControlOpt,
    HeaderOpt,
    LanguageOpt,
    ModelOpt,
    NoBargeInOpt,
    NoNoiseSuppressionOpt,
    ProactiveOpt,
    ProtocolOpt,
    ProtocolOption,
    ResumeOpt,
    ScreenOpt,
    SessionIdOpt,
    SessionsOpt,
    ThinkingOpt,
    TokenOpt,
    UrlOpt,
    UserOpt,
    VadSensitivityOpt,
    VadSilenceOpt,
    VoiceOpt,
    connect_settings,
    fail,
    image_opt,
    live_options,
    parse_compression,
    vision_settings,
)
from adkvoice.cli_sessions import sessions_app

__all__ = ["app", "main"]

if TYPE_CHECKING:
    from adkvoice.backends.emulator_process import EmulatorProcess


@command()
def chat(
    agent: AgentArg = None,
    text: Annotated[
        bool, typer.Option("--text", "-t", help="Ask for text replies instead of spoken ones.")
    ] = False,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Write one JSON object per event (JSON lines) to stdout."),
    ] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    header: HeaderOpt = None,
    protocol: ProtocolOpt = ProtocolOption.auto,
    backend: BackendOpt = BackendOption.auto,
    model: ModelOpt = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            help="Fail (exit code 8) when a reply takes longer than this many seconds.",
            show_default=False,
        ),
    ] = None,
    session_id: SessionIdOpt = None,
    resume: ResumeOpt = False,
    sessions: SessionsOpt = None,
    compression: CompressionOpt = "on",
    user_id: UserOpt = "user",
    rules: EmulatorRulesOpt = None,
    voice: VoiceOpt = None,
    language: LanguageOpt = None,
    vad_silence_ms: VadSilenceOpt = None,
    vad_sensitivity: VadSensitivityOpt = None,
    no_barge_in: NoBargeInOpt = False,
    proactive: ProactiveOpt = False,
    affective: AffectiveOpt = False,
    thinking: ThinkingOpt = None,
    image: Annotated[Path | None, image_opt("with the first message")] = None,
    debug: DebugOpt = False,
) -> None:
    """Type to an agent; its replies stream as they are generated.

    Each line you type is a turn. In a terminal, replies stream with tool calls (arguments, result, duration) and a timing line per turn. From a pipe, each input line is a turn and only the replies are printed, one line each:

    [dim]$[/] echo "what time is it?" | adkvoice chat --text

    [dim]$[/] adkvoice chat path/to/my_agent --json < questions.txt > events.jsonl

    /image PATH or /screen [MONITOR|REGION] on a line of its own shows the agent a picture with your next message. Ctrl-D (end of input) ends the chat.
    """
    from adkvoice.config import ChatSettings, OutputMode

    output: OutputMode
    if json_output:
        output = "json"
    elif not sys.stdin.isatty() or not sys.stdout.isatty():
        output = "plain"
    else:
        output = "rich"
    connect = connect_settings(
        agent=agent,
        url=url,
        token=token,
        headers=header,
        protocol=protocol,
        backend=backend,
        model=model,
        text=text,
        user_id=user_id,
        session_id=session_id,
        resume=resume,
        sessions=sessions,
        rules=rules,
        compression=compression,
        live=live_options(
            voice=voice,
            language=language,
            vad_silence_ms=vad_silence_ms,
            vad_sensitivity=vad_sensitivity,
            no_barge_in=no_barge_in,
            proactive=proactive,
            affective=affective,
            thinking=thinking,
        ),
    )
    settings = ChatSettings(
        connect=connect,
        output=output,
        timeout_s=timeout,
        debug=debug,
        vision=vision_settings(image=image),
    )

    def action() -> int:
        def run(emulator: EmulatorProcess | None) -> int:
            from adkvoice.commands.chat import run_chat  # imports ADK

            return run_chat(settings, emulator)

        return with_early_emulator(
            settings.connect, run, text_chunk_delay_s=settings.text_chunk_delay_s, debug=debug
        )

    run_action(action, debug)


@command()
def emulator(
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", min=0, max=65535, help="Port to listen on (0 picks a free one)."
        ),
    ] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="A rules file (TOML): pattern → reply or tool call.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Run the offline Gemini Live API emulator for any ADK app.

    It prints the environment variables that point an ADK app (adk web, adk run, your own code) at it. Replies come from rules (pattern → reply, tool call or fault), with an echo as the default.
    """
    from adkvoice.config import EmulatorSettings

    settings = EmulatorSettings(host=host, port=port, rules=rules, debug=debug)

    def action() -> int:
        from adkvoice.commands.emulator import run_emulator

        return run_emulator(settings)

    run_action(action, debug)


@command()
def serve(
    agent: AgentArg = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Anything but loopback (127.0.0.0/8, ::1, localhost) "
            "requires --token.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="ADKVOICE_TOKEN",
            help="Require this token on WebSocket and /chat/stream (header `Authorization: Bearer …` or `?token=`).",
            show_default=False,
        ),
    ] = None,
    certfile: Annotated[
        Path | None,
        typer.Option(
            "--certfile",
            help="TLS certificate (PEM); with --keyfile.",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    keyfile: Annotated[
        Path | None,
        typer.Option(
            "--keyfile",
            help="TLS private key (PEM).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    allow_origin: AllowOriginOpt = None,
    allow_host: AllowHostOpt = None,
    backend: BackendOpt = BackendOption.auto,
    model: ModelOpt = None,
    sessions: SessionsOpt = None,
    compression: CompressionOpt = "on",
    max_sessions: Annotated[
        int,
        typer.Option("--max-sessions", min=1, help="Sessions (WebSocket and SSE) served at once."),
    ] = 32,
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
    event_loop: Annotated[
        str,
        typer.Option(
            "--loop",
            help="The event loop: uvloop (pip install 'adkvoice[fast]'), asyncio, or auto: uvloop when it is installed.",
        ),
    ] = "auto",
    rules: EmulatorRulesOpt = None,
    voice: VoiceOpt = None,
    language: LanguageOpt = None,
    vad_silence_ms: VadSilenceOpt = None,
    vad_sensitivity: VadSensitivityOpt = None,
    no_barge_in: NoBargeInOpt = False,
    proactive: ProactiveOpt = False,
    affective: AffectiveOpt = False,
    thinking: ThinkingOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Host an agent for browsers and remote terminals.

    Serves the browser client at /, the ADK streaming sample's WebSocket protocol at /ws/{session_id}?is_audio=true|false and its SSE version at /events/{session_id} and /send/{session_id} (the samples' own pages work unchanged), bidi-demo's at /ws/{user_id}/{session_id}, Server-Sent Events at /chat/stream, and /healthz and /readyz. Ctrl-C drains running turns, then stops.
    """
    from adkvoice.config import ServeSettings

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        fail(f"--log-level must be debug, info, warning or error, not {log_level!r}", 2)
    if event_loop not in ("auto", "uvloop", "asyncio"):
        fail(f"--loop must be auto, uvloop or asyncio, not {event_loop!r}", 2)
    settings = ServeSettings(
        agent_path=agent,
        host=host,
        port=port,
        token=token,
        certfile=certfile,
        keyfile=keyfile,
        allowed_origins=tuple(allow_origin or ()),
        allowed_hosts=tuple(allow_host or ()),
        backend=backend.value,
        model=model,
        sessions=sessions,
        max_sessions=max_sessions,
        log_level=log_level.lower(),
        event_loop=event_loop,  # type: ignore[arg-type]  # checked above
        emulator_rules=rules,
        debug=debug,
        context_compression=parse_compression(compression),
        live=live_options(
            voice=voice,
            language=language,
            vad_silence_ms=vad_silence_ms,
            vad_sensitivity=vad_sensitivity,
            no_barge_in=no_barge_in,
            proactive=proactive,
            affective=affective,
            thinking=thinking,
        ),
    )

    def action() -> int:
        from adkvoice.commands.serve import run_serve

        return run_serve(settings)

    run_action(action, debug)


@command()
def talk(
    agent: AgentArg = None,
    input_device: Annotated[
        str | None,
        typer.Option(
            "--input-device",
            "-i",
            help="Microphone: an index or part of a name (see `adkvoice devices`).",
            show_default=False,
        ),
    ] = None,
    output_device: Annotated[
        str | None,
        typer.Option(
            "--output-device", "-o", help="Speaker: an index or part of a name.", show_default=False
        ),
    ] = None,
    push_to_talk: Annotated[
        bool,
        typer.Option(
            "--push-to-talk",
            help="Space starts your turn and space ends it, instead of the model detecting when you stop.",
        ),
    ] = False,
    no_aec: Annotated[
        bool,
        typer.Option(
            "--no-aec",
            help="No echo cancellation: the raw microphone, full duplex (for headphones).",
        ),
    ] = False,
    no_noise_suppression: NoNoiseSuppressionOpt = False,
    gain_control: GainControlOpt = False,
    record: Annotated[
        Path | None,
        typer.Option(
            "--record",
            help="Write a stereo WAV (you left, agent right) and a JSONL event log into this directory.",
            file_okay=False,
            show_default=False,
        ),
    ] = None,
    input_wav: Annotated[
        Path | None,
        typer.Option(
            "--input-wav",
            help="Speak this WAV file instead of the microphone, then exit after the reply (for scripts and CI).",
            exists=True,
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    echo_test: Annotated[
        bool,
        typer.Option(
            "--echo-test",
            help="Play a test sound, measure the speaker-to-microphone delay and how much echo the canceller removes, then exit.",
        ),
    ] = False,
    camera: CameraOpt = None,
    screen: ScreenOpt = None,
    image: Annotated[Path | None, image_opt("once, at the start")] = None,
    fps: FpsOpt = 1.0,
    frames: FramesOpt = FramesOption.while_speaking,
    url: UrlOpt = None,
    token: TokenOpt = None,
    header: HeaderOpt = None,
    protocol: ProtocolOpt = ProtocolOption.auto,
    backend: BackendOpt = BackendOption.auto,
    model: ModelOpt = None,
    session_id: SessionIdOpt = None,
    resume: ResumeOpt = False,
    sessions: SessionsOpt = None,
    compression: CompressionOpt = "on",
    user_id: UserOpt = "user",
    rules: EmulatorRulesOpt = None,
    voice: VoiceOpt = None,
    language: LanguageOpt = None,
    vad_silence_ms: VadSilenceOpt = None,
    vad_sensitivity: VadSensitivityOpt = None,
    no_barge_in: NoBargeInOpt = False,
    proactive: ProactiveOpt = False,
    affective: AffectiveOpt = False,
    thinking: ThinkingOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Talk to an agent by voice.

    You speak; the agent answers through the speaker while its words and yours are transcribed on screen. Speak over it to cut in. Keys: m mutes the microphone, t types a message (/image PATH or /screen shows a picture with what you say next), q quits (space talks with --push-to-talk). --camera or --screen shows the agent what you talk about; the status line counts the frames sent.
    """
    from adkvoice.config import TalkSettings

    if echo_test:

        def measure() -> int:
            from adkvoice.commands.echo_test import run_echo_test

            return run_echo_test(input_device, output_device, debug)

        run_action(measure, debug)
        return
    connect = connect_settings(
        agent=agent,
        url=url,
        token=token,
        headers=header,
        protocol=protocol,
        backend=backend,
        model=model,
        text=False,
        user_id=user_id,
        session_id=session_id,
        resume=resume,
        sessions=sessions,
        rules=rules,
        compression=compression,
        live=live_options(
            voice=voice,
            language=language,
            vad_silence_ms=vad_silence_ms,
            vad_sensitivity=vad_sensitivity,
            no_barge_in=no_barge_in,
            proactive=proactive,
            affective=affective,
            thinking=thinking,
        ),
    )
    settings = TalkSettings(
        connect=connect,
        input_device=input_device,
        output_device=output_device,
        push_to_talk=push_to_talk,
        echo_cancellation=not no_aec,
        noise_suppression=not no_noise_suppression,
        gain_control=gain_control,
        record_dir=record,
        input_wav=input_wav,
        debug=debug,
        vision=vision_settings(camera=camera, screen=screen, image=image, fps=fps, frames=frames),
    )

    def action() -> int:
        def run(emulator: EmulatorProcess | None) -> int:
            from adkvoice.commands.talk import run_talk  # imports ADK

            return run_talk(settings, emulator)

        return with_early_emulator(settings.connect, run, text_chunk_delay_s=0.0, debug=debug)

    run_action(action, debug)


@command()
def voices(
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Only the voices this model has.", show_default=False),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """List the voices Live models speak with, and how each sounds (pick one with --voice)."""

    def action() -> int:
        from adkvoice.commands.models import run_voices

        return run_voices(model, debug)

    run_action(action, debug)


@command()
def models(debug: DebugOpt = False) -> None:
    """List the Gemini Live model families: text replies, tools, proactive audio, affective dialog, thinking, voices."""

    def action() -> int:
        from adkvoice.commands.models import run_models

        return run_models(debug)

    run_action(action, debug)


@command()
def devices(debug: DebugOpt = False) -> None:
    """List audio inputs and outputs: index, name, default marks and the rates each accepts."""

    def action() -> int:
        from adkvoice.commands.devices import run_devices

        return run_devices(debug)

    run_action(action, debug)


app.add_typer(sessions_app, name="sessions")


def main() -> None:
    app()
