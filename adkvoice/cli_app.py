"""The `adkvoice` Typer application, its `--version`, and how a command's action is run:
any error a user can cause ends in one clear line and its exit code.

No asyncio and no ADK imports, so `adkvoice --help` and `--version` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from adkvoice import __version__
from adkvoice.cli_help import HelpCommand, HelpGroup
from adkvoice.cli_options import fail, print_traceback
from adkvoice.errors import AdkVoiceError

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
