"""The one owner of the event loop: wires input ⇄ backend ⇄ view, signals and shutdown.

Shutdown order: stop reading input, close the backend (its live connection), stop the
emulator, then restore the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import warnings
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rich.console import Console

from adkvoice.backends.factory import default_handles_dir, is_ephemeral, live_endpoint, open_backend
from adkvoice.config import (
    ChatSettings,
    EmulatorSettings,
    ServeSettings,
    SessionsSettings,
    TalkSettings,
)
from adkvoice.conversation.turns import TurnTracker
from adkvoice.errors import AdkVoiceError, ConfigError, ConnectionLostError, TurnTimeoutError
from adkvoice.events import AgentAudio, Event, Interrupted, Notice
from adkvoice.store.sessions import open_store
from adkvoice.tasks import cancel_and_wait
from adkvoice.ui.chat_view import JsonLinesView, PlainChatView, RichChatView, View
from adkvoice.ui.line_input import LineReader

if TYPE_CHECKING:
    from adkvoice.audio.playback import Playback
    from adkvoice.audio.wav_source import WavSource
    from adkvoice.backends.base import Backend
    from adkvoice.conversation.voice import TalkSession

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_PROMPT_PLAIN = "you › "
# \001 and \002 tell readline that the colour codes take no room on screen.
_PROMPT_COLOR = "\001\x1b[1;36m\002you ›\001\x1b[0m\002 "


def configure_logging(debug: bool) -> None:
    """Quiet third-party chatter unless --debug; ADK's experimental warnings are noise
    to a user of the CLI."""
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        return
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    # ADK logs failures with tracebacks; adkvoice reports them itself in one line.
    for name in ("google_adk", "google", "websockets", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"google\..*")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydantic\..*")


class _Session:
    """One typed conversation: sends turns and waits for each one to complete."""

    def __init__(
        self,
        backend: Backend,
        view: View,
        timeout_s: float | None,
        player: Playback | None = None,
    ) -> None:
        self._backend = backend
        self._view = view
        self._timeout_s = timeout_s
        self._player = player  # plays spoken replies; None shows only their transcript
        self._turn_done = asyncio.Event()
        self._tracker = TurnTracker()
        self._failure: BaseException | None = None
        self._ended = False

    async def consume(self) -> None:
        """Dispatch backend events to the view until the conversation ends."""
        try:
            async for event in self._backend.events():
                self._dispatch(event)
        except AdkVoiceError as exc:
            self._failure = exc
        finally:
            self._ended = True
            self._turn_done.set()

    def _dispatch(self, event: Event) -> None:
        if self._player is not None:
            if isinstance(event, AgentAudio):
                self._player.enqueue(event.pcm, event.sample_rate)
            elif isinstance(event, Interrupted):
                self._player.flush()
        self._view.handle(event)
        if self._tracker.feed(event):
            if self._player is not None:
                self._player.end_reply()
            self._turn_done.set()

    async def finish_speaking(self) -> None:
        """Let a spoken reply play to its end."""
        if self._player is not None:
            await self._player.drain(timeout_s=120)

    async def turn(self, text: str) -> None:
        if self._failure is not None:
            raise self._failure
        self._turn_done.clear()
        self._view.user_turn(text)
        await self._backend.send_text(text)
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._turn_done.wait()
        except TimeoutError:
            raise TurnTimeoutError(
                f"no complete reply within {self._timeout_s:g} s (--timeout); the agent or "
                "the model is too slow or stuck"
            ) from None
        if self._failure is not None:
            raise self._failure
        if self._ended:
            raise ConnectionLostError("the live session ended before the reply completed")
        await self.finish_speaking()


def _prompt_on_stderr(_prompt: str) -> str:
    sys.stderr.write(_PROMPT_PLAIN)
    sys.stderr.flush()
    return input()


def _make_view(settings: ChatSettings, out: Console) -> View:
    if settings.output == "json":
        return JsonLinesView(sys.stdout)
    if settings.output == "plain":
        return PlainChatView(sys.stdout, sys.stderr)
    return RichChatView(out, spoken_replies=not settings.connect.text_replies)


async def _chat(settings: ChatSettings, err: Console, out: Console) -> int:
    view = _make_view(settings, out)
    rich_view = view if isinstance(view, RichChatView) else None

    def say(message: str) -> None:
        if rich_view is not None:
            rich_view.notice(message)
        elif settings.output == "plain":
            err.print(message, style="cyan", highlight=False, soft_wrap=True)

    loop = asyncio.get_running_loop()
    interactive = sys.stdin.isatty()
    if settings.output == "rich":
        reader = LineReader(
            loop,
            sys.stdin,
            interactive=interactive,
            prompt=_PROMPT_COLOR if not out.no_color else _PROMPT_PLAIN,
        )
    else:
        # stdout carries only replies or JSON: a prompt for a person at a terminal goes to stderr.
        reader = LineReader(
            loop, sys.stdin, interactive=interactive, read_prompted=_prompt_on_stderr
        )
    streaming_feel = 0.03 if settings.output == "rich" else 0.0
    player = None
    if not settings.connect.text_replies and settings.output != "json":
        player = await _open_player(say)
    async with open_backend(settings.connect, say, text_chunk_delay_s=streaming_feel) as backend:
        if rich_view is not None:
            rich_view.notice("type a message; Ctrl-D to quit")
        session = _Session(backend, view, settings.timeout_s, player)
        consumer = asyncio.create_task(session.consume(), name="events")
        reader.start()
        try:
            while (line := await reader.next_line()) is not None:
                text = line.strip()
                if text:
                    await session.turn(text)
            if interactive:  # Ctrl-D left the cursor after the prompt
                (out.file if settings.output == "rich" else sys.stderr).write("\n")
        finally:
            view.close()
            await cancel_and_wait(consumer)
            if player is not None:
                await player.aclose()
    return 0


async def _open_player(say: Callable[[str], None]) -> Playback | None:
    """The speaker for spoken replies, or None (with a notice) when there is none."""
    from adkvoice.audio.playback import Playback
    from adkvoice.errors import AudioDeviceError

    player = Playback()
    try:
        await player.start()
    except AudioDeviceError as exc:
        say(f"spoken replies are shown as text only: {exc}")
        return None
    return player


def _run_main(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run `main()` on a new loop; SIGINT and SIGTERM cancel it so `finally` blocks run."""
    import termios

    saved_tty = None
    if sys.stdin.isatty():
        with contextlib.suppress(termios.error):
            saved_tty = termios.tcgetattr(sys.stdin.fileno())
    exit_code = 0

    async def runner() -> int:
        nonlocal exit_code
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            nonlocal exit_code
            exit_code = EXIT_TERMINATED
            task.cancel()

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, terminate)
        result = await main()
        # SIGTERM may land while cleanup runs after main's own exit: it still counts.
        return EXIT_TERMINATED if exit_code == EXIT_TERMINATED else result

    try:
        exit_code = asyncio.run(runner())
    except KeyboardInterrupt:
        exit_code = EXIT_INTERRUPTED
    except asyncio.CancelledError:
        exit_code = exit_code or EXIT_TERMINATED
    finally:
        if saved_tty is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_tty)
    return exit_code


