"""`--help` pages as Typer draws them with Rich, for less: the command classes here render
the same panels from Rich's basic parts only.

Typer's own renderer (`typer.rich_utils`) also imports Rich's Markdown, traceback and
syntax highlighting (Pygments) at its top, which cost more than the page itself; and an
absent `--help` flag of a group is coerced through a pydantic adapter, which imports
pydantic for every `adkvoice COMMAND --help`. Errors in flags are still Typer's (they are
rare, and their look stays Typer's). `tests/unit/test_cli_help.py` checks that each page
is exactly Typer's.
"""

from __future__ import annotations

import inspect
import os
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from typer import Exit
from typer.core import HAS_RICH, TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:
    from rich.columns import Columns
    from rich.console import Console, RenderableType
    from rich.highlighter import RegexHighlighter
    from rich.table import Table
    from rich.text import Text
    from typer import _click

# Typer's look (typer.rich_utils): the same styles, strings and layout.
STYLE_OPTION_HELP = ""
STYLE_OPTION_DEFAULT = "dim"
STYLE_OPTION_ENVVAR = "dim yellow"
STYLE_REQUIRED_SHORT = "red"
STYLE_REQUIRED_LONG = "dim red"
STYLE_TYPES = "bold yellow"
STYLE_USAGE_COMMAND = "bold"
STYLE_HELPTEXT = "dim"
STYLE_DEPRECATED = "red"
STYLE_DEPRECATED_COMMAND = "dim"
STYLE_PANEL_BORDER = "dim"
STYLE_COMMANDS_FIRST_COLUMN = "bold cyan"
THEME = {
    "option": "bold cyan",
    "switch": "bold green",
    "negative_option": "bold magenta",
    "negative_switch": "bold red",
    "types": "bold yellow",
    "types_sep": "dim",
    "usage": "yellow",
}
DEPRECATED_STRING = "(deprecated) "
ARGUMENTS_PANEL_TITLE = "Arguments"
OPTIONS_PANEL_TITLE = "Options"
COMMANDS_PANEL_TITLE = "Commands"
_PANEL = "rich_help_panel"


class _Highlighters:
    """Typer's three regex highlighters, built on first use (with Rich's import)."""

    def __init__(self) -> None:
        from rich.highlighter import RegexHighlighter

        class Option(RegexHighlighter):
            highlights = [  # noqa: RUF012 (Rich's own class attribute)
                r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])",
                r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
                r"(?P<types>\<[^\>]+\>)",
                r"(?P<usage>Usage: )",
            ]

        class Negative(RegexHighlighter):
            highlights = [  # noqa: RUF012
                r"(^|\W)(?P<negative_switch>\-\w+)(?![a-zA-Z0-9])",
                r"(^|\W)(?P<negative_option>\-\-[\w\-]+)(?![a-zA-Z0-9])",
            ]

        class Types(RegexHighlighter):
            highlights = [  # noqa: RUF012
                r"^(?P<types_sep>(\[|<))",
                r"(?P<types_sep>\|)",
                r"(?P<types_sep>(\]|>))(\.\.\.)?$",
            ]

        self.option: RegexHighlighter = Option()
        self.negative: RegexHighlighter = Negative()
        self.types: RegexHighlighter = Types()


def _console(highlight: _Highlighters) -> Console:
    from rich.console import Console
    from rich.theme import Theme

    width = os.getenv("TERMINAL_WIDTH")
    force_terminal = (
        True
        if os.getenv("GITHUB_ACTIONS") or os.getenv("FORCE_COLOR") or os.getenv("PY_COLORS")
        else None
    )
    if os.getenv("_TYPER_FORCE_DISABLE_TERMINAL"):
        force_terminal = False
    return Console(
        theme=Theme(THEME),
        highlighter=highlight.option,
        color_system="auto",
        force_terminal=force_terminal,
        width=int(width) if width else None,
    )


def _rich_text(text: str, style: str, highlight: _Highlighters) -> Text:
    from rich.text import Text

    text = inspect.cleandoc(text)
    if "\033[" in text:
        return highlight.option(Text.from_ansi(text, style=style))
    return highlight.option(Text.from_markup(text, style=style))


def _help_text(obj: _click.Command, highlight: _Highlighters) -> Iterable[Text]:
    from rich.text import Text

    if obj.deprecated:
        yield Text(DEPRECATED_STRING, style=STYLE_DEPRECATED)
    help_text = inspect.cleandoc(obj.help or "").partition("\f")[0]
    first_line, *remaining = help_text.split("\n\n")
    if not first_line.startswith("\b"):
        first_line = first_line.replace("\n", " ")
    yield _rich_text(first_line.strip(), "", highlight)
    if remaining:
        yield Text("")
        yield _rich_text("\n\n".join(remaining), STYLE_HELPTEXT, highlight)


