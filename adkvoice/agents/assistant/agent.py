"""The agent `adkvoice chat` and `adkvoice talk` use when no agent path is given."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.adk.agents import Agent

from adkvoice.agents.assistant.file_search import search_folder
from adkvoice.live_models import RECOMMENDED_MODEL

DEFAULT_LIVE_MODEL = RECOMMENDED_MODEL


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


async def search_files(query: str, folder: str = "") -> dict[str, object]:
    """Searches the text files in a folder and its subfolders for a word or phrase.

    Use it when the user asks which of their files mention something, or where they
    wrote something down. It reads every text file, so on a large folder it takes
    several seconds: tell the user you are looking while it runs.

    Args:
        query: The word or phrase to look for; case does not matter.
        folder: The folder to search; empty for the current directory.
    """
    return await asyncio.to_thread(search_folder, query, folder)


root_agent = Agent(
    name="assistant",
    model=os.environ.get("ADKVOICE_MODEL", DEFAULT_LIVE_MODEL),
    description="A helpful voice assistant.",
    instruction=(
        "You are a helpful, concise voice assistant. Answer in one or two short "
        "sentences, as you would speak them. Use the get_current_time tool whenever "
        "the user asks about the time or the date, and the search_files tool when they "
        "ask which of their files mention something."
    ),
    tools=[get_current_time, search_files],
)