def run_chat(settings: ChatSettings) -> int:
    configure_logging(settings.debug)
    err = Console(stderr=True)
    out = Console()
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())
    return _run_main(lambda: _chat(settings, err, out))


async def _serve_emulator(settings: EmulatorSettings, out: Console) -> int:
    from adkvoice.emulator import Emulator, EmulatorOptions, load_rules

    rules = load_rules(settings.rules) if settings.rules else None
    emulator = Emulator(
        EmulatorOptions(
            host=settings.host,
            port=settings.port,
            rules=rules,
            text_chunk_delay_s=0.03,
            audio_pacing=1.0,
        )
    )
    await emulator.start()
    try:
        source = str(settings.rules) if settings.rules else "built-in"
        out.print(
            f"Gemini Live API emulator listening on [bold]{emulator.base_url}[/] (rules: {source})",
            highlight=False,
        )
        out.print("Point any ADK app (adk web, adk run, your own) at it with:")
        for key, value in emulator.client_env().items():
            out.print(f"  export {key}={value}", highlight=False, markup=False, soft_wrap=True)
        out.print("Ctrl-C to stop.", style="dim")
        await asyncio.Event().wait()
    finally:
        await emulator.stop()
    return 0


def run_emulator(settings: EmulatorSettings) -> int:
    configure_logging(settings.debug)
    code = _run_main(lambda: _serve_emulator(settings, Console()))
    return 0 if code == EXIT_INTERRUPTED else code