def _parameter_help(
    param: _click.Parameter, ctx: _click.Context, highlight: _Highlighters
) -> Columns:
    from rich.columns import Columns
    from rich.text import Text

    items: list[Text] = []
    envvar = getattr(param, "envvar", None)
    if (
        envvar is None
        and getattr(param, "allow_from_autoenv", None)
        and getattr(ctx, "auto_envvar_prefix", None) is not None
        and param.name
    ):
        envvar = f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    var_str = ""
    if envvar is not None:
        var_str = envvar if isinstance(envvar, str) else ", ".join(str(d) for d in envvar)
    help_value: str | None = getattr(param, "help", None)
    if help_value:
        paragraphs = [
            x.replace("\n", " ").strip()
            if not x.startswith("\b")
            else f"{x.strip(chr(8) + chr(10))}\n"
            for x in help_value.split("\n\n")
        ]
        items.append(_rich_text("\n".join(paragraphs).strip(), STYLE_OPTION_HELP, highlight))
    if envvar and getattr(param, "show_envvar", None):
        items.append(Text(f"[env var: {var_str}]", style=STYLE_OPTION_ENVVAR))
    if isinstance(param, TyperOption | TyperArgument):
        default_value = param._extract_default_help_str(ctx=ctx)
        show_default_is_str = isinstance(param.show_default, str)
        if show_default_is_str or (
            default_value is not None and (param.show_default or ctx.show_default)
        ):
            default_str = param._get_default_string(
                ctx=ctx, show_default_is_str=show_default_is_str, default_value=default_value
            )
            if default_str:
                items.append(Text(f"[default: {default_str}]", style=STYLE_OPTION_DEFAULT))
    if param.required:
        items.append(Text("[required]", style=STYLE_REQUIRED_LONG))
    return Columns(items)


def _options_panel(
    name: str,
    params: list[TyperArgument] | list[TyperOption],
    ctx: _click.Context,
    console: Console,
    highlight: _Highlighters,
) -> None:
    from rich.panel import Panel
    from rich.text import Text

    rows: list[list[RenderableType]] = []
    required_marks: list[str | Text] = []
    for param in params:
        long_strs: list[str] = []
        short_strs: list[str] = []
        secondary_long: list[str] = []
        secondary_short: list[str] = []
        display_name: str | None = None
        if isinstance(param, TyperArgument):
            display_name = param.display_name_raw
            if param.metavar is None and param.nargs != 1:
                display_name += "..."
        for opt in param.opts:
            if "--" in opt:
                long_strs.append(opt)
            else:
                short_strs.append(display_name or opt)
        for opt in param.secondary_opts:
            if "--" in opt:
                secondary_long.append(opt)
            else:
                secondary_short.append(display_name or opt)
        types = Text(style=STYLE_TYPES, overflow="fold")
        display_type = param.display_type_rich(ctx=ctx)
        if display_type is not None:
            types.append(display_type)
        range_str = param._get_number_range_help_str()
        if range_str:
            types.append(f" [{range_str}]")
        required_marks.append(Text("*", style=STYLE_REQUIRED_SHORT) if param.required else "")
        rows.append(
            [
                highlight.option(",".join(long_strs)),
                highlight.option(",".join(short_strs)),
                highlight.negative(",".join(secondary_long)),
                highlight.negative(",".join(secondary_short)),
                highlight.types(types),
                _parameter_help(param, ctx, highlight),
            ]
        )
    if not rows:
        return
    if any(required_marks):
        rows = [[mark, *row] for mark, row in zip(required_marks, rows, strict=True)]
    table = _panel_table(highlight=True)
    for row in rows:
        table.add_row(*row)
    console.print(Panel(table, border_style=STYLE_PANEL_BORDER, title=name, title_align="left"))


def _panel_table(*, highlight: bool) -> Table:
    """The borderless two-or-three column table inside each help panel."""
    from rich.table import Table

    return Table(
        highlight=highlight,
        show_header=False,
        expand=True,
        box=None,
        show_lines=False,
        leading=0,
        border_style=None,
        row_styles=None,
        pad_edge=False,
        padding=(0, 1),
    )


