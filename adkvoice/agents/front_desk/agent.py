"""An example team: `front_desk` greets the caller and hands billing questions to its
sub-agent `billing`, which has its own tool (`get_balance`) and its own voice.

ADK hands a live conversation over with `transfer_to_agent`: it closes the model
connection and opens a new one for the sub-agent, with the sub-agent's instruction,
tools and model, so the voice set on the sub-agent's model (`speech_config`) is the
one it speaks with. Run it with `adkvoice chat --text PATH/TO/front_desk` (no key
needed: the offline emulator plays the model and knows this team's rules).
"""

from __future__ import annotations

import os

from google.adk.agents import Agent
from google.adk.models.google_llm import Gemini
from google.genai import types

from adkvoice.live_models import RECOMMENDED_MODEL

MODEL = os.environ.get("ADKVOICE_MODEL", RECOMMENDED_MODEL)
BILLING_VOICE = "Puck"  # the front desk speaks with the session's voice (--voice)


def get_balance(account: str = "") -> dict[str, str]:
    """Returns the balance of the caller's account.

    Args:
        account: The account number; empty for the caller's own account.
    """
    return {
        "status": "success",
        "account": account or "the caller's account",
        "balance": "42.50 EUR",
        "due": "the 1st of next month",
    }


billing = Agent(
    name="billing",
    model=Gemini(
        model=MODEL,
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=BILLING_VOICE)
            )
        ),
    ),
    description="Answers questions about the caller's bill and balance.",
    instruction=(
        "You are the billing specialist. Answer in one or two short sentences. Use the "
        "get_balance tool for the balance. For anything that is not about billing, "
        "transfer back to front_desk."
    ),
    tools=[get_balance],
)

root_agent = Agent(
    name="front_desk",
    model=MODEL,
    description="Greets the caller and routes them to the right specialist.",
    instruction=(
        "You are the front desk of a small company. Greet the caller and answer in one or "
        "two short sentences. Hand every question about bills, invoices or the balance "
        "to the billing agent."
    ),
    sub_agents=[billing],
)
