"""Seeing ADK's live connections come and go, and answering repeated tool calls.

`Runner.run_live` reconnects by itself (after goAway, or a drop when it holds a
resumption handle) and says nothing about it. To repeat a turn the old connection lost,
the backend has to know when a connection opens and closes, so the agent's Gemini model
is swapped once for a subclass that reports both. An agent object can be shared by many
conversations (`serve`), so the report goes to whichever conversation's task is
connecting, found through a context variable the backend sets around `run_live`.

The same context variable lets one before/after-tool callback pair, installed once per
agent, reach the conversation's `ToolReplay`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from google.adk.agents.llm_agent import LlmAgent
    from google.adk.models.base_llm_connection import BaseLlmConnection
    from google.adk.models.llm_request import LlmRequest
    from google.adk.tools.base_tool import BaseTool
    from google.adk.tools.tool_context import ToolContext

    from adkvoice.backends.recovery import ToolReplay

log = logging.getLogger(__name__)


class LinkListener(Protocol):
    """What a conversation is told about its connections to the model."""

    tool_replay: ToolReplay

    def link_up(self, *, resumed: bool, history_ends_with_user: bool) -> None:
        """A connection opened. `history_ends_with_user`: ADK replays a history on it that
        ends with the user (a message or a tool result), which the model answers by itself."""
        ...

    def link_down(self, *, failed: bool) -> None:
        """The connection ended: `failed` when an error ended it, not a goAway or close."""
        ...


current_listener: contextvars.ContextVar[LinkListener | None] = contextvars.ContextVar(
    "adkvoice_link_listener", default=None
)


@functools.cache
def _observed_gemini_class() -> type[Any]:
    from google.adk.models.google_llm import Gemini

    class ObservedGemini(Gemini):
        """Gemini that tells the connecting conversation when its connection opens/closes."""

        @contextlib.asynccontextmanager
        async def connect(self, llm_request: LlmRequest) -> AsyncIterator[BaseLlmConnection]:
            listener = current_listener.get()
            resumption = llm_request.live_connect_config.session_resumption
            resumed = bool(resumption and resumption.handle)
            ends_with_user = not resumed and _history_ends_with_user(llm_request)
            async with super().connect(llm_request) as connection:
                if listener is not None:
                    listener.link_up(resumed=resumed, history_ends_with_user=ends_with_user)
                try:
                    yield connection
                except BaseException:
                    if listener is not None:
                        listener.link_down(failed=True)
                    raise
                if listener is not None:
                    listener.link_down(failed=False)

    return ObservedGemini


def _history_ends_with_user(llm_request: LlmRequest) -> bool:
    """ADK sends this history on a fresh connection, and the model answers a history that
    ends with the user: a message, or a tool result it has not spoken about yet."""
    return bool(llm_request.contents) and llm_request.contents[-1].role == "user"


async def _replay_before_tool(
    tool: BaseTool, args: dict[str, Any], tool_context: ToolContext
) -> dict[str, Any] | None:
    listener = current_listener.get()
    if listener is None:
        return None
    return listener.tool_replay.lookup(tool.name, args)


async def _record_after_tool(
    tool: BaseTool, args: dict[str, Any], tool_context: ToolContext, tool_response: Any
) -> None:
    listener = current_listener.get()
    if listener is not None and isinstance(tool_response, dict):
        listener.tool_replay.record(tool.name, args, tool_response)


def install(agent: LlmAgent) -> bool:
    """Make `agent` report its connections and replay tools; False if its model is not
    Gemini (then lost turns cannot be detected, and are not repeated)."""
    from google.adk.models.google_llm import Gemini

    observed_class = _observed_gemini_class()
    model = agent.canonical_live_model
    if not isinstance(model, observed_class):
        if type(model) is not Gemini:
            log.debug("model %s is not Gemini: reconnects are not observed", type(model))
            return False
        fields = {name: getattr(model, name) for name in type(model).model_fields}
        agent.model = observed_class(**fields)
    if _replay_before_tool not in agent.canonical_before_tool_callbacks:
        # First in line, so a repeated call is answered before the agent's own callbacks.
        agent.before_tool_callback = [
            _replay_before_tool,
            *agent.canonical_before_tool_callbacks,
        ]
        agent.after_tool_callback = [*agent.canonical_after_tool_callbacks, _record_after_tool]
    return True
