"""Emulator reply rules, templates, fault queueing and model-name rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.adk.utils import model_name_utils

from adkvoice.emulator import FAULT_NAMES, Fault, FaultController, default_rules, load_rules
from adkvoice.emulator.rules import (
    TemplateContext,
    match_groups,
    parse_rules,
    render,
    render_value,
)
from adkvoice.errors import ConfigError
from adkvoice.live_models import FAMILIES, is_live_model, message_shapes, rejection_reason


def test_default_rules() -> None:
    rules = default_rules()
    greeting = rules.match("Hello there")
    assert greeting.say
    assert "emulator" in greeting.say
    assert rules.match("hi!").say == greeting.say
    assert rules.match("this is high").say == "You said: {text}"  # word boundary
    time = rules.match("Hey, what time is it?")  # the time rule comes first: first match wins
    assert time.call == "get_current_time"
    time = rules.match("What time is it?")
    assert (time.call, time.say) == ("get_current_time", "It is {result.time|result}.")
    assert rules.match("what's the date today").call == "get_current_time"
    assert rules.match("what did I say").say == "Before that you said: {previous}"
    assert rules.match("what did I say first?").say == (
        "The first thing you said that I still remember: {first}"
    )
    assert rules.match("lorem ipsum").say == "You said: {text}"
    faults = {rules.match(f"emulator fault {name}").fault for name in ("close", "drop", "delay")}
    assert faults == {"close-1011", "drop", "delay"}
    assert rules.match("emulator fault malformed").fault == "malformed"
    slow = rules.match("emulator fault slow")
    assert (slow.fault, slow.seconds) == ("slow", 0.5)
    assert rules.match("Emulator fault go away").fault == "go-away"
    assert rules.match("please do not emulator fault drop").fault is None  # anchored


def test_render_placeholders() -> None:
    ctx = TemplateContext(
        text="hi", previous="before", first="start", turn=3, model="m", result=None
    )
    assert render("{text}|{previous}|{first}|{turn}|{model}", ctx) == "hi|before|start|3|m"
    assert render("{{text}} {text}", ctx) == "{text} hi"
    assert render("{result}", ctx) == "(no result)"
    with_result = TemplateContext(
        result={"time": "10:42", "zone": {"name": "UTC"}}, has_result=True
    )
    assert render("{result}", with_result) == "time: 10:42, zone: UTC"
    assert render("{result.time} {result.zone.name} {result.nope}", with_result) == (
        "10:42 UTC nothing"
    )
    assert render("{result.clock|result.time|result}", with_result) == "10:42"
    assert render("{result.clock|result}", with_result) == "time: 10:42, zone: UTC"
    wrapped = TemplateContext(result={"result": {"time": "9"}}, has_result=True)
    assert render("{result} / {result.time}", wrapped) == "9 / 9"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "nothing"),
        (True, "yes"),
        (3, "3"),
        (2.5, "2.5"),
        ("x", "x"),
        ([1, "a"], "1, a"),
        ({"result": "ok"}, "ok"),
        ({"a": 1, "b": [2, 3]}, "a: 1, b: 2, 3"),
    ],
)
def test_render_value(value: object, text: str) -> None:
    assert render_value(value) == text


def test_parse_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        'fallback = "Pardon? {text}"\n'
        "[[rule]]\n"
        'match = "weather in (\\\\w+)"\n'
        'call = "get_weather"\n'
        'args = { city = "{text}", days = 2 }\n'
        'say = "Weather: {result.summary}"\n'
        "[[rule]]\n"
        'match = "slow"\n'
        'fault = "delay"\n'
        "seconds = 0.5\n"
        "[[rule]]\n"
        'match = "crawl"\n'
        'fault = "slow"\n'
        "seconds = 0.25\n"
        "[[rule]]\n"
        'match = "recycle"\n'
        'fault = "go-away"\n'
        "send_handle = true\n",
        encoding="utf-8",
    )
    rules = load_rules(path)
    weather = rules.match("What's the WEATHER in Paris")
    assert weather.call == "get_weather"
    assert dict(weather.args) == {"city": "{text}", "days": 2}
    slow = rules.match("slow please")
    assert (slow.fault, slow.seconds, slow.say) == ("delay", 0.5, None)
    crawl = rules.match("crawl")
    assert Fault.from_rule(crawl) == Fault("slow", seconds=0.25)
    recycle = rules.match("recycle")
    assert Fault.from_rule(recycle) == Fault("go-away", seconds=1.0, send_handle=True)
    assert rules.match("nothing").say == "Pardon? {text}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[[rule]\n", "not valid TOML"),
        ("rules = 1\n", "unknown top-level key 'rules'"),
        ("[rule]\nmatch='x'\nsay='y'\n", "[[rule]] tables"),
        ("[[rule]]\nsay='y'\n", "rule 1: 'match'"),
        ("[[rule]]\nmatch='('\nsay='y'\n", "rule 1: 'match' is not a valid regular expression"),
        ("[[rule]]\nmatch='x'\n", "rule 1: needs 'say', 'call', 'transfer' or 'fault'"),
        (
            "[[rule]]\nmatch='x'\nsay='y'\n[[rule]]\nmatch='x'\nsai='y'\n",
            "rule 2: unknown key 'sai'",
        ),
        ("[[rule]]\nmatch='x'\nfault='explode'\n", "unknown fault 'explode'"),
        ("[[rule]]\nmatch='x'\nsay='{result}'\n", "only available in rules that `call`"),
        ("[[rule]]\nmatch='x'\nsay='{who}'\n", "unknown placeholder {who}"),
        ("[[rule]]\nmatch='x'\nsay='a { b'\n", "stray '{'"),
        ("[[rule]]\nmatch='x'\nsay='y'\nseconds=1\n", "'seconds' only applies"),
        ("[[rule]]\nmatch='x'\nfault='delay'\nseconds=-1\n", "non-negative"),
        ("[[rule]]\nmatch='x'\nfault='drop'\nsend_handle=true\n", "'send_handle' only applies"),
        ("[[rule]]\nmatch='x'\nfault='go-away'\nsend_handle=1\n", "must be true or false"),
        ("[[rule]]\nmatch='x'\ncall='f'\nfault='drop'\n", "either 'call' or 'fault'"),
        ("[[rule]]\nmatch='x'\nsay='y'\nargs={a=1}\n", "'args' needs 'call'"),
        ("fallback = '{result}'\n", "only available in rules that `call`"),
    ],
)
def test_bad_rules_raise_config_error(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules(text, "r.toml")
    assert fragment in str(info.value)
    assert "r.toml" in str(info.value)


def test_load_rules_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "nope.toml")


def test_fault_controller_one_shot_and_sticky() -> None:
    faults = FaultController()
    faults.delay_next_reply(0.5)
    faults.drop_mid_reply(sticky=True)
    assert [f.kind for f in faults.take_for_turn()] == ["delay", "drop"]
    assert [f.kind for f in faults.take_for_turn()] == ["drop"]
    faults.close_mid_reply(code=1013, reason="busy")
    faults.malformed_next_reply()
    faults.go_away_after_reply(2.0, send_handle=True)
    faults.slow_replies(0.1)
    assert faults.pending[0] == Fault("close-1011", code=1013, reason="busy")
    assert Fault("go-away", seconds=2.0, send_handle=True) in faults.pending
    assert {f.kind for f in faults.pending} == {
        "close-1011",
        "malformed",
        "go-away",
        "slow",
        "drop",
    }
    faults.clear()
    assert faults.take_for_turn() == []
    assert set(FAULT_NAMES) == {
        "close-1011",
        "drop",
        "delay",
        "slow",
        "malformed",
        "go-away",
        "silent",
    }


NAMES = [
    "gemini-2.0-flash-live-001",
    "models/gemini-live-2.5-flash-preview",
    "gemini-2.5-flash-native-audio-preview-12-2025",
    "gemini-3.1-flash-live-preview",
    "models/gemini-3.1-flash-live-preview",
    "gemini-3.5-live-translate-preview",
    "gemini-3.8-live",
    "gemini-3.9-live",  # unknown to the catalogue: ADK's rule decides the shapes
    "gemini-4.0-live",
    *(model for family in FAMILIES for model in family.models),
    "gemini-2.5-flash",
    "gemini-3-pro-preview",
]


@pytest.mark.parametrize("name", NAMES)
def test_gemini_3_family_matches_adk(name: str) -> None:
    # The emulator's message shapes must be the ones ADK expects for the name.
    assert (message_shapes(name) == "3.x") == model_name_utils._is_gemini_3_x_live(name)


def test_live_model_rule() -> None:
    accepted = [n for n in NAMES if is_live_model(n)]
    assert "gemini-2.5-flash" not in accepted
    assert "gemini-3-pro-preview" not in accepted
    assert len(accepted) == len(NAMES) - 2
    assert is_live_model("gemini-2.0-flash-exp")  # the model of the ADK streaming samples
    assert not is_live_model("gemini-2.0-flash")
    assert rejection_reason("models/gemini-2.5-flash", "v1alpha") == (
        "models/gemini-2.5-flash is not found for API version v1alpha, "
        "or is not supported for bidiGenerateContent."
    )


def test_say_as_a_list_while_and_named_groups() -> None:
    rules = parse_rules(
        """
