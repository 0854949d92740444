"""`adkvoice chat` end to end: a real process, the real ADK, the in-process emulator."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
from pathlib import Path

import pytest

from tests.integration.conftest import RunCli

pytestmark = pytest.mark.integration


def _times_around_now() -> set[str]:
    now = dt.datetime.now().astimezone()
    return {(now + dt.timedelta(minutes=d)).strftime("%H:%M") for d in (-1, 0, 1)}


def test_piped_text_chat_answers_each_line(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text"], stdin="hello\nwhat time is it?\n")
    assert result.returncode == 0, result.stderr
    replies = result.stdout.splitlines()
    assert len(replies) == 2, result.stdout
    assert "\x1b" not in result.stdout
    times = re.findall(r"\d{1,2}:\d{2}", replies[1])
    assert set(times) & _times_around_now(), replies[1]
    assert "emulator" in result.stderr  # the one visible line saying no Gemini is used


def test_json_stream_has_the_tool_round_trip(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text", "--json"], stdin="hello\nwhat time is it?\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    types = [r["type"] for r in records]
    assert types.count("user_text") == 2
    assert types.count("turn_complete") == 2
    calls = [r for r in records if r["type"] == "tool_call"]
    results = [r for r in records if r["type"] == "tool_result"]
    assert [c["name"] for c in calls] == ["get_current_time"]
    assert len(results) == 1
    assert results[0]["id"] == calls[0]["id"]
    assert results[0]["response"]["time"] in _times_around_now()
    # The tool result comes before the reply that uses it.
    assert types.index("tool_result") < max(i for i, t in enumerate(types) if t == "agent_text")


def test_spoken_replies_print_their_transcript(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--json"], stdin="hello\n")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    audio = [r for r in records if r["type"] == "agent_audio"]
    speech = [r for r in records if r["type"] == "transcript" and r["speaker"] == "agent"]
    assert audio
    assert sum(r["duration_s"] for r in audio) > 0.2
    assert all(r["sample_rate"] == 24_000 for r in audio)
    assert speech
    assert speech[-1]["finished"]

    plain = run_cli(["chat"], stdin="hello\n")
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 1
    assert plain.stdout.strip()


def test_empty_input_exits_cleanly(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text"], stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("line", ["?", "\N{GRINNING FACE}", "...", "."])
def test_a_line_without_words_is_answered(run_cli: RunCli, line: str) -> None:
    result = run_cli(["chat", "--text"], stdin=f"{line}\n", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"You said: {line}"


def test_a_users_agent_directory_and_its_env(run_cli: RunCli, tmp_path: Path) -> None:
    agent = tmp_path / "shop_agent"
    agent.mkdir()
    (agent / "__init__.py").write_text("from . import agent\n")
    (agent / "agent.py").write_text(
        "import os\n"
        "from google.adk.agents import Agent\n\n"
        "def get_current_time() -> dict:\n"
        '    """Returns the shop\'s clock."""\n'
        '    return {"time": os.environ["SHOP_CLOCK"]}\n\n'
        'root_agent = Agent(name="shop", model="gemini-live-2.5-flash-preview",\n'
        '                   instruction="Be brief.", tools=[get_current_time])\n'
    )
    (agent / ".env").write_text("SHOP_CLOCK=07:42\n")
    result = run_cli(["chat", str(agent), "--text"], stdin="what time is it?\n")
    assert result.returncode == 0, result.stderr
    assert "07:42" in result.stdout


def test_model_rejected_is_one_line(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text", "--model", "gemini-1.0-pro"], stdin="hello\n")
    assert result.returncode == 7, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("adkvoice:")]
    assert len(lines) == 1
    assert "gemini-1.0-pro" in lines[0]
    assert "--model" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["nonsense", "foo-live"])
def test_a_name_that_is_not_a_model_is_one_line(run_cli: RunCli, name: str) -> None:
    result = run_cli(["chat", "--text", "--model", name], stdin="hello\n")
    assert result.returncode == 7, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("adkvoice:")]
    assert lines == [lines[-1]], result.stderr
    assert f"--model {name!r} is not a model ADK can run" in lines[0]
    assert "gemini-3.8-live" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_model_name_as_the_gemini_api_writes_it_is_taken(run_cli: RunCli) -> None:
    result = run_cli(["chat", "--text", "--model", "models/gemini-3.8-live"], stdin="hello\n")
    assert result.returncode == 0, result.stderr
    assert "· gemini-3.8-live ·" in result.stderr
    assert "emulator" in result.stdout.lower()


def test_emulator_port_busy(run_cli: RunCli) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(["emulator", "--port", str(port)], timeout=30)
    assert result.returncode == 9
    assert str(port) in result.stderr
    assert "busy" in result.stderr
    assert "Traceback" not in result.stderr
