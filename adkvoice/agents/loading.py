"""Load an ADK agent the way `adk run` does, with errors a user can act on."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from adkvoice.errors import AgentLoadError

if TYPE_CHECKING:
    from google.adk.agents.base_agent import BaseAgent
    from google.adk.apps.app import App

BUNDLED_AGENT_NAME = "assistant"


@dataclass(frozen=True)
class LoadedAgent:
    app_name: str
    agent: BaseAgent | None
    app: App | None
    source: str  # shown to the user: a path or "built-in assistant"


def with_model(loaded: LoadedAgent, model: str | None) -> LoadedAgent:
    """`loaded` with its root agent on `model`, as a copy: the loaded agent stays as it is,
    because the server shares it between sessions and routes."""
    from google.adk.agents.llm_agent import LlmAgent

    root = loaded.app.root_agent if loaded.app is not None else loaded.agent
    if not model or not isinstance(root, LlmAgent):
        return loaded
    clone = root.clone(update={"model": model})
    if loaded.app is not None:
        return replace(loaded, app=loaded.app.model_copy(update={"root_agent": clone}))
    return replace(loaded, agent=clone)


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
    if isinstance(loaded, App):
        return LoadedAgent(app_name=name, agent=None, app=loaded, source=str(path))
    if isinstance(loaded, BaseAgent):
        return LoadedAgent(app_name=name, agent=loaded, app=None, source=str(path))
    raise AgentLoadError(f"{path} exposes a {type(loaded).__name__}, not an ADK agent")