def _commands_panel(
    name: str,
    commands: list[_click.Command],
    console: Console,
    cmd_len: int,
    highlight: _Highlighters,
) -> None:
    from rich.panel import Panel
    from rich.text import Text

    table = _panel_table(highlight=False)
    table.add_column(style=STYLE_COMMANDS_FIRST_COLUMN, no_wrap=True, width=cmd_len)
    table.add_column("Description", justify="left", no_wrap=False, ratio=10)
    rows: list[list[RenderableType | None]] = []
    deprecated: list[RenderableType | None] = []
    for command in commands:
        help_text = command.short_help or command.help or ""
        if command.deprecated:
            label = Text(command.name or "", style=STYLE_DEPRECATED_COMMAND)
            deprecated.append(Text(DEPRECATED_STRING, style=STYLE_DEPRECATED))
        else:
            label = Text(command.name or "")
            deprecated.append(None)
        first = inspect.cleandoc(help_text).split("\n\n")[0]
        if first.startswith("\b"):
            first = first.replace("\b\n", "")
        rows.append([label, _rich_text(first.strip(), STYLE_OPTION_HELP, highlight)])
    if any(deprecated):
        rows = [[*row, mark] for row, mark in zip(rows, deprecated, strict=True)]
    for row in rows:
        table.add_row(*row)
    if table.row_count:
        console.print(Panel(table, border_style=STYLE_PANEL_BORDER, title=name, title_align="left"))


def format_help(obj: TyperCommand | TyperGroup, ctx: _click.Context) -> None:
    """Print `obj`'s help page as `typer.rich_utils.rich_format_help` does (rich markup)."""
    from rich.align import Align
    from rich.console import group
    from rich.padding import Padding

    highlight = _Highlighters()
    console = _console(highlight)
    console.print(Padding(highlight.option(obj.get_usage(ctx)), 1), style=STYLE_USAGE_COMMAND)
    if obj.help:
        console.print(Padding(Align(group()(_help_text)(obj, highlight), pad=False), (0, 1, 1, 1)))
    arguments: defaultdict[str, list[TyperArgument]] = defaultdict(list)
    options: defaultdict[str, list[TyperOption]] = defaultdict(list)
    for param in obj.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, TyperArgument):
            arguments[getattr(param, _PANEL, None) or ARGUMENTS_PANEL_TITLE].append(param)
        elif isinstance(param, TyperOption):
            options[getattr(param, _PANEL, None) or OPTIONS_PANEL_TITLE].append(param)
    panels: list[tuple[str, list[Any]]] = [
        (ARGUMENTS_PANEL_TITLE, arguments.get(ARGUMENTS_PANEL_TITLE, [])),
        *((name, params) for name, params in arguments.items() if name != ARGUMENTS_PANEL_TITLE),
        (OPTIONS_PANEL_TITLE, options.get(OPTIONS_PANEL_TITLE, [])),
        *((name, params) for name, params in options.items() if name != OPTIONS_PANEL_TITLE),
    ]
    for name, params in panels:
        _options_panel(name, params, ctx, console, highlight)
    if isinstance(obj, TyperGroup):
        commands: defaultdict[str, list[_click.Command]] = defaultdict(list)
        for command_name in obj.list_commands(ctx):
            command = obj.get_command(ctx, command_name)
            if command and not command.hidden:
                commands[getattr(command, _PANEL, None) or COMMANDS_PANEL_TITLE].append(command)
        cmd_len = max((len(c.name or "") for cs in commands.values() for c in cs), default=0)
        _commands_panel(
            COMMANDS_PANEL_TITLE,
            commands.get(COMMANDS_PANEL_TITLE, []),
            console,
            cmd_len,
            highlight,
        )
        for name, listed in commands.items():
            if name != COMMANDS_PANEL_TITLE:
                _commands_panel(name, listed, console, cmd_len, highlight)
    if obj.epilog:
        epilogue = _rich_text("\n\n".join(obj.epilog.split("\n\n")), "", highlight)
        console.print(Padding(Align(epilogue, pad=False), 1))


def _without_adapter(option: _click.Parameter | None) -> None:
    # An absent --help flag is None, which Typer coerces through pydantic; False is not.
    if option is not None and option.default is None:
        option.default = False


class HelpCommand(TyperCommand):
    """A Typer command whose `--help` is drawn by `format_help`."""

    def get_help_option(self, ctx: _click.Context) -> Any:
        option = super().get_help_option(ctx)
        _without_adapter(option)
        return option

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        if not HAS_RICH or self.rich_markup_mode != "rich":
            return super().format_help(ctx, formatter)
        format_help(self, ctx)


class HelpGroup(TyperGroup):
    """A Typer group whose `--help` is drawn by `format_help`."""

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            # As Typer does (the page, exit code 2), without reporting it as an error:
            # that would import Typer's renderer only to print nothing more.
            ctx.get_help()
            raise Exit(2)
        return super().parse_args(ctx, args)

    def get_help_option(self, ctx: _click.Context) -> Any:
        option = super().get_help_option(ctx)
        _without_adapter(option)
        return option

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        if not HAS_RICH or self.rich_markup_mode != "rich":
            return super().format_help(ctx, formatter)
        format_help(self, ctx)
