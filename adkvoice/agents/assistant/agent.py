"""The agent `adkvoice chat` and `adkvoice talk` use when no agent path is given."""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.adk.agents import Agent

DEFAULT_LIVE_MODEL = "gemini-3.1-flash-live-preview"


def get_current_time(timezone: str = "") -> dict[str, str]:
    """Returns the current date and time.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris"; empty for local time.
    """
    if timezone:
        try:
            now = dt.datetime.now(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            return {"status": "error", "error": f"unknown time zone {timezone!r}"}
    else:
        now = dt.datetime.now().astimezone()
    return {
        "status": "success",
        "time": now.strftime("%H:%M"),
        "date": now.strftime("%A %d %B %Y"),
        "timezone": now.tzname() or "local",
        "iso": now.isoformat(timespec="seconds"),
    }


root_agent = Agent(
    name="assistant",
    model=os.environ.get("ADKVOICE_MODEL", DEFAULT_LIVE_MODEL),
    description="A helpful voice assistant.",
    instruction=(
        "You are a helpful, concise voice assistant. Answer in one or two short "
        "sentences, as you would speak them. Use the get_current_time tool whenever "
        "the user asks about the time or the date."
    ),
    tools=[get_current_time],
)
