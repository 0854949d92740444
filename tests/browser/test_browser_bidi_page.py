"""A page that behaves as ADK bidi-demo's own (tests/browser/bidi_page: binary 16 kHz PCM
frames from a worklet, typed turns as JSON, ADK Event JSON rendered into bubbles) against
`adkvoice serve`'s `/ws/USER/SESSION`, from serve's origin: the page is served among a
copy of serve's static files, so its scripts pass serve's Content-Security-Policy."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from adkvoice.server import app as server_app

from .support import STEP_MS, chromium, hosting, missing_browser, write_fake_mic_wav

_MISSING = missing_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"browser tests: {_MISSING}"),
]

TEST_TIMEOUT_S = 60
NATIVE_AUDIO = "gemini-2.5-flash-native-audio-latest"
PAGE = Path(__file__).parent / "bidi_page"


def serve_the_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """serve's static files plus the page, as serve's /static; the page's path."""
    static = tmp_path / "static"
    shutil.copytree(server_app.static_dir(), static)
    shutil.copytree(PAGE, static / "bidi_page")
    monkeypatch.setattr(server_app, "static_dir", lambda: static)
    return "/static/bidi_page/index.html"


async def bubbles(page: Any, selector: str) -> list[str]:
    texts: list[str] = await page.locator(selector).all_text_contents()
    return texts


async def wait_for_bubble(page: Any, selector: str, text: str) -> None:
    await page.locator(selector, has_text=text).first.wait_for(timeout=STEP_MS)


async def type_a_turn(page: Any, text: str) -> None:
    await page.wait_for_function("() => window.bidiLog && window.bidiLog.opened === 1")
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def test_typed_and_spoken_turns_on_a_native_audio_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mic = tmp_path / "speech.wav"
    await write_fake_mic_wav(mic)
    path = serve_the_page(monkeypatch, tmp_path)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with (
            hosting(monkeypatch, model=NATIVE_AUDIO) as host,
            chromium(fake_mic=mic) as browser,
        ):
            page = await browser.new_page()
            page.set_default_timeout(STEP_MS)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            await page.goto(f"{host.server.url}{path}")
            await type_a_turn(page, "my name is Ada")
            # A model that only speaks: the reply is its transcript, and speech.
            await wait_for_bubble(page, ".agent.transcription", "You said: my name is Ada")
            await page.wait_for_function("() => window.bidiLog.turnCompletes >= 1")
            await page.click("#startAudioButton")
            await wait_for_bubble(page, ".user.transcription", "[speech ")
            await wait_for_bubble(page, ".agent.transcription", "You said: [speech ")
            await page.wait_for_function("() => window.bidiLog.turnCompletes >= 2")
            log = await page.evaluate("() => window.bidiLog")
            users = await bubbles(page, ".user")
    assert problems == []
    assert log["closed"] == []
    assert log["audioChunks"] > 0
    assert log["sentFrames"] > 100
    assert set(log["frameBytes"]) == {256}  # the demo's frame size
    assert users[0] == "my name is Ada"
    assert host.emulator.stats.utterances == 1


async def test_typed_turn_on_a_text_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = serve_the_page(monkeypatch, tmp_path)
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with hosting(monkeypatch) as host, chromium() as browser:
            page = await browser.new_page()
            page.set_default_timeout(STEP_MS)
            await page.goto(f"{host.server.url}{path}")
            await type_a_turn(page, "what time is it?")
            await wait_for_bubble(page, ".agent.text", "It is 10:42.")
            await page.wait_for_function("() => window.bidiLog.turnCompletes >= 2")
            log = await page.evaluate("() => window.bidiLog")
            agent = await bubbles(page, ".agent")
    assert log["closed"] == []
    assert log["audioChunks"] == 0
    # The demo's page appends the whole text ADK sends after its deltas to the same
    # bubble (it skips it only after a transcript), so a text reply shows twice there.
    assert agent == ["It is 10:42.It is 10:42."]
