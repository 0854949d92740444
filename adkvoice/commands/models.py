"""`adkvoice voices` and `adkvoice models`: the Live model catalogue, for choosing."""

from __future__ import annotations

from rich.console import Console

from adkvoice.app import configure_logging


def run_voices(model: str | None, debug: bool) -> int:
    configure_logging(debug)
    from adkvoice.ui.catalogue import voices_table

    out = Console()
    out.print(voices_table(model))
    out.print("Pick one with --voice NAME on chat, talk and serve.", style="dim")
    return 0


def run_models(debug: bool) -> int:
    configure_logging(debug)
    from adkvoice.ui.catalogue import models_table

    Console().print(models_table())
    return 0
