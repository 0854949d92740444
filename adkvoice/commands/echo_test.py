"""`adkvoice talk --echo-test`: how much of the speaker the microphone hears, and when."""

from __future__ import annotations

from rich.console import Console

from adkvoice.app import configure_logging, run_main


def run_echo_test(input_device: str | None, output_device: str | None, debug: bool) -> int:
    """`adkvoice talk --echo-test`: measure the speaker-to-mic delay and echo reduction."""
    configure_logging(debug)
    from adkvoice.audio.echo_test import run_echo_test as echo_test

    console = Console()
    return run_main(lambda: echo_test(input_device, output_device, console))