[[rule]]
match = "search (my )?files for (?P<query>.+?)\\\\W*$"
call = "search_files"
args = { query = "{match.query}" }
while = "Looking for {match.query}."
say = ["I looked.", "{result.summary}."]
"""
    )
    rule = rules.match("please search my files for the budget!")
    assert rule.segments == ("I looked.", "{result.summary}.")
    assert rule.filler == "Looking for {match.query}."
    ctx = TemplateContext(groups=match_groups(rule, "search files for the budget!"))
    assert render(rule.filler, ctx) == "Looking for the budget."
    assert render(str(rule.args["query"]), ctx) == "the budget"
    assert render("{match.nope|text}", TemplateContext(text="t")) == "t"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('match = "x"\nsay = "{match.query}"', "needs a named group"),
        ('match = "(?P<q>x)"\nsay = "{match.other}"', "this rule has {match.q}"),
        ('match = "x"\nsay = []', "a list of strings"),
        ('match = "x"\nsay = ["a", 1]', "a list of strings"),
        ('match = "x"\nsay = "a"\nwhile = "b"', "it needs 'call'"),
        ('match = "x"\ncall = "f"\nwhile = 3', "'while' must be a string"),
    ],
)
def test_bad_new_rule_keys_are_explained(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_rules(f"[[rule]]\n{body}\n", "r.toml")


def test_default_rules_script_the_slow_tool_and_a_reply_in_three_turns() -> None:
    rules = default_rules()
    search = rules.match("search my files for budget")
    assert (search.call, search.filler) == ("search_files", "Let me look through your files.")
    assert len(search.segments) == 2
    assert rules.match("which files mention TODO?").call == "search_files"
    assert rules.match("count to three").segments == ("One.", "Two.", "Three.")
