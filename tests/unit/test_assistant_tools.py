"""The built-in assistant's tools, and what adkvoice changes about an agent's tools for
models that do not wait for them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from google.adk.agents import Agent
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

from adkvoice.agents.assistant.agent import search_files
from adkvoice.agents.assistant.file_search import MAX_FILE_BYTES, search_text_files
from adkvoice.agents.loading import (
    LoadedAgent,
    declared_behaviors,
    root_agent,
    with_background_tools,
    with_thinking,
)
from adkvoice.backends.live_config import background_rule
from adkvoice.live_models import GEMINI_31, GEMINI_38
from adkvoice.live_options import Thinking


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("groceries\nThe Budget for May\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "plan.md").write_text("no budget here? yes: budget\n")
    (tmp_path / "sub" / "other.md").write_text("nothing\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("budget\n")  # hidden: skipped
    (tmp_path / "image.bin").write_bytes(b"\x00budget")  # binary: skipped
    (tmp_path / "big.txt").write_text("budget\n" + "x" * MAX_FILE_BYTES)  # too large
    return tmp_path


def test_search_finds_the_first_line_of_each_text_file(tmp_path: Path) -> None:
    result = search_text_files("BUDGET", _tree(tmp_path))
    assert result.searched == 3
    assert [(m.path, m.line) for m in result.matches] == [("notes.txt", 2), ("sub/plan.md", 1)]
    summary = result.as_tool_result()["summary"]
    assert summary == "2 files mention 'BUDGET': notes.txt (line 2), sub/plan.md (line 1)"


def test_search_stops_at_its_time_budget(tmp_path: Path) -> None:
    result = search_text_files("budget", _tree(tmp_path), time_budget_s=0.0)
    assert result.stopped_early == "stopped after 0 s"
    assert result.as_tool_result()["stopped_early"]


def test_the_tool_searches_the_given_folder_and_says_what_is_wrong(tmp_path: Path) -> None:
    found = asyncio.run(search_files("budget", str(_tree(tmp_path))))
    assert found["files_matched"] == 2
    assert asyncio.run(search_files("  ", str(tmp_path)))["status"] == "error"
    missing = asyncio.run(search_files("x", str(tmp_path / "nope")))
    assert missing == {"status": "error", "error": f"{str(tmp_path / 'nope')!r} is not a folder"}


def plain(x: str) -> str:
    """A plain tool."""
    return x


def _loaded() -> LoadedAgent:
    blocking = FunctionTool(plain)
    blocking.name = "blocking"
    blocking.behavior = types.Behavior.BLOCKING
    scheduled = FunctionTool(plain)
    scheduled.name = "scheduled"
    scheduled.response_scheduling = types.FunctionResponseScheduling.SILENT
    agent = Agent(name="a", model="gemini-3.8-live", tools=[plain, blocking, scheduled])
    return LoadedAgent(app_name="a", agent=agent, app=None, source="test")


def test_plain_tools_run_in_the_background_for_models_that_do_not_wait() -> None:
    loaded = _loaded()
    changed = root_agent(with_background_tools(loaded))
    assert isinstance(changed, Agent)
    assert declared_behaviors(changed) == {
        "plain": "NON_BLOCKING",
        "blocking": "BLOCKING",
        "scheduled": "NON_BLOCKING",
    }
    original = root_agent(loaded)
    assert isinstance(original, Agent)
    assert declared_behaviors(original) == {"blocking": "BLOCKING", "scheduled": "NON_BLOCKING"}
    assert original.tools[0] is plain  # the shared agent is left as it was


def test_which_calls_run_in_the_background_follows_the_declaration_and_the_model() -> None:
    declared = {"blocking": "BLOCKING", "scheduled": "NON_BLOCKING"}
    on_38 = background_rule(GEMINI_38, declared)
    assert (on_38("plain"), on_38("blocking"), on_38("scheduled")) == (True, False, True)
    on_31 = background_rule(GEMINI_31, declared)  # no asynchronous function calling
    assert (on_31("plain"), on_31("scheduled")) == (False, False)
    unknown = background_rule(None, declared)
    assert (unknown("plain"), unknown("scheduled")) == (False, True)


def test_thinking_reaches_the_agent_config() -> None:
    changed = root_agent(with_thinking(_loaded(), Thinking(level="high")))
    assert isinstance(changed, Agent)
    config = changed.generate_content_config
    assert config is not None
    assert config.thinking_config == types.ThinkingConfig(thinking_level=types.ThinkingLevel.HIGH)


def test_a_derived_agent_is_built_once_per_source_and_arguments() -> None:
    """serve derives the same agent for every session; a copy would build its model's
    google-genai clients (and their TLS contexts) again on the event loop."""
    loaded = _loaded()
    assert with_background_tools(loaded) is with_background_tools(loaded)
    high = with_thinking(loaded, Thinking(level="high"))
    assert with_thinking(loaded, Thinking(level="high")) is high
    assert with_thinking(loaded, Thinking(level="low")) is not high
    other = _loaded()
    assert with_background_tools(other) is not with_background_tools(loaded)
    assert root_agent(with_background_tools(other)) is not root_agent(other)
