"""ADK agent teams on the emulated model: which agent a connection plays, and handoffs.

ADK names the agent in the system instruction (`You are an agent. Your internal name is
"billing".`) and declares `transfer_to_agent` on an agent that may hand the
conversation over. In live mode (ADK 2.13) the handoff is a new connection: after the
call's response ADK waits about a second, closes the connection and opens another for
the agent named, with that agent's instruction and tools, seeded with the conversation
so far. What other agents said and did arrives there as user-role notes
("For context: ..."), so the words to answer are the user's latest that are not such a
note. A `transfer` rule applies only where the handoff can happen (see `rules`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from .client_messages import Turn
from .rules import TRANSFER_FUNCTION, Rule

_AGENT_NAME = re.compile(r'Your internal name is "([^"]+)"')
_TARGET = re.compile(r"^Agent name: (\S+)\s*$", re.MULTILINE)  # ADK's list of targets
# How ADK quotes another agent's turns to the agent answering (`_fencing`).
CONTEXT_NOTE = "For context:"


def agent_name(system_instruction: str) -> str:
    """The ADK agent a connection plays, as its system instruction names it ("" if not)."""
    found = _AGENT_NAME.search(system_instruction)
    return found.group(1) if found else ""


def transfer_targets(system_instruction: str) -> set[str]:
    """The agents ADK lets this one hand over to ("Agent name: billing" lines)."""
    return set(_TARGET.findall(system_instruction))


def rule_applies(rule: Rule, *, system: str, functions: Collection[str]) -> bool:
    """A `transfer` rule applies where `transfer_to_agent` is declared and the agent
    named is one the system instruction offers, other than this one; every other rule
    always applies."""
    if rule.transfer is None:
        return True
    return (
        TRANSFER_FUNCTION in functions
        and rule.transfer != agent_name(system)
        and rule.transfer in transfer_targets(system)
    )


def is_context_note(turn: Turn) -> bool:
    return turn.role == "user" and turn.text.lstrip().startswith(CONTEXT_NOTE)


def answerable(history: Sequence[Turn]) -> Turn | None:
    """The turn a history that ends with the user asks the model to answer: the last one,
    unless it is a note about other agents (after a handoff), then the user's last words
    before the notes. None when the history does not end with the user."""
    if not history or history[-1].role != "user":
        return None
    for turn in reversed(history):
        if turn.role != "user":
            return None
        if not is_context_note(turn):
            return turn
    return None
