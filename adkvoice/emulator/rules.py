"""Reply rules: which canned answer, tool call or fault a user's words trigger.

A rules file is TOML::

    fallback = "You said: {text}"        # optional; used when no rule matches

    [[rule]]
    match = "\\b(hello|hi)\\b"            # regex, case-insensitive, searched in the user's words
    say = "Hello there!"                 # reply template

    [[rule]]
    match = "what time"
    call = "get_current_time"            # ask the agent to run this declared function tool
    args = { timezone = "UTC" }          # optional; string values are templates too
    say = "It is {result}."              # spoken once the tool result comes back

    [[rule]]
    match = "search (my )?files for (?P<query>.+?)\\W*$"
    call = "search_files"
    args = { query = "{match.query}" }   # a named group of `match`
    while = "Let me look."               # said while a background (NON_BLOCKING) call runs
    say = ["I looked.", "{result.summary}."]  # two model turns

    [[rule]]
    match = "\\b(balance|billing)\\b"
    transfer = "billing"                 # hand over: call ADK's transfer_to_agent
    say = "Let me put you through."      # optional: said before the handoff

    [[rule]]
    match = "^emulator fault close"
    fault = "close-1011"                 # see FAULT_NAMES; `seconds` for delay / slow / go-away
    say = "Closing the connection now."  # reply streamed before (or around) the fault

    [[rule]]
    match = "^emulator fault recycle"
    fault = "go-away"
    send_handle = true                   # a fresh resumption handle right before goAway
    say = "Recycling this connection."

First match wins. A `transfer` rule applies only on a connection that declares ADK's
`transfer_to_agent` and is not already the agent named (ADK's system instruction says
"Your internal name is ..."); elsewhere the next matching rule answers, so after the
handoff the agent named answers the same words with its own rules and tools. With
`fault = "silent"` a transfer's target never answers (the silent handoff); without a
transfer, the reply itself is never sent.

Templates may use {text} (what the user said), {previous} (what they said the turn
before), {first} (the earliest of their words still in the model's context window),
{turn} (1-based user turn number), {agent} (the ADK agent this connection plays),
{model}, {voice} and {language} (what the setup asked for, or the model's default),
{thinking} (the thinking setting, or "none"),
{match.NAME} (a named group of the rule's `match`), and after a call {result} (the tool
response rendered readably) or {result.field}. {vision} says what the connection was
shown ("I see 2 frame(s), 768×576, mostly red (#fe0000), unchanged."); its parts are
{vision.frames}, {vision.size} (768×576), {vision.colour} (a name), {vision.hex} and
{vision.changed} (yes/no), empty while nothing was seen. Alternatives such as
{result.time|result} use the first one present. Write {{ and }} for literal braces.

`say` may be a list: each item is one model turn. Models that report interactionStatus
(Gemini 3.8) send them as separate turns, IN_PROGRESS until the last (IDLE); other
models say them as one turn. `while` is what the model says while a call it does not
wait for (NON_BLOCKING: the 3.8 default) runs; without it the model waits quietly.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from adkvoice.errors import ConfigError

from .vision import VISION_FIELDS

FaultName = Literal["close-1011", "drop", "delay", "slow", "malformed", "go-away", "silent"]
TRANSFER_FUNCTION = "transfer_to_agent"  # ADK's handoff tool
FAULT_NAMES: tuple[str, ...] = get_args(FaultName)
DEFAULT_FALLBACK = "You said: {text}"
TEMPLATE_ROOTS = (
    "text",
    "agent",
    "previous",
    "first",
    "turn",
    "model",
    "voice",
    "language",
    "thinking",
    "match",
    "result",
    "vision",
)
TIMED_FAULTS = ("delay", "slow", "go-away")  # the faults that take `seconds`
_RULE_KEYS = {
    "match",
    "say",
    "call",
    "args",
    "while",
    "fault",
    "seconds",
    "send_handle",
    "transfer",
}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*"
# {name}, {result.a.b}, or alternatives {result.time|result}: the first one present wins.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(" + _NAME + r"(?:\|" + _NAME + r")*)\}|[{}]")


@dataclass(frozen=True)
class Rule:
    match: re.Pattern[str]
    say: str | None = None  # the reply, or its first model turn
    call: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    fault: FaultName | None = None
    seconds: float | None = None
    send_handle: bool = False  # go-away only: send a fresh resumption handle first
    more: tuple[str, ...] = ()  # further model turns of the reply (`say` as a list)
    filler: str | None = None  # `while`: said while a background call runs
    transfer: str | None = None  # hand the conversation to this agent (transfer_to_agent)

    @property
    def segments(self) -> tuple[str, ...]:
        """The reply's model turns, in order (empty when the rule says nothing)."""
        return (self.say, *self.more) if self.say is not None else self.more


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...] = ()
    fallback: str = DEFAULT_FALLBACK

    def match(self, text: str, applies: Callable[[Rule], bool] | None = None) -> Rule:
        """The first rule whose pattern occurs in `text` (and that `applies` on this
        connection: see `transfer`), else the echo fallback."""
        for rule in self.rules:
            if rule.match.search(text) and (applies is None or applies(rule)):
                return rule
        return Rule(match=re.compile(""), say=self.fallback)


