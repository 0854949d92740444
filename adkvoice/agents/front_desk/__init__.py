"""A team of agents: a front desk that hands billing questions to a billing specialist."""

from adkvoice.agents.front_desk.agent import root_agent

__all__ = ["root_agent"]
