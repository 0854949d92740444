"""`adkvoice devices`: the audio inputs and outputs this machine has."""

from __future__ import annotations

from rich.console import Console

from adkvoice.app import configure_logging


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
