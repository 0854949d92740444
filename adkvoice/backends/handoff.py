"""Teams of agents: the agent tree, and a handoff that gets no answer.

ADK hands a live conversation to another agent (`transfer_to_agent`) by closing the
model connection and opening one for that agent. When the new agent never answers,
which users of ADK report (the handoff "goes silent"), nothing else would say so: the
user waits. `HandoffWatch` gives the agent handed to a bound to say something; past it,
one line says what happened and the answer ends, so a typed chat moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from adkvoice.backends.turns import is_agent_output
from adkvoice.events import ErrorEvent, Event, Handoff, Interrupted, ToolCall

# How long the agent handed to has to say something. ADK itself waits 1 s before it
# closes the old connection, then connects again and replays the conversation.
HANDOFF_ANSWER_S = 8.0


def agent_names(root: object) -> tuple[str, ...]:
    """Every agent in the tree under `root` (root first, depth first), by name."""
    names: list[str] = []
    stack = [root]
    while stack:
        agent = stack.pop()
        name = getattr(agent, "name", None)
        if isinstance(name, str) and name not in names:
            names.append(name)
        stack.extend(reversed(list(getattr(agent, "sub_agents", None) or [])))
    return tuple(names)


def agents_in_tree(root: object) -> list[object]:
    """The agents under `root`, root first (each once)."""
    seen: list[object] = []
    stack = [root]
    while stack:
        agent = stack.pop()
        if any(agent is known for known in seen):
            continue
        seen.append(agent)
        stack.extend(reversed(list(getattr(agent, "sub_agents", None) or [])))
    return seen


def silent_handoff_line(handoff: Handoff, waited_s: float) -> str:
    """The one line for a handoff the agent handed to never answered."""
    source = f" from {handoff.from_agent}" if handoff.from_agent else ""
    return (
        f"{handoff.to_agent} did not answer after the handoff{source} "
        f"({waited_s:.0f} s without a word); ask again, or check that agent's model "
        "and instruction"
    )


class HandoffWatch:
    """Watches the events after a handoff for the new agent's first output.

    `on_silent(handoff)` is called from the event loop when `bound_s` passes with none
    (no text, speech, audio, tool call, error or interruption since the handoff).
    """

    def __init__(
        self, on_silent: Callable[[Handoff], None], *, bound_s: float = HANDOFF_ANSWER_S
    ) -> None:
        self._on_silent = on_silent
        self.bound_s = bound_s
        self._timer: asyncio.TimerHandle | None = None
        self.pending: Handoff | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, Handoff):
            self.cancel()
            self.pending = event
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.bound_s, self._expired, event)
        elif self.pending is not None and (
            is_agent_output(event) or isinstance(event, ToolCall | ErrorEvent | Interrupted)
        ):
            self.cancel()

    def _expired(self, handoff: Handoff) -> None:
        self._timer = None
        if self.pending is handoff:
            self.pending = None
            self._on_silent(handoff)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.pending = None
