"""When has the agent finished answering? A pure tracker over the event stream.

Models that answer one prompt in several turns (Gemini 3.8) say so: each `TurnComplete`
carries their interaction status, and the answer ends at the first `idle` one, whatever
came before (a background tool's result may still be on its way, or arrive later).

Where the model does not say, a model turn can end with a tool call: ADK then runs the
tool, sends its result, and the model answers in a further turn. So a `TurnComplete`
ends the user's turn only when agent output (text, speech, audio) has arrived since the
last tool result; two completes in a row with nothing between them also end it (the
model chose not to say anything after the tool).
"""

from __future__ import annotations

from adkvoice.events import (
    AgentAudio,
    AgentText,
    Event,
    Interrupted,
    ToolCall,
    ToolResult,
    Transcript,
    TurnComplete,
)


def is_agent_output(event: Event) -> bool:
    """Text, speech or audio from the agent: the start of an answer."""
    return isinstance(event, AgentText | AgentAudio) or (
        isinstance(event, Transcript) and event.speaker == "agent"
    )


class TurnTracker:
    """`tools_unseen`: the transport does not carry tool calls (the seeds protocol), so a
    model turn that ends with nothing said is taken for a tool round too."""

    def __init__(self, *, tools_unseen: bool = False) -> None:
        self.tools_unseen = tools_unseen
        self._tool_round = False  # a tool ran and the model has not answered since
        self._empty_completes = 0
        self._heard = False  # output (or an interruption) since the last TurnComplete

    def reset(self) -> None:
        self._tool_round = False
        self._empty_completes = 0
        self._heard = False

    def feed(self, event: Event) -> bool:
        """Fold in one event; True when it ends the agent's answer to the user's turn."""
        if isinstance(event, ToolCall | ToolResult):
            self._tool_round = True
            self._empty_completes = 0
        elif is_agent_output(event) or isinstance(event, Interrupted):
            self._tool_round = False
            self._heard = True
        elif isinstance(event, TurnComplete) and event.interaction is not None:
            self._heard = False
            if event.interaction == "idle":
                self.reset()
                return True
        elif isinstance(event, TurnComplete):
            tool_round = self._tool_round or (self.tools_unseen and not self._heard)
            self._heard = False
            if not tool_round:
                self.reset()
                return True
            self._empty_completes += 1
            if self._empty_completes >= 2:
                self.reset()
                return True
        return False
