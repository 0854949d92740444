"""`adkvoice emulator`: the offline Live API emulator, for any ADK app."""

from __future__ import annotations

import asyncio

from rich.console import Console

from adkvoice.app import EXIT_INTERRUPTED, configure_logging, run_main
from adkvoice.config import EmulatorSettings


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
    configure_logging(settings.debug)
    code = run_main(lambda: serve_emulator(settings, Console()))
    return 0 if code == EXIT_INTERRUPTED else code
