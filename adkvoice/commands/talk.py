"""`adkvoice talk`: a voice conversation from the terminal (or `--input-wav`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from rich.console import Console

from adkvoice.app import configure_logging, release_collector, run_main
from adkvoice.backends.base import require_images
from adkvoice.backends.factory import open_backend
from adkvoice.config import TalkSettings
from adkvoice.conversation.images import (
    FrameFeed,
    image_file_frame,
    open_feed_source,
)
from adkvoice.errors import ConfigError
from adkvoice.events import Notice
from adkvoice.tasks import Supervisor

if TYPE_CHECKING:
    from pathlib import Path

    from adkvoice.audio.aec import EchoCanceller
    from adkvoice.audio.noise import MicCleaner
    from adkvoice.audio.recorder import Recorder
    from adkvoice.audio.wav_source import WavSource
    from adkvoice.backends.emulator_process import EmulatorProcess
    from adkvoice.conversation.voice import TalkSession


def _echo_notice(settings: TalkSettings, echo: EchoCanceller | str | None) -> str | None:
    if not settings.echo_cancellation:
        return "echo cancellation off: use headphones, or the agent may hear itself"
    if isinstance(echo, str):
        return (
            f"{echo}: the microphone is muted to the model while the agent speaks; "
            "speak up to cut in"
        )
    if echo is not None:
        return f"echo cancellation on ({echo.name}): speak any time, even over the agent"
    return None  # a file as the microphone: there is no echo


def _open_recorder(directory: Path) -> Recorder:
    """The --record files, opened before any device: a directory that cannot be written
    is one line, not a recording lost after the conversation."""
    from adkvoice.audio.recorder import Recorder

    try:
        return Recorder(directory)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(
            f"--record: cannot write into {directory}: {reason}; pick a directory you can write"
        ) from None


async def talk(
    settings: TalkSettings, console: Console, emulator: EmulatorProcess | None = None
) -> int:
    from adkvoice.audio.aec import try_canceller  # light: the engine loads lazily
    from adkvoice.audio.capture import Capture
    from adkvoice.audio.noise import try_cleaner
    from adkvoice.audio.playback import Playback
    from adkvoice.conversation.voice import TalkSession
    from adkvoice.ui.keys import Command, KeyReader, TypedLine
    from adkvoice.ui.talk_view import TalkState, TalkView

    # What the model will see, opened and checked before any device or connection.
    vision = settings.vision
    frame_source = open_feed_source(vision.camera, vision.screen)
    try:
        first_image = None
        if vision.image is not None:
            first_image = await image_file_frame(vision.image)
        policy = None
        if frame_source is not None:
            from adkvoice.vision.policy import FramePolicy

            policy = FramePolicy(fps=vision.fps, mode=vision.frames)
    except BaseException:
        if frame_source is not None:
            frame_source.close()
        raise
    view = TalkView(console, TalkState(push_to_talk=settings.push_to_talk))
    wav: WavSource | None = None
    capture: Capture | None = None
    if settings.input_wav is not None:
        from adkvoice.audio.wav_source import WavSource

        wav = WavSource(settings.input_wav)
    else:
        capture = Capture(settings.input_device)
    source = wav or capture
    assert source is not None
    # A file as the microphone hears no echo; otherwise load the canceller (a native
    # library, ~0.25 s) off the loop while the devices open.
    echo_loading: asyncio.Task[EchoCanceller | str] | None = None
    if settings.echo_cancellation and settings.input_wav is None:
        echo_loading = asyncio.create_task(asyncio.to_thread(try_canceller))
    # Noise suppression and, if asked, gain control (the echo canceller's library), for
    # the microphone only: a file is sent as it is. The canceller high-pass filters already.
    noise_loading: asyncio.Task[MicCleaner | str] | None = None
    if settings.noise_suppression and settings.input_wav is None:
        noise_loading = asyncio.create_task(
            asyncio.to_thread(
                try_cleaner,
                high_pass_filter=echo_loading is None,
                gain_control=settings.gain_control,
            )
        )
    playback = Playback(
        settings.output_device,
        tap=settings.record_dir is not None or echo_loading is not None,  # echo reference
    )
    recorder = _open_recorder(settings.record_dir) if settings.record_dir is not None else None
    keys: KeyReader | None = None
    view.start()
    try:
        # Devices first: a missing microphone should fail before the model is dialled.
        if capture is not None:
            await capture.start()
        await playback.start()
        async with open_backend(
            settings.connect,
            view.handle,
            manual_activity=settings.push_to_talk,
            emulator=emulator,
        ) as backend:
            release_collector()  # held by the command line while talk started
            echo = await echo_loading if echo_loading is not None else None
            noise = await noise_loading if noise_loading is not None else None
            session = TalkSession(
                backend,
                view,
                playback,
                push_to_talk=settings.push_to_talk,
                half_duplex=echo_loading is not None,  # the fallback without a canceller
                recorder=recorder,
                canceller=echo if not isinstance(echo, str) else None,
                cleaner=noise if not isinstance(noise, str) else None,
            )
            publish = session.conversation.publish
            if (echo_line := _echo_notice(settings, echo)) is not None:
                publish(Notice(message=echo_line, level="info"))
            if isinstance(noise, str):
                publish(Notice(message=f"{noise}: the microphone goes without noise suppression"))
            supervisor = Supervisor()
            if frame_source is not None or first_image is not None:
                require_images(backend)  # adkvoice.v1 is known only after the handshake
            if frame_source is not None and policy is not None:
                session.feed = FrameFeed(frame_source, backend, publish, policy)
                frame_source = None  # the feed closes it
                view.state.showing = session.feed.name
                mode = "while you speak" if policy.mode == "while-speaking" else "all the time"
                publish(
                    Notice(
                        message=f"showing the agent {session.feed.name} {mode}, at most "
                        f"{policy.fps:g} frame(s) a second",
                        level="info",
                    )
                )
                supervisor.spawn(session.feed.run(), name="frames")
            if first_image is not None and vision.image is not None:
                session.showing.hold(first_image, f"image {vision.image.name}")
                await session.showing.send_pending()
            loop = asyncio.get_running_loop()
            if KeyReader.available() and settings.input_wav is None:

                def on_key(item: Command | TypedLine) -> None:
                    supervisor.spawn(session.on_input(item), name="key")

                keys = KeyReader(loop, on_key, on_error=supervisor.fail)
                keys.start()
            prompt = "speak now" if not settings.push_to_talk else "press space to talk"
            publish(Notice(message=prompt, level="info"))
            tasks = [
                supervisor.spawn(session.pump_mic(source), name="mic"),
                supervisor.spawn(session.pump_events(), name="events"),
                supervisor.spawn(session.watch_playback(), name="playback"),
                supervisor.spawn(session.quit.wait(), name="quit"),
            ]
            if wav is not None:
                tasks.append(supervisor.spawn(_end_after_wav(session, wav), name="wav"))
            await supervisor.run_until_first_done(tasks)
    finally:
        if frame_source is not None:  # opened, never handed to a feed
            frame_source.close()
        if keys is not None:
            keys.stop()
        view.stop()
        with contextlib.suppress(Exception):
            await playback.aclose()
        if capture is not None:
            with contextlib.suppress(Exception):
                await capture.aclose()
        if recorder is not None:
            recorder.close()
            console.print(f"Recorded {recorder.wav_path} and {recorder.events_path}", style="dim")
    return 0


async def _end_after_wav(session: TalkSession, source: WavSource) -> None:
    """With --input-wav: end once the file has been heard, answered and played."""
    await source.finished.wait()
    session.answered.clear()
    # The model answers once it hears the silence after the speech.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            await session.answered.wait()
    await session.playback.drain(timeout_s=60)
    session.quit.set()


def run_talk(settings: TalkSettings, emulator: EmulatorProcess | None = None) -> int:
    """`emulator`: started early by the caller (`start_emulator_early`), or None."""
    configure_logging(settings.debug)
    return run_main(lambda: talk(settings, Console(), emulator))
