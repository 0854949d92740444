"""`adkvoice chat`: typed turns, replies as text or speech, in a terminal or through pipes."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from rich.console import Console

from adkvoice.app import configure_logging, release_collector, run_main
from adkvoice.backends.base import require_images
from adkvoice.backends.factory import open_backend
from adkvoice.config import ChatSettings
from adkvoice.conversation.core import Conversation, SpeakerSink
from adkvoice.conversation.images import Showing, image_file_frame
from adkvoice.errors import ConnectionLostError
from adkvoice.events import Notice
from adkvoice.tasks import Supervisor
from adkvoice.ui.chat_view import JsonLinesView, PlainChatView, RichChatView, View
from adkvoice.ui.line_input import LineReader

if TYPE_CHECKING:
    from adkvoice.audio.playback import Playback
    from adkvoice.backends.base import Backend
    from adkvoice.backends.emulator_process import EmulatorProcess
    from adkvoice.vision.codec import EncodedFrame

_PROMPT_PLAIN = "you › "
# \001 and \002 tell readline that the colour codes take no room on screen.
_PROMPT_COLOR = "\001\x1b[1;36m\002you ›\001\x1b[0m\002 "


def _prompt_on_stderr(_prompt: str) -> str:
    sys.stderr.write(_PROMPT_PLAIN)
    sys.stderr.flush()
    return input()


def make_view(settings: ChatSettings, out: Console) -> View:
    if settings.output == "json":
        return JsonLinesView(sys.stdout)
    if settings.output == "plain":
        return PlainChatView(sys.stdout, sys.stderr)
    return RichChatView(out, spoken_replies=not settings.connect.text_replies)


def _line_reader(settings: ChatSettings, out: Console) -> LineReader:
    loop = asyncio.get_running_loop()
    interactive = sys.stdin.isatty()
    if settings.output == "rich":
        prompt = _PROMPT_COLOR if not out.no_color else _PROMPT_PLAIN
        return LineReader(loop, sys.stdin, interactive=interactive, prompt=prompt)
    # stdout carries only replies or JSON: a prompt for a person at a terminal goes to stderr.
    return LineReader(loop, sys.stdin, interactive=interactive, read_prompted=_prompt_on_stderr)


async def open_player(conversation: Conversation) -> Playback | None:
    """The speaker for spoken replies, or None (with a notice) when there is none."""
    from adkvoice.audio.playback import Playback
    from adkvoice.errors import AudioDeviceError

    player = Playback()
    try:
        await player.start()
    except AudioDeviceError as exc:
        conversation.publish(Notice(message=f"spoken replies are shown as text only: {exc}"))
        return None
    return player


async def _turns(
    settings: ChatSettings,
    reader: LineReader,
    conversation: Conversation,
    backend: Backend,
    player: Playback | None,
    showing: Showing,
) -> None:
    """Each line read is one turn; the next is read once its answer is complete (and,
    spoken, played to its end). `/image PATH` and `/screen` are not turns: their picture
    goes with the next one."""
    while (line := await reader.next_line()) is not None:
        text = line.strip()
        if text and not await showing.handle_line(text):
            await showing.send_pending()
            await conversation.ask(backend, text, settings.timeout_s)
            if player is not None:
                await player.drain(timeout_s=120)


async def _events(conversation: Conversation, backend: Backend) -> None:
    await conversation.run(backend)
    # The stream ended without an error while input was still being read.
    raise ConnectionLostError("the live session ended")


async def chat(settings: ChatSettings, out: Console, emulator: EmulatorProcess | None) -> int:
    # `--image`: read and encoded before anything connects, so a bad file is one line.
    first_image: EncodedFrame | None = None
    if settings.vision.image is not None:
        first_image = await image_file_frame(settings.vision.image)
    view = make_view(settings, out)
    conversation = Conversation([view])
    reader = _line_reader(settings, out)
    player = None
    if not settings.connect.text_replies and settings.output != "json":
        player = await open_player(conversation)
        if player is not None:
            conversation.add_sink(SpeakerSink(player))
    try:
        async with open_backend(
            settings.connect,
            conversation.publish,
            text_chunk_delay_s=settings.text_chunk_delay_s,
            emulator=emulator,
        ) as backend:
            release_collector()  # held by the command line while chat started
            showing = Showing(backend, conversation.publish)
            if first_image is not None and settings.vision.image is not None:
                require_images(backend)
                showing.hold(first_image, f"image {settings.vision.image.name}")
            if settings.output == "rich":
                conversation.publish(Notice(message="type a message; Ctrl-D to quit", level="info"))
            supervisor = Supervisor()
            turns = supervisor.spawn(
                _turns(settings, reader, conversation, backend, player, showing), name="turns"
            )
            events = supervisor.spawn(_events(conversation, backend), name="events")
            reader.start()
            await supervisor.run_until_first_done([turns, events])
            if reader.interactive:  # Ctrl-D left the cursor after the prompt
                (out.file if settings.output == "rich" else sys.stderr).write("\n")
    finally:
        view.close()
        if player is not None:
            await player.aclose()
    return 0


def run_chat(settings: ChatSettings, emulator: EmulatorProcess | None = None) -> int:
    """`emulator`: started early by the caller (`start_emulator_early`), or None."""
    configure_logging(settings.debug)
    out = Console()
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())
    return run_main(lambda: chat(settings, out, emulator))
