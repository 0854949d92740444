"""Keys for `adkvoice talk`, including through a real pseudo-terminal."""

import asyncio
import os
import pty

from adkvoice.ui.keys import Command, KeyReader, TypedLine, command_for


def test_key_map() -> None:
    assert command_for(" ") is Command.TALK
    assert command_for("m") is Command.MUTE
    assert command_for("q") is Command.QUIT
    assert command_for("\x04") is Command.QUIT
    assert command_for("t") is Command.TYPE
    assert command_for("x") is None


async def test_keys_and_a_typed_line_through_a_pty() -> None:
    controller, terminal = pty.openpty()
    received: list[Command | TypedLine] = []
    done = asyncio.Event()

    def on_input(item: Command | TypedLine) -> None:
        received.append(item)
        if item is Command.QUIT:
            done.set()

    reader = KeyReader(asyncio.get_running_loop(), on_input, fd=terminal)
    reader.start()
    try:
        os.write(controller, b"m ")
        await asyncio.sleep(0.3)
        os.write(controller, b"t")
        await asyncio.sleep(0.3)
        os.write(controller, b"hello there\n")
        await asyncio.sleep(0.3)
        os.write(controller, b"q")
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        reader.stop()
        os.close(controller)
        os.close(terminal)
    assert received == [Command.MUTE, Command.TALK, TypedLine("hello there"), Command.QUIT]
