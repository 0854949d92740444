"""Load an ADK agent the way `adk run` does, with errors a user can act on."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from adkvoice.config import register_env_secrets
from adkvoice.errors import AgentLoadError, ModelRejectedError

if TYPE_CHECKING:
    from google.adk.agents.base_agent import BaseAgent
    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.apps.app import App

    from adkvoice.live_models import ToolBehavior
    from adkvoice.live_options import Thinking

BUNDLED_AGENT_NAME = "assistant"


@dataclass(frozen=True)
class LoadedAgent:
    app_name: str
    agent: BaseAgent | None
    app: App | None
    source: str  # shown to the user: a path or "built-in assistant"


def root_agent(loaded: LoadedAgent) -> object:
    return loaded.app.root_agent if loaded.app is not None else loaded.agent


def live_model_of(loaded: LoadedAgent, model: str | None = None) -> str:
    """The live model the root agent runs on: `model` (--model) when given, else its own
    ("" when it is not an LLM agent). A name ADK cannot resolve to a model class is a
    ModelRejectedError now, not a ValueError once the conversation starts."""
    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.models.registry import LLMRegistry

    if model:
        try:
            LLMRegistry.resolve(model)
        except (ValueError, ImportError):
            raise _unknown_model(f"--model {model!r}") from None
        return model
    root = root_agent(loaded)
    if not isinstance(root, LlmAgent):
        return ""
    try:
        return root.canonical_live_model.model
    except (ValueError, ImportError):
        raise _unknown_model(f"the agent's model {root.model!r}") from None


def _unknown_model(what: str) -> ModelRejectedError:
    from adkvoice.live_models import FAMILIES

    known = ", ".join(family.newest_model for family in FAMILIES if not family.retired)
    return ModelRejectedError(
        f"{what} is not a model ADK can run; pick a Live API model with --model: {known} "
        "(`adkvoice models` describes them)"
    )


_Derive = TypeVar("_Derive", bound=Callable[..., "LoadedAgent"])
# Copying an agent copies its Gemini model, which then builds its google-genai clients
# again: two TLS contexts each, 30-60 ms of CPU apiece on the event loop. serve derives
# the same agent for every session (background tools for Gemini 3.8), so a derivation is
# kept per source agent, and its copies and their clients are built once.
MAX_KEPT_DERIVATIONS = 32
_kept: dict[tuple[str, int, tuple[Hashable, ...]], tuple[LoadedAgent, LoadedAgent]] = {}


def _kept_per_source(derive: _Derive) -> _Derive:
    """`derive(loaded, *args)` once per source agent and arguments (the agents are
    shared anyway: a derived agent is used as the loaded one is, by every session)."""

    @functools.wraps(derive)
    def kept(loaded: LoadedAgent, *args: Hashable) -> LoadedAgent:
        key = (derive.__name__, id(loaded), args)
        hit = _kept.get(key)
        if hit is not None and hit[0] is loaded:  # the same source, not a reused id
            return hit[1]
        derived: LoadedAgent = derive(loaded, *args)
        if len(_kept) >= MAX_KEPT_DERIVATIONS:
            del _kept[next(iter(_kept))]
        _kept[key] = (loaded, derived)
        return derived

    return cast(_Derive, kept)


def _with_root(loaded: LoadedAgent, update: dict[str, object]) -> LoadedAgent:
    """`loaded` with its root LLM agent changed, as a copy: the loaded agent stays as it
    is, because the server shares it between sessions and routes."""
    from google.adk.agents.llm_agent import LlmAgent

    root = root_agent(loaded)
    if not isinstance(root, LlmAgent):
        return loaded
    clone = root.clone(update=update)
    if loaded.app is not None:
        return replace(loaded, app=loaded.app.model_copy(update={"root_agent": clone}))
    return replace(loaded, agent=clone)


@_kept_per_source
def with_model(loaded: LoadedAgent, model: str | None) -> LoadedAgent:
    """`loaded` with its root agent on `model` (a copy)."""
    return _with_root(loaded, {"model": model}) if model else loaded


@_kept_per_source
def with_thinking(loaded: LoadedAgent, thinking: Thinking | None) -> LoadedAgent:
    """`loaded` with its root agent's thinking set (a copy); ADK passes the agent's
    `generate_content_config.thinking_config` to the live setup."""
    from google.adk.agents.llm_agent import LlmAgent
    from google.genai import types

    root = root_agent(loaded)
    if thinking is None or not isinstance(root, LlmAgent):
        return loaded
    level = None if thinking.level is None else types.ThinkingLevel(thinking.level.upper())
    config = root.generate_content_config or types.GenerateContentConfig()
    config = config.model_copy(
        update={
            "thinking_config": types.ThinkingConfig(
                thinking_level=level, thinking_budget=thinking.budget
            )
        }
    )
    return _with_root(loaded, {"generate_content_config": config})


@_kept_per_source
def with_background_tools(loaded: LoadedAgent) -> LoadedAgent:
    """`loaded` with the root agent's plain function tools run in the background (a copy).

    For models that do not wait for a tool unless told to (Gemini 3.8: a declaration
    without `behavior` is NON_BLOCKING). ADK 2.13 runs such a tool inside its receive
    loop, so everything the model says while the tool runs ("let me check…") reaches the
    user only after the tool returns. Marked NON_BLOCKING, ADK runs the tool as a task and
    sends its result when done, which is what the model expects anyway. Tools that name
    a behavior, long-running and streaming tools, toolsets and sub-agents stay as they are.
    """
    import copy
    import inspect

    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.tools.function_tool import FunctionTool
    from google.genai import types

    root = root_agent(loaded)
    if not isinstance(root, LlmAgent):
        return loaded
    tools: list[object] = []
    for tool in root.tools:
        plain = tool
        if inspect.isfunction(tool) or inspect.ismethod(tool):
            plain = FunctionTool(tool)
        if (
            isinstance(plain, FunctionTool)
            and plain.behavior is None
            and plain.response_scheduling is None
            and not plain.is_long_running
            and not inspect.isasyncgenfunction(plain.func)
        ):
            plain = copy.copy(plain) if plain is tool else plain
            plain.behavior = types.Behavior.NON_BLOCKING
            tools.append(plain)
        else:
            tools.append(tool)
    return _with_root(loaded, {"tools": tools})


def declared_behaviors(agent: LlmAgent) -> dict[str, ToolBehavior]:
    """The behavior ADK declares for each of the agent's own tools that sets one:
    BLOCKING, or NON_BLOCKING (also for tools with a response scheduling)."""
    from google.adk.tools.base_tool import BaseTool
    from google.genai import types

    out: dict[str, ToolBehavior] = {}
    for tool in agent.tools:
        if not isinstance(tool, BaseTool):
            continue
        if tool.behavior is types.Behavior.BLOCKING:
            out[tool.name] = "BLOCKING"
        elif tool.behavior is types.Behavior.NON_BLOCKING or tool.response_scheduling is not None:
            out[tool.name] = "NON_BLOCKING"
    return out


def app_name_for(path: Path | None) -> str:
    """The ADK app name conversations with this agent are stored under: its directory's
    name, as `adk run` and `adk web` use it."""
    if path is None:
        return BUNDLED_AGENT_NAME
    resolved = path.expanduser().resolve()
    if resolved.is_file():
        resolved = resolved.parent
    return resolved.name


def load_bundled_agent() -> LoadedAgent:
    from adkvoice.agents.assistant import root_agent

    return LoadedAgent(
        app_name=BUNDLED_AGENT_NAME, agent=root_agent, app=None, source="built-in assistant"
    )


def load_agent_dir(path: Path) -> LoadedAgent:
    """Load the agent in `path`: a package exposing `root_agent` (or `app`), an
    `agent.py`, or a `root_agent.yaml`. Its `.env` is loaded as `adk run` loads it."""
    from google.adk.agents.base_agent import BaseAgent
    from google.adk.apps.app import App
    from google.adk.cli.utils.agent_loader import AgentLoader

    resolved = path.expanduser().resolve()
    if not resolved.exists():
        raise AgentLoadError(f"agent path {path} does not exist")
    if resolved.is_file():
        if resolved.name in ("agent.py", "__init__.py", "root_agent.yaml"):
            resolved = resolved.parent
        else:
            raise AgentLoadError(
                f"{path} is a file: give the agent's directory (the folder with agent.py)"
            )
    if not (
        (resolved / "agent.py").is_file()
        or (resolved / "__init__.py").is_file()
        or (resolved / "root_agent.yaml").is_file()
    ):
        raise AgentLoadError(
            f"{path} is not an ADK agent directory: it needs agent.py, __init__.py or "
            "root_agent.yaml exposing root_agent"
        )
    name = resolved.name
    if not name.isidentifier():
        raise AgentLoadError(
            f"agent directory name {name!r} is not a Python identifier: rename it "
            "(letters, digits and underscores)"
        )
    loader = AgentLoader(str(resolved.parent))
    # ADK prints the .env it loads and logs its search; keep the terminal clean.
    quiet = io.StringIO()
    adk_logger = logging.getLogger("google_adk")
    level = adk_logger.level
    adk_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(quiet):
            loaded = loader.load_agent(name)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "No root_agent found" in str(exc):
            raise AgentLoadError(
                f"{path} does not expose an agent: define `root_agent = Agent(...)` in "
                "agent.py (or import it in __init__.py)"
            ) from exc
        raise AgentLoadError(f"could not load the agent in {path}: {first_line}") from exc
    except (ImportError, SyntaxError) as exc:
        raise AgentLoadError(
            f"could not import the agent in {path}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        adk_logger.setLevel(level)
    # The .env may have brought the API key: hide it from logs and messages too.
    register_env_secrets(os.environ)
    if isinstance(loaded, App):
        return LoadedAgent(app_name=name, agent=None, app=loaded, source=str(path))
    if isinstance(loaded, BaseAgent):
        return LoadedAgent(app_name=name, agent=loaded, app=None, source=str(path))
    raise AgentLoadError(f"{path} exposes a {type(loaded).__name__}, not an ADK agent")
