"""The browser client (adkvoice/static) in headless Chromium against `adkvoice serve` and
the in-process emulator: typed turns, a spoken turn through a fake microphone, and
reconnecting after the server restarts. Nothing is mocked: the server runs the real ADK.

Needs /usr/bin/chromium (Debian's `chromium`) and `playwright` (the Python package only;
no `playwright install`); skipped with the reason when either is missing.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adkvoice.server import AgentServer, ServeOptions
from tests.integration.emulator_support import running_emulator
from tests.integration.server_support import make_agent

from .support import (
    STEP_MS,
    chromium,
    hosting,
    missing_browser,
    open_page,
    send_text,
    stats,
    wait_for_stats,
    write_fake_mic_wav,
)

_MISSING = missing_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"browser tests: {_MISSING}"),
]

TEST_TIMEOUT_S = 45
GREETING = "Hello! I'm the adkvoice emulator"

# Records the successive lengths of the newest agent bubble, to see the reply stream in.
WATCH_AGENT_TEXT = """() => {
  window.__lengths = [];
  const box = document.getElementById("messages");
  new MutationObserver(() => {
    const bubbles = box.querySelectorAll(".msg.agent");
    const last = bubbles[bubbles.length - 1];
    if (last) window.__lengths.push(last.textContent.length);
  }).observe(box, { childList: true, subtree: true, characterData: true });
}"""


@pytest.mark.parametrize("protocol", ["adkvoice.v1", "seeds"])
async def test_typed_turns_stream_into_the_page(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    from playwright.async_api import expect

    query = "?session=typed" + ("&protocol=seeds" if protocol == "seeds" else "")
    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch, emulator={"text_chunk_delay_s": 0.01}) as host,
        chromium() as browser,
    ):
        page, log = await open_page(browser, host.server.url + "/" + query)
        await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
        assert (await stats(page))["protocol"] == protocol
        await page.evaluate(WATCH_AGENT_TEXT)

        await send_text(page, "hello")
        await expect(page.locator(".msg.user").last).to_have_text("hello")
        agent = page.locator(".msg.agent").last
        await expect(agent).to_contain_text(GREETING, timeout=STEP_MS)
        await expect(agent).not_to_have_class(re.compile(r"\bpartial\b"), timeout=STEP_MS)
        lengths = await page.evaluate("() => window.__lengths")
        assert len(set(lengths)) > 3, f"the reply did not stream in: {lengths}"

        # A tool call: the extension shows it; both end with the answer.
        await send_text(page, "what time is it?")
        await expect(page.locator(".msg.agent").last).to_contain_text(
            "It is 10:42.", timeout=STEP_MS
        )
        tools = page.locator(".msg.tool")
        if protocol == "adkvoice.v1":
            await expect(tools.last).to_contain_text("get_current_time")
            await expect(tools.last).to_contain_text('"time":"10:42"')
            await expect(page.locator("#usage")).to_contain_text("tokens:")
        else:
            assert await tools.count() == 0  # the seeds' protocol has no tool events
        assert await page.locator(".msg.notice.error").count() == 0
        assert log.errors == []
        assert not [line for line in log.console if line.startswith("error")], log.console
        assert host.emulator.stats.user_texts == ["hello", "what time is it?"]


async def test_spoken_turn_from_a_fake_microphone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    wav = tmp_path / "fake-mic.wav"
    speech_s = await write_fake_mic_wav(wav)
    assert speech_s > 0.5
    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch) as host,
        chromium(fake_mic=wav) as browser,
    ):
        page, log = await open_page(browser, host.server.url + "/?session=spoken")
        await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
        await page.click("#startAudioButton")
        await expect(page.locator("#startAudioButton")).to_have_text("Stop Audio")
        await expect(page.locator("#status")).to_have_text("connected · audio", timeout=STEP_MS)

        # The microphone's speech reaches the server; the emulator's VAD ends the utterance
        # and its placeholder transcript comes back as the user's spoken bubble.
        user = page.locator(".msg.user.spoken").last
        await expect(user).to_have_text(re.compile(r"^\[speech \d+\.\d s\]$"), timeout=STEP_MS)
        agent = page.locator(".msg.agent.spoken").last
        await expect(agent).to_contain_text("You said: [speech ", timeout=STEP_MS)
        # The reply's audio reached the player worklet, which played it.
        await wait_for_stats(page, "s.audioBytesIn > 24000 && s.samplesPlayed > 12000")
        page_stats = await stats(page)
        assert page_stats["protocol"] == "adkvoice.v1"
        assert page_stats["audioBytesOut"] > 32_000 * speech_s  # 16 kHz s16le, sent as binary
        assert host.emulator.stats.utterances == 1
        assert host.emulator.stats.audio_in_bytes > 32_000 * speech_s
        # Switching to audio is not a resumed conversation worth a notice.
        assert await page.locator(".msg.notice").count() == 0
        await page.screenshot(path=str(tmp_path / "spoken-turn.png"))

        await page.click("#startAudioButton")  # Stop Audio: back to text on a new socket
        await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
        await expect(page.locator("#mode")).to_have_text("text")
        assert log.errors == []


async def test_page_reconnects_after_the_server_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.async_api import expect

    store = InMemorySessionService()  # outlives the server, as a SQLite file would

    def options(port: int) -> ServeOptions:
        return ServeOptions(
            port=port, handle_signals=False, endpoint_label="emulator", session_service=store
        )

    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        running_emulator(monkeypatch) as emulator,
        chromium() as browser,
    ):
        first = AgentServer(make_agent(), options(0))
        await first.start()
        port = first.port
        try:
            page, _log = await open_page(browser, first.url + "/?session=restart")
            await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
            await send_text(page, "my name is Ada")
            await expect(page.locator(".msg.agent").last).to_have_text(
                "You said: my name is Ada", timeout=STEP_MS
            )
        finally:
            await first.shutdown()
        await expect(page.locator("#status")).to_contain_text("1001", timeout=STEP_MS)
        await expect(page.locator("#status")).to_contain_text("reconnecting")
        await expect(page.locator("#sendButton")).to_be_disabled()

        async with AgentServer(make_agent(), options(port)) as second:
            await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
            await expect(page.locator(".msg.notice").last).to_have_text(
                "continuing the conversation"
            )
            await send_text(page, "what did I say?")
            await expect(page.locator(".msg.agent").last).to_have_text(
                "Before that you said: my name is Ada", timeout=STEP_MS
            )
            page_stats = await stats(page)
            assert page_stats["connects"] == 2
            assert page_stats["lastClose"]["code"] in (1001, 1006)
            assert second.hub.active == 1
        assert emulator.stats.setups == 2


# Records whether the "still working" bubble was ever shown.
WATCH_WORKING = """() => {
  window.__working = 0;
  const box = document.getElementById("messages");
  new MutationObserver((records) => {
    for (const record of records)
      for (const node of record.addedNodes)
        if (node.classList && node.classList.contains("working")) window.__working += 1;
  }).observe(box, { childList: true });
}"""


async def test_answers_in_several_turns_and_background_tools_on_38(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gemini 3.8 answers "count to three" in three turns (the page shows it still working
    between them) and runs the time tool in the background (the call shows so, then its
    result with when the model speaks it)."""
    from playwright.async_api import expect

    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch, model="gemini-3.8-live", emulator={"audio_pacing": 1.0}) as host,
        chromium() as browser,
    ):
        page, log = await open_page(browser, host.server.url + "/?session=turns38")
        await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
        await page.evaluate(WATCH_WORKING)
        await send_text(page, "count to three")
        agents = page.locator(".msg.agent")
        await expect(agents.last).to_have_text("Three.", timeout=STEP_MS)
        texts = await agents.all_inner_texts()
        assert texts[-3:] == ["One.", "Two.", "Three."]
        assert await page.evaluate("() => window.__working") == 2  # between the turns
        await expect(page.locator(".msg.working")).to_have_count(0)  # gone once idle

        await send_text(page, "what time is it?")
        await expect(agents.last).to_have_text("It is 10:42.", timeout=STEP_MS)
        tool = page.locator(".msg.tool").last
        await expect(tool).to_have_class(re.compile(r"\bbackground\b"))
        await expect(tool).to_contain_text('"time":"10:42"')
        await expect(tool).to_contain_text("spoken when the agent is free")
        assert log.errors == []
        assert [s.response_modality for s in host.emulator.stats.setup_log] == ["AUDIO"]