def match_groups(rule: Rule, text: str) -> dict[str, str]:
    """The named groups `rule.match` found in `text`, for {match.NAME}."""
    found = rule.match.search(text)
    if found is None:
        return {}
    return {name: value.strip() for name, value in found.groupdict().items() if value}


@dataclass(frozen=True)
class TemplateContext:
    text: str = ""
    previous: str = ""
    first: str = ""
    turn: int = 1
    model: str = ""
    voice: str = ""
    language: str = ""
    thinking: str = ""
    agent: str = ""  # the ADK agent the connection plays (its system instruction says)
    groups: Mapping[str, str] = field(default_factory=dict)  # named groups of the match
    result: Any = None
    has_result: bool = False
    vision: Mapping[str, str] = field(default_factory=dict)  # vision.Sight.facts()


def render_value(value: Any) -> str:
    """Render a tool result for speech: plain words, no JSON punctuation."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, Mapping):
        if len(value) == 1:  # ADK wraps plain return values as {"result": value}
            return render_value(next(iter(value.values())))
        return ", ".join(f"{key}: {render_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(render_value(item) for item in value)
    return str(value)


def _lookup(result: Any, path: list[str]) -> Any:
    current = result
    for name in path:
        if isinstance(current, Mapping) and name in current:
            current = current[name]
        elif isinstance(current, Mapping) and isinstance(current.get("result"), Mapping):
            current = current["result"].get(name)
        else:
            return None
    return current


def render(template: str, ctx: TemplateContext) -> str:
    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        names = match.group(1)
        if names is None:
            return token  # a lone brace: validated away at load time, keep it verbatim
        alternatives = names.split("|")
        for index, name in enumerate(alternatives):
            root, *path = name.split(".")
            last = index == len(alternatives) - 1
            if root == "result":
                if not ctx.has_result:
                    return "(no result)"
                value = _lookup(ctx.result, path) if path else ctx.result
                if value is None and not last:
                    continue  # this field is absent: try the next alternative
                return render_value(value)
            if root == "match":
                group = ctx.groups.get(path[0]) if len(path) == 1 else None
                if not group and not last:
                    continue
                return group or ""
            if root == "vision":
                seen = ctx.vision.get(path[0] if path else "summary", "")
                if not seen and not last:
                    continue
                return seen
            if path:
                return token
            values = {
                "text": ctx.text,
                "previous": ctx.previous,
                "first": ctx.first,
                "turn": str(ctx.turn),
                "model": ctx.model,
                "voice": ctx.voice,
                "language": ctx.language,
                "thinking": ctx.thinking,
                "agent": ctx.agent or "the agent",
            }
            return values.get(root, token)
        return token

    return _PLACEHOLDER.sub(substitute, template)


def check_template(
    template: str, *, allow_result: bool, where: str, groups: Mapping[str, int] | None = None
) -> None:
    """Raise `ConfigError` for a placeholder that could never be filled. `groups`: the
    named groups of the rule's `match` (None: no pattern, so no {match.…})."""
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        names = match.group(1)
        if names is None:
            raise ConfigError(f"{where}: stray {token!r}; write {token * 2} for a literal brace")
        for name in names.split("|"):
            root, *path = name.split(".")
            if root not in TEMPLATE_ROOTS or (path and root not in ("result", "match", "vision")):
                raise ConfigError(
                    f"{where}: unknown placeholder {{{name}}}; use one of "
                    + ", ".join(f"{{{r}}}" for r in TEMPLATE_ROOTS if r != "match")
                    + " or {match.NAME}"
                )
            if root == "vision" and path and (len(path) != 1 or path[0] not in VISION_FIELDS):
                raise ConfigError(
                    f"{where}: unknown placeholder {{{name}}}; use {{vision}} or "
                    + ", ".join(f"{{vision.{f}}}" for f in VISION_FIELDS)
                )
            if root == "match" and (len(path) != 1 or path[0] not in (groups or {})):
                known = ", ".join(f"{{match.{g}}}" for g in groups or {}) or "none"
                raise ConfigError(
                    f"{where}: {{{name}}} needs a named group (?P<NAME>…) in 'match'; "
                    f"this rule has {known}"
                )
            if root == "result" and not allow_result:
                raise ConfigError(
                    f"{where}: {{result}} is only available in rules that `call` a tool"
                )


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_RULE_KEYS))}"
        )
    pattern = raw.get("match")
    if not isinstance(pattern, str):
        raise ConfigError(f"{where}: 'match' (a regular expression) is required")
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ConfigError(f"{where}: 'match' is not a valid regular expression: {exc}") from None
    say, call, fault, seconds = (
        raw.get("say"),
        raw.get("call"),
        raw.get("fault"),
        raw.get("seconds"),
    )
    args = raw.get("args", {})
    more: tuple[str, ...] = ()
    if isinstance(say, list):
        if not say or not all(isinstance(item, str) for item in say):
            raise ConfigError(f"{where}: 'say' must be a string or a list of strings")
        say, *rest = say
        more = tuple(rest)
    if say is not None and not isinstance(say, str):
        raise ConfigError(f"{where}: 'say' must be a string or a list of strings")
    filler = raw.get("while")
    if filler is not None and not isinstance(filler, str):
        raise ConfigError(f"{where}: 'while' must be a string")
    if filler is not None and call is None:
        raise ConfigError(f"{where}: 'while' is said while a tool runs: it needs 'call'")
    if call is not None and (not isinstance(call, str) or not call):
        raise ConfigError(f"{where}: 'call' must be a function name")
    if not isinstance(args, Mapping):
        raise ConfigError(f"{where}: 'args' must be a table, e.g. args = {{ city = \"Paris\" }}")
    if args and call is None:
        raise ConfigError(f"{where}: 'args' needs 'call'")
    if fault is not None and fault not in FAULT_NAMES:
        raise ConfigError(f"{where}: unknown fault {fault!r}; use one of {', '.join(FAULT_NAMES)}")
    if call is not None and fault is not None:
        raise ConfigError(f"{where}: use either 'call' or 'fault', not both")
    if seconds is not None:
        if fault not in TIMED_FAULTS:
            raise ConfigError(
                f"{where}: 'seconds' only applies to fault = "
                + ", ".join(f'"{name}"' for name in TIMED_FAULTS)
            )
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigError(f"{where}: 'seconds' must be a non-negative number")
    send_handle = raw.get("send_handle", False)
    if not isinstance(send_handle, bool):
        raise ConfigError(f"{where}: 'send_handle' must be true or false")
    if send_handle and fault != "go-away":
        raise ConfigError(f"{where}: 'send_handle' only applies to fault = \"go-away\"")
    transfer = raw.get("transfer")
    if transfer is not None and (not isinstance(transfer, str) or not transfer.isidentifier()):
        raise ConfigError(f"{where}: 'transfer' must be an agent's name")
    if transfer is not None and call is not None:
        raise ConfigError(f"{where}: use either 'call' or 'transfer', not both")
    if transfer is not None and fault not in (None, "silent"):
        raise ConfigError(f"{where}: with 'transfer', only fault = \"silent\" applies")
    if say is None and call is None and fault is None and transfer is None:
        raise ConfigError(f"{where}: needs 'say', 'call', 'transfer' or 'fault'")
    groups = compiled.groupindex
    for i, segment in enumerate((say, *more) if say is not None else ()):
        label = f"{where}.say" if not more else f"{where}.say[{i}]"
        check_template(segment, allow_result=call is not None, where=label, groups=groups)
    if filler is not None:
        check_template(filler, allow_result=False, where=f"{where}.while", groups=groups)
    for key, value in args.items():
        if isinstance(value, str):
            check_template(value, allow_result=False, where=f"{where}.args.{key}", groups=groups)
    return Rule(
        match=compiled,
        say=say,
        call=call,
        args=dict(args),
        fault=fault,
        seconds=None if seconds is None else float(seconds),
        send_handle=send_handle,
        more=more,
        filler=filler or None,
        transfer=transfer,
    )


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rules file {source} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"rule", "fallback"})
    if unknown:
        raise ConfigError(
            f"rules file {source}: unknown top-level key {unknown[0]!r}; use [[rule]] tables"
        )
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise ConfigError(f"rules file {source}: write rules as [[rule]] tables")
    fallback = data.get("fallback", DEFAULT_FALLBACK)
    if not isinstance(fallback, str):
        raise ConfigError(f"rules file {source}: 'fallback' must be a string")
    check_template(fallback, allow_result=False, where=f"rules file {source}: fallback")
    rules = tuple(
        _parse_rule(raw, f"rules file {source}: rule {i + 1}") for i, raw in enumerate(raw_rules)
    )
    return Rules(rules=rules, fallback=fallback)


def load_rules(path: str | Path) -> Rules:
    """Load a TOML rules file; raise `ConfigError` with the file and rule number on mistakes."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror or exc}") from None
    return parse_rules(text, str(path))


def default_rules() -> Rules:
    """The rules bundled with adkvoice (greetings, the time via a tool, faults, echo)."""
    text = (
        resources.files("adkvoice.emulator")
        .joinpath("default_rules.toml")
        .read_text(encoding="utf-8")
    )
    return parse_rules(text, "default_rules.toml")
