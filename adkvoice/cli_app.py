"""The `adkvoice` Typer application, its `--version`, and how a command's action is run:
any error a user can cause ends in one clear line and its exit code.

No asyncio and no ADK imports, so `adkvoice --help` and `--version` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from adkvoice import __version__
from adkvoice.cli_help import HelpCommand, HelpGroup
from adkvoice.cli_options import fail, print_traceback
from adkvoice.errors import AdkVoiceError

if TYPE_CHECKING:
    from adkvoice.backends.emulator_process import EmulatorProcess
    from adkvoice.config import ConnectSettings

EXIT_INTERNAL = 70

app = typer.Typer(
    name="adkvoice",
    help=(
        "Talk to Google ADK live agents from the terminal.\n\n"
        "Without Google credentials every command uses the built-in Live API emulator, "
        "so you can try it offline. Set GOOGLE_API_KEY (or the Vertex AI variables) to "
        "talk to Gemini."
    ),
    cls=HelpGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def command(name: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """`@app.command()`, with its help page drawn by `cli_help`."""
    return app.command(name, cls=HelpCommand)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adkvoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    pass


def run_action(action: Callable[[], int], debug: bool) -> None:
    """Run an app entry point; any error a user can cause ends in one clear line."""
    try:
        code = action()
    except AdkVoiceError as exc:
        if debug:
            print_traceback()
        fail(str(exc), exc.exit_code)
    except Exception as exc:
        if debug:
            print_traceback()
        fail(
            f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the "
            "traceback and report it)",
            EXIT_INTERNAL,
        )
    else:
        raise typer.Exit(code)


def with_early_emulator(
    connect: ConnectSettings,
    run: Callable[[EmulatorProcess | None], int],
    *,
    text_chunk_delay_s: float,
    debug: bool,
) -> int:
    """`run(emulator)` for chat and talk: the emulator they will likely need starts in a
    child process before `run` imports ADK, so both get ready at once, and the collector
    waits until the command is up (the command calls `release_collector`)."""
    from adkvoice.app import hold_collector
    from adkvoice.backends.factory import start_emulator_early

    hold_collector()
    emulator = start_emulator_early(connect, text_chunk_delay_s=text_chunk_delay_s, debug=debug)
    try:
        return run(emulator)
    finally:
        if emulator is not None:
            emulator.close()
