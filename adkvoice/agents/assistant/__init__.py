"""The default agent: a helpful assistant with a few everyday tools."""

from adkvoice.agents.assistant.agent import root_agent

__all__ = ["root_agent"]
