"""Teams of agents: who is speaking, and the handoff, in the mapper, codecs, views and
the emulator's rules (real ADK Event objects; no connection)."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from google.adk.events.event import Event as AdkEvent
from google.adk.events.event_actions import EventActions
from google.genai import types
from rich.console import Console

from adkvoice import events as ev
from adkvoice.backends.handoff import HandoffWatch, agent_names, silent_handoff_line
from adkvoice.emulator.client_messages import Turn
from adkvoice.emulator.handoff import agent_name, answerable, rule_applies, transfer_targets
from adkvoice.emulator.rules import default_rules, parse_rules
from adkvoice.errors import ConfigError
from adkvoice.ui.chat_view import JsonLinesView, PlainChatView, RichChatView
from adkvoice.ui.talk_view import TalkState, apply_event
from adkvoice.wire import adkvoice_v1
from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.bidi_demo import BidiDemoClientCodec, BidiDemoServerCodec

TEAM = ev.AgentTeam(names=("front_desk", "billing"))


def _transfer_events() -> list[AdkEvent]:
    """What ADK yields when front_desk hands over: the call, then the response event
    whose actions name the agent (as `transfer_to_agent` sets them)."""
    call = types.FunctionCall(id="t1", name="transfer_to_agent", args={"agent_name": "billing"})
    response = types.FunctionResponse(id="t1", name="transfer_to_agent", response={"result": None})
    return [
        AdkEvent(
            author="front_desk",
            invocation_id="i",
            content=types.Content(role="model", parts=[types.Part(function_call=call)]),
        ),
        AdkEvent(
            author="front_desk",
            invocation_id="i",
            content=types.Content(role="user", parts=[types.Part(function_response=response)]),
            actions=EventActions(transfer_to_agent="billing"),
        ),
    ]


def _said(author: str, text: str, *, partial: bool = False) -> AdkEvent:
    return AdkEvent(
        author=author,
        invocation_id="i",
        content=types.Content(role="model", parts=[types.Part(text=text)]),
        partial=partial,
    )


def test_mapper_names_the_author_and_the_handoff() -> None:
    mapper = AdkEventMapper(runs_in_background=lambda _name: True)
    out = [
        e
        for adk in [_said("front_desk", "One moment."), *_transfer_events()]
        for e in mapper.map(adk)
    ]
    text, call, result, handoff = out
    assert isinstance(text, ev.AgentText)
    assert text.author == "front_desk"
    assert isinstance(call, ev.ToolCall)
    assert call.author == "front_desk"
    assert not call.background  # ADK runs a handoff at once
    assert isinstance(result, ev.ToolResult)
    assert result.author == "front_desk"
    assert handoff == ev.Handoff(from_agent="front_desk", to_agent="billing")
    speech = AdkEvent(
        author="billing",
        invocation_id="i",
        output_transcription=types.Transcription(text="Your balance", finished=True),
    )
    (said,) = mapper.map(speech)
    assert isinstance(said, ev.Transcript)
    assert said.author == "billing"
    user = AdkEvent(
        author="user",
        invocation_id="i",
        input_transcription=types.Transcription(text="hi", finished=True),
    )
    assert [e.author for e in mapper.map(user) if isinstance(e, ev.Transcript)] == [""]


def test_handoff_from_the_call_when_a_transport_drops_the_actions() -> None:
    mapper = AdkEventMapper()
    call, response = _transfer_events()
    mapper.map(call)
    bare = response.model_copy(update={"actions": EventActions()})
    assert mapper.map(bare)[-1] == ev.Handoff(from_agent="front_desk", to_agent="billing")
    assert not any(isinstance(e, ev.Handoff) for e in mapper.map(_said("billing", "Hi")))


def test_json_has_author_and_handoff() -> None:
    text = ev.AgentText(text="Hi", partial=False, author="billing")
    assert ev.to_json_dict(text)["author"] == "billing"
    assert "author" not in ev.to_json_dict(ev.AgentText(text="Hi", partial=False))
    handoff = ev.to_json_dict(ev.Handoff(from_agent="front_desk", to_agent="billing"))
    assert (handoff["type"], handoff["from"], handoff["to"]) == ("handoff", "front_desk", "billing")
    assert ev.to_json_dict(TEAM)["names"] == ["front_desk", "billing"]
    out = io.StringIO()
    JsonLinesView(out).handle(text)
    assert json.loads(out.getvalue())["author"] == "billing"


def _conversation(team: bool) -> list[ev.Event]:
    events: list[ev.Event] = [TEAM] if team else []
    first = "front_desk" if team else "assistant"
    events += [
        ev.UserText(text="what is my balance?"),
        ev.AgentText(text="Let me put you through.", partial=True, author=first),
    ]
    if team:
        events += [
            ev.ToolCall(
                call_id="t", name="transfer_to_agent", args={"agent_name": "billing"}, author=first
            ),
            ev.ToolResult(
                call_id="t", name="transfer_to_agent", response={}, duration_s=0.01, author=first
            ),
            ev.Handoff(from_agent=first, to_agent="billing"),
        ]
    who = "billing" if team else first
    events += [
        ev.AgentText(text="It is 42 EUR.", partial=True, author=who),
        ev.AgentText(text="It is 42 EUR.", partial=False, author=who),
        ev.TurnComplete(),
        ev.AnswerComplete(),
    ]
    return events


def _rich(events: list[ev.Event]) -> str:
    buffer = io.StringIO()
    view = RichChatView(Console(file=buffer, width=100, color_system=None, force_terminal=False))
    for event in events:
        view.handle(event)
    view.close()
    return buffer.getvalue()


def _plain(events: list[ev.Event]) -> str:
    out = io.StringIO()
    view = PlainChatView(out, io.StringIO())
    for event in events:
        view.handle(event)
    view.close()
    return out.getvalue()


def test_rich_view_names_agents_and_shows_the_handoff_only_for_a_team() -> None:
    shown = _rich(_conversation(team=True))
    assert "front_desk › Let me put you through." in shown
    assert "→ billing · handed over by front_desk" in shown
    assert "billing › It is 42 EUR." in shown
    assert "transfer_to_agent" not in shown  # the handoff line says it
    alone = _rich(_conversation(team=False))
    assert "agent › Let me put you through." in alone
    assert "assistant" not in alone


def test_plain_view_names_agents_only_for_a_team() -> None:
    assert _plain(_conversation(team=True)) == (
        "front_desk: Let me put you through. → billing: It is 42 EUR.\n"
    )
    alone = _plain(_conversation(team=False))
    assert "assistant" not in alone
    assert "→" not in alone


def test_talk_view_names_agents_only_for_a_team() -> None:
    def lines(team: bool) -> list[str]:
        state = TalkState()
        for event in _conversation(team):
            apply_event(state, event)
        return [line.plain for line in state.take_lines()]

    team = lines(True)
    assert "front_desk 🔊 Let me put you through." in team
    assert "→ billing · handed over by front_desk" in team
    assert "billing › It is 42 EUR." in team
    assert not any("billing" in line or "front_desk" in line for line in lines(False))


def test_v1_round_trip_carries_author_handoff_and_team() -> None:
    sent: list[ev.Event] = [
        TEAM,
        ev.AgentText(text="Hi", partial=True, author="front_desk"),
        ev.Transcript(speaker="agent", text="Hi", finished=True, author="billing"),
        ev.ToolCall(call_id="c", name="get_balance", args={}, author="billing"),
        ev.ToolResult(
            call_id="c", name="get_balance", response={"b": 1}, duration_s=0.5, author="billing"
        ),
        ev.Handoff(from_agent="front_desk", to_agent="billing"),
    ]
    for event in sent:
        (frame,) = adkvoice_v1.encode_extended(event)
        (back,) = adkvoice_v1.decode_server_frame(frame, extended=True, is_audio=False)
        assert back == event
        assert getattr(back, "author", "") == getattr(event, "author", "")
    old = adkvoice_v1.decode_server_frame(
        '{"type": "agent_text", "text": "x", "partial": false}', extended=True, is_audio=False
    )
    assert isinstance(old[0], ev.AgentText)
    assert old[0].author == ""


def test_bidi_demo_round_trip_carries_author_handoff_and_team() -> None:
    server = BidiDemoServerCodec(author="front_desk")
    client = BidiDemoClientCodec()
    for event in [
        TEAM,
        ev.AgentText(text="Hi", partial=False, author="billing"),
        ev.Handoff(from_agent="front_desk", to_agent="billing"),
    ]:
        (frame,) = server.encode(event)
        decoded = client.decode(frame)
        assert decoded == [event]
        assert getattr(decoded[0], "author", "") == getattr(event, "author", "")


def test_agent_names_of_the_bundled_team() -> None:
    from adkvoice.agents.front_desk import root_agent

    assert agent_names(root_agent) == ("front_desk", "billing")
    billing = root_agent.sub_agents[0]
    assert [tool.__name__ for tool in billing.tools] == ["get_balance"]  # type: ignore[union-attr]


async def test_handoff_watch_reports_silence_once_and_not_an_answer() -> None:
    silent: list[ev.Handoff] = []
    watch = HandoffWatch(silent.append, bound_s=0.05)
    handoff = ev.Handoff(from_agent="front_desk", to_agent="billing")
    watch.observe(handoff)
    watch.observe(ev.TurnComplete())  # not an answer
    await asyncio.sleep(0.1)
    assert silent == [handoff]
    watch.observe(handoff)
    watch.observe(ev.AgentText(text="Hi", partial=True, author="billing"))
    await asyncio.sleep(0.1)
    assert silent == [handoff]
    line = silent_handoff_line(handoff, 8)
    assert line.startswith("billing did not answer after the handoff from front_desk")
    assert "\n" not in line


SYSTEM = (
    'You are an agent. Your internal name is "front_desk".\n\nAgent name: billing\n'
    "Agent description: bills\n"
)


def test_emulator_transfer_rules_apply_only_where_the_handoff_can_happen() -> None:
    rules = default_rules()
    rule = rules.match("what is my balance?")
    assert rule.transfer == "billing"
    assert agent_name(SYSTEM) == "front_desk"
    assert transfer_targets(SYSTEM) == {"billing"}
    functions = {"transfer_to_agent"}
    assert rule_applies(rule, system=SYSTEM, functions=functions)
    assert not rule_applies(rule, system=SYSTEM, functions=set())  # no team
    billing = 'Your internal name is "billing".\nAgent name: front_desk\n'
    assert not rule_applies(rule, system=billing, functions=functions)
    answered = rules.match(
        "what is my balance?", lambda r: rule_applies(r, system=billing, functions=functions)
    )
    assert answered.call == "get_balance"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[[rule]]\nmatch='x'\ntransfer='billing'\ncall='f'\n", "either 'call' or 'transfer'"),
        ("[[rule]]\nmatch='x'\ntransfer='bil ling'\n", "'transfer' must be an agent's name"),
        ("[[rule]]\nmatch='x'\ntransfer='billing'\nfault='drop'\n", 'only fault = "silent"'),
    ],
)
def test_bad_transfer_rules_say_why(text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        parse_rules(text)


def test_after_a_handoff_the_user_words_are_answered_not_adk_notes() -> None:
    history = [
        Turn("user", "what is my balance?"),
        Turn("user", "For context: [front_desk] called tool `transfer_to_agent`"),
        Turn("user", "For context: [front_desk] `transfer_to_agent` tool returned result"),
    ]
    answered = answerable(history)
    assert answered is not None
    assert answered.text == "what is my balance?"
    assert answerable([*history, Turn("model", "Hi")]) is None