async def _sessions(settings: SessionsSettings, action: str, session_id: str | None) -> int:
    from adkvoice.agents.loading import app_name_for
    from adkvoice.store.sessions import list_summaries
    from adkvoice.ui.chat_view import session_transcript, sessions_table

    out = Console()
    store = open_store(settings.sessions)
    app_name = app_name_for(settings.agent_path)
    service = store.service
    if action == "list":
        summaries = await list_summaries(service, app_name, settings.user_id)
        if not summaries:
            out.print(f"No conversations with {app_name} in {store.label} yet.", highlight=False)
        else:
            out.print(sessions_table(summaries, store_label=store.label))
        return 0
    assert session_id is not None
    session = await service.get_session(
        app_name=app_name, user_id=settings.user_id, session_id=session_id
    )
    if session is None:
        raise ConfigError(
            f"no conversation {session_id!r} with {app_name} in {store.label}; "
            "`adkvoice sessions list` shows them"
        )
    if action == "show":
        out.print(session_transcript(session))
    else:
        await service.delete_session(
            app_name=app_name, user_id=settings.user_id, session_id=session_id
        )
        out.print(f"Deleted conversation {session_id}.", highlight=False)
    return 0


def run_sessions(settings: SessionsSettings, action: str, session_id: str | None = None) -> int:
    configure_logging(settings.debug)
    return _run_main(lambda: _sessions(settings, action, session_id))


async def _serve(settings: ServeSettings) -> int:
    from adkvoice.agents.loading import load_agent_dir, load_bundled_agent
    from adkvoice.server import ServeOptions, serve

    err = Console(stderr=True)

    def say(message: str) -> None:
        err.print(message, style="cyan", highlight=False, soft_wrap=True)

    loaded = load_agent_dir(settings.agent_path) if settings.agent_path else load_bundled_agent()
    store = open_store(settings.sessions)
    async with live_endpoint(
        settings.backend, settings.emulator_rules, say, text_chunk_delay_s=0.03, audio_pacing=1.0
    ) as (label, _emulator):
        options = ServeOptions(
            host=settings.host,
            port=settings.port,
            token=settings.token,
            certfile=settings.certfile,
            keyfile=settings.keyfile,
            log_level="debug" if settings.debug else settings.log_level,
            allowed_origins=settings.allowed_origins,
            model=settings.model,
            session_service=store.service,
            endpoint_label=label,
            max_sessions=settings.max_sessions,
            handles_dir=None if is_ephemeral(store) else default_handles_dir(),
            store_label=store.label,
            context_compression=settings.context_compression,
        )

        def ready(url: str) -> None:
            say(f"Serving {loaded.source} at {url} (conversations in {store.label})")
            say("Ctrl-C stops it after running turns finish.")

        await serve(loaded, options, on_ready=ready)
    return 0


def run_serve(settings: ServeSettings) -> int:
    configure_logging(settings.debug)
    try:
        # serve() handles SIGINT/SIGTERM itself with a graceful drain.
        return asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        return 0


def run_devices(debug: bool) -> int:
    """`adkvoice devices`: list inputs and outputs with default marks and usable rates."""
    configure_logging(debug)
    from adkvoice.audio.devices import list_devices
    from adkvoice.ui.chat_view import devices_table

    out = Console()
    out.print(devices_table(list_devices()))
    out.print(
        "Pick one with --input-device / --output-device: an index or part of a name.",
        style="dim",
    )
    return 0


