"""Help pages: drawn by `adkvoice.cli_help` exactly as Typer's own renderer draws them,
and without importing what only running a command needs."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
import typer.main
import typer.rich_utils
from typer import _click
from typer.core import TyperGroup

from adkvoice.cli import app
from adkvoice.cli_help import format_help


def _pages() -> list[list[str]]:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    pages: list[list[str]] = [[]]
    ctx = _click.Context(root, info_name="adkvoice")
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        pages.append([name])
        if isinstance(command, TyperGroup):
            sub_ctx = _click.Context(command, info_name=name, parent=ctx)
            pages.extend([name, sub] for sub in command.list_commands(sub_ctx))
    return pages


def _context(path: list[str]) -> _click.Context:
    command = typer.main.get_command(app)
    ctx = _click.Context(command, info_name="adkvoice")
    for name in path:
        assert isinstance(command, TyperGroup)
        found = command.get_command(ctx, name)
        assert found is not None
        command = found
        ctx = _click.Context(command, info_name=name, parent=ctx)
    return ctx


def _render(draw: object, path: list[str], monkeypatch: pytest.MonkeyPatch, color: bool) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    if color:
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
        monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    ctx = _context(path)
    if draw is format_help:
        format_help(ctx.command, ctx)  # type: ignore[arg-type]
    else:
        typer.rich_utils.rich_format_help(obj=ctx.command, ctx=ctx, markup_mode="rich")
    return out.getvalue()


def test_every_page_is_listed() -> None:
    pages = _pages()
    assert ["chat"] in pages
    assert ["sessions", "show"] in pages
    assert len(pages) >= 12


@pytest.mark.parametrize("color", [False, True], ids=["plain", "color"])
def test_pages_are_typers_own(monkeypatch: pytest.MonkeyPatch, color: bool) -> None:
    for path in _pages():
        ours = _render(format_help, path, monkeypatch, color)
        typers = _render(typer.rich_utils.rich_format_help, path, monkeypatch, color)
        assert ours == typers, " ".join(path) or "adkvoice"
        assert "Usage:" in ours


def test_help_pages_import_neither_the_agent_stack_nor_typers_extras() -> None:
    """What `adkvoice … --help` needs is Typer and Rich's basic parts: no ADK, genai,
    numpy, audio, web server, pydantic, nor Rich's Markdown or tracebacks."""
    code = (
        "import sys\n"
        "from adkvoice.cli import app\n"
        f"for argv in {[[*path, '--help'] for path in _pages()]!r} + [[]]:\n"
        "    try:\n"
        "        app(argv, prog_name='adkvoice')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('google', 'numpy', 'sounddevice', 'fastapi', 'starlette', 'pydantic',\n"
        "         'websockets', 'rich.markdown', 'rich.traceback', 'rich.syntax',\n"
        "         'typer.rich_utils', 'asyncio')\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-2000:]
