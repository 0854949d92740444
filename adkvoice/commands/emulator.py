"""`adkvoice emulator`: the offline Live API emulator, for any ADK app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from adkvoice.app import EXIT_INTERRUPTED, configure_logging, run_main
from adkvoice.config import EmulatorSettings
from adkvoice.errors import AdkVoiceError

if TYPE_CHECKING:
    from rich.console import Console


async def serve_emulator(settings: EmulatorSettings, out: Console) -> int:
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
    from rich.console import Console

    configure_logging(settings.debug)
    code = run_main(lambda: serve_emulator(settings, Console()))
    return 0 if code == EXIT_INTERRUPTED else code


def run_child(options: dict[str, Any]) -> None:
    """The emulator for another adkvoice process (`backends.emulator_process`): one JSON
    line on stdout once it listens, or on why it cannot; it stops when stdin closes (the
    parent stopped it, or ended) or on SIGTERM."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(bool(options["debug"]))
    asyncio.run(_serve_child(options))
    logging.shutdown()
    os._exit(0)  # stopped and cleaned up: nothing left that needs an interpreter teardown


async def _serve_child(options: dict[str, Any]) -> None:
    from adkvoice.emulator import Emulator, EmulatorOptions, load_rules

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    def wait_for_end_of_input() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=wait_for_end_of_input, daemon=True).start()
    try:
        rules = load_rules(options["rules"]) if options["rules"] else None
        emulator = Emulator(
            EmulatorOptions(
                rules=rules,
                text_chunk_delay_s=float(options["text_chunk_delay_s"]),
                audio_pacing=float(options["audio_pacing"]),
            )
        )
        await emulator.start()
    except AdkVoiceError as exc:
        _tell_parent({"error": type(exc).__name__, "message": str(exc)})
        return
    except Exception:
        # Silence: the parent starts the emulator in its own process, which fails the same
        # way and reports it as it always has.
        logging.getLogger(__name__).debug("emulator child failed to start", exc_info=True)
        return
    try:
        _tell_parent({"env": emulator.client_env()})
        await done.wait()
    finally:
        await emulator.stop()


def _tell_parent(reply: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
