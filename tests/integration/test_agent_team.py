"""A team of agents end to end: the bundled front desk hands billing questions to its
`billing` sub-agent, through the real ADK (which reconnects for the sub-agent) and the
emulator (which calls `transfer_to_agent` and answers as billing with billing's tool)."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import pytest

import adkvoice.agents.front_desk.agent as team_module
from adkvoice.agents.loading import LoadedAgent
from adkvoice.events import AgentTeam, AgentText, Handoff
from adkvoice.server import AgentServer, ServeOptions
from adkvoice.wire.adkvoice_v1 import decode_server_frame

from .conftest import RunCli
from .emulator_support import running_emulator
from .server_support import client, recv_until

pytestmark = pytest.mark.integration

TEAM = str(Path(team_module.__file__).parent)


def test_plain_chat_shows_the_handoff_and_who_answers(run_cli: RunCli) -> None:
    voice = "which voice is this?\n"
    result = run_cli(
        ["chat", "--text", "--voice", "Kore", TEAM], stdin=f"{voice}what is my balance?\n{voice}"
    )
    assert result.returncode == 0, result.stderr
    front_voice, balance, billing_voice = result.stdout.splitlines()
    # Each agent has its own connection, so billing speaks with its model's own voice.
    assert front_voice.startswith("front_desk: I'm speaking with the Kore voice")
    assert billing_voice.startswith("billing: I'm speaking with the Puck voice")
    assert "→ billing: " in balance
    # billing answers with billing's own tool, after the handoff.
    assert balance.split("→ billing: ")[1] == (
        "This is billing: your balance is 42.50 EUR, due the 1st of next month."
    )
    assert "did not answer" not in result.stderr
    assert "reconnected" not in result.stderr  # a handoff is not a lost connection


def test_json_has_the_team_the_handoff_and_each_author(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text", "--json", TEAM], stdin="what is my balance?\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    types = [r["type"] for r in records]
    (team,) = [r for r in records if r["type"] == "agents"]
    assert team["names"] == ["front_desk", "billing"]
    (handoff,) = [r for r in records if r["type"] == "handoff"]
    assert (handoff["from"], handoff["to"]) == ("front_desk", "billing")
    at = types.index("handoff")
    before = {r["author"] for r in records[:at] if r["type"] == "agent_text"}
    after = [r for r in records[at:] if r["type"] == "agent_text"]
    assert before == {"front_desk"}
    assert after
    assert {r["author"] for r in after} == {"billing"}
    calls = {r["name"]: r["author"] for r in records if r["type"] == "tool_call"}
    assert calls == {"transfer_to_agent": "front_desk", "get_balance": "billing"}
    assert types[-1] == "answer_complete"


def test_a_silent_handoff_is_one_line_not_a_hang(run_cli: RunCli) -> None:
    started = time.monotonic()
    result = run_cli(
        ["chat", "--text", TEAM], stdin="emulator fault silent handoff\nhello\n", timeout=45
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    silent = [line for line in result.stderr.splitlines() if "did not answer" in line]
    assert silent == [
        "billing did not answer after the handoff from front_desk (8 s without a word); "
        "ask again, or check that agent's model and instruction"
    ]
    # The chat went on: the next line was answered, by the agent now in charge.
    assert result.stdout.splitlines()[-1].startswith("billing: Hello!")
    assert took < 30


async def test_serve_v1_names_the_author(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        module = importlib.reload(team_module)  # agents whose clients meet this emulator
        loaded = LoadedAgent(
            app_name="front_desk", agent=module.root_agent, app=None, source="team"
        )
        options = ServeOptions(port=0, handle_signals=False, endpoint_label="emulator")
        async with AgentServer(loaded, options) as server:
            url = f"{server.ws_url}/ws/team1?is_audio=false"
            async with client(url, extended=True) as ws:
                hello = json.loads(await ws.recv())
                assert hello["type"] == "hello"
                await ws.send(json.dumps({"type": "text", "text": "what is my balance?"}))
                # Gemini 3.8 (the team's model) ends the answer with an idle turn_complete.
                frames = await recv_until(ws, lambda f: "42.50" in str(f))
                frames += await recv_until(ws, lambda f: '"idle"' in str(f))
        events = [e for f in frames for e in decode_server_frame(f, extended=True, is_audio=False)]
    assert [e.names for e in events if isinstance(e, AgentTeam)] == [("front_desk", "billing")]
    handoffs = [e for e in events if isinstance(e, Handoff)]
    assert handoffs == [Handoff(from_agent="front_desk", to_agent="billing")]
    texts = [e for e in events if isinstance(e, AgentText)]
    assert {e.author for e in texts} == {"front_desk", "billing"}
    assert any(e.author == "billing" and "42.50 EUR" in e.text for e in texts)
    assert [r.agent for r in emu.stats.connection_log] == ["front_desk", "billing"]