async def _talk(settings: TalkSettings, console: Console) -> int:
    from adkvoice.audio.aec import EchoCanceller, try_canceller  # light: the engine loads lazily
    from adkvoice.audio.playback import Playback
    from adkvoice.conversation.voice import TalkSession, run_until_done
    from adkvoice.ui.keys import KeyReader
    from adkvoice.ui.talk_view import TalkState, TalkView

    view = TalkView(console, TalkState(push_to_talk=settings.push_to_talk))

    def say(message: str) -> None:
        view.handle(Notice(message=message))

    source: Any
    if settings.input_wav is not None:
        from adkvoice.audio.wav_source import WavSource

        source = WavSource(settings.input_wav)
    else:
        from adkvoice.audio.capture import Capture

        source = Capture(settings.input_device)
    # A file as the microphone hears no echo; otherwise load the canceller (a native
    # library, ~0.25 s) off the loop while the devices open.
    echo_loading: asyncio.Task[EchoCanceller | str] | None = None
    if settings.echo_cancellation and settings.input_wav is None:
        echo_loading = asyncio.create_task(asyncio.to_thread(try_canceller))
    playback = Playback(
        settings.output_device,
        tap=settings.record_dir is not None or echo_loading is not None,  # echo reference
    )
    recorder = None
    if settings.record_dir is not None:
        from adkvoice.audio.recorder import Recorder

        recorder = Recorder(settings.record_dir)
    keys: KeyReader | None = None
    view.start()
    try:
        # Devices first: a missing microphone should fail before the model is dialled.
        if settings.input_wav is None:
            await source.start()
        await playback.start()
        async with open_backend(
            settings.connect, say, manual_activity=settings.push_to_talk
        ) as backend:
            echo = await echo_loading if echo_loading is not None else None
            session = TalkSession(
                backend,
                view,
                playback,
                push_to_talk=settings.push_to_talk,
                half_duplex=echo_loading is not None,  # the fallback without a canceller
                recorder=recorder,
                canceller=echo if not isinstance(echo, str) else None,
            )
            if not settings.echo_cancellation:
                say("echo cancellation off: use headphones, or the agent may hear itself")
            elif isinstance(echo, str):
                say(
                    f"{echo}: the microphone is muted to the model while the agent speaks; "
                    "speak up to cut in"
                )
            elif echo is not None:
                say(f"echo cancellation on ({echo.name}): speak any time, even over the agent")
            loop = asyncio.get_running_loop()
            if KeyReader.available() and settings.input_wav is None:
                keys = KeyReader(
                    loop,
                    lambda item: loop.create_task(session.on_input(item)).add_done_callback(
                        _log_failure
                    ),
                )
                keys.start()
            say("speak now" if not settings.push_to_talk else "press space to talk")
            tasks = [
                asyncio.create_task(session.pump_mic(source), name="mic"),
                asyncio.create_task(session.pump_events(), name="events"),
                asyncio.create_task(session.watch_playback(), name="playback"),
            ]
            if settings.input_wav is not None:
                tasks.append(asyncio.create_task(_end_after_wav(session, source), name="wav"))
            await run_until_done(session, tasks)
    finally:
        if keys is not None:
            keys.stop()
        view.stop()
        with contextlib.suppress(Exception):
            await playback.aclose()
        if settings.input_wav is None:
            with contextlib.suppress(Exception):
                await source.aclose()
        if recorder is not None:
            recorder.close()
            console.print(f"Recorded {recorder.wav_path} and {recorder.events_path}", style="dim")
    return 0


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).warning("key handling failed: %s", task.exception())


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


def run_talk(settings: TalkSettings) -> int:
    configure_logging(settings.debug)
    console = Console()
    return _run_main(lambda: _talk(settings, console))


def run_echo_test(input_device: str | None, output_device: str | None, debug: bool) -> int:
    """`adkvoice talk --echo-test`: measure the speaker-to-mic delay and echo reduction."""
    configure_logging(debug)
    from adkvoice.audio.echo_test import run_echo_test as echo_test

    console = Console()
    return _run_main(lambda: echo_test(input_device, output_device, console))
