"""The page's Camera and Share screen buttons in headless Chromium against `adkvoice serve`
and the emulator: frames go out as adkvoice.v1 images, the model sees them (the emulator
answers "what do you see?" from what reached it), unchanged pictures are not sent again,
and a source stops when its button is pressed again or its track ends.

Chromium's fake capture devices stand in for the camera (`--use-fake-device-for-media-stream`,
a moving test pattern) and, headless, for the screen (`--use-fake-ui-for-media-stream`
accepts getDisplayMedia's picker). For a picture that stays still, the page's
getDisplayMedia is swapped for a painted canvas's stream.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from .support import (
    STEP_MS,
    chromium,
    hosting,
    missing_browser,
    open_page,
    send_text,
    stats,
    wait_for_stats,
)

_MISSING = missing_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"browser tests: {_MISSING}"),
]

TEST_TIMEOUT_S = 45
FAKE_MEDIA = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")

# getDisplayMedia replaced by a canvas that shows one colour until `window.__paint(colour)`.
STILL_SCREEN = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = 640;
  canvas.height = 480;
  const g = canvas.getContext("2d");
  let colour = "#ff0000";
  window.__paint = (c) => { colour = c; };
  setInterval(() => { g.fillStyle = colour; g.fillRect(0, 0, 640, 480); }, 50);
  g.fillStyle = colour;
  g.fillRect(0, 0, 640, 480);
  navigator.mediaDevices.getDisplayMedia = async () => canvas.captureStream(10);
}"""


async def connected_page(browser: Any, url: str) -> tuple[Any, Any]:
    from playwright.async_api import expect

    page, log = await open_page(browser, url)
    await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
    await expect(page.locator("#cameraButton")).to_be_enabled()
    return page, log


async def ask_what_it_sees(page: Any) -> str:
    from playwright.async_api import expect

    before = await page.locator(".msg.agent").count()
    await send_text(page, "what do you see?")
    answer = page.locator(".msg.agent").nth(before)
    await expect(answer).to_contain_text("I see ", timeout=STEP_MS)
    await expect(answer).not_to_have_class(re.compile(r"\bpartial\b"), timeout=STEP_MS)
    return str(await answer.text_content())


@pytest.mark.parametrize(
    ("button", "source", "stop_label"),
    [("#cameraButton", "camera", "Stop Camera"), ("#screenButton", "screen", "Stop Sharing")],
)
async def test_the_model_sees_the_camera_and_the_screen(
    monkeypatch: pytest.MonkeyPatch, button: str, source: str, stop_label: str
) -> None:
    from playwright.async_api import expect

    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch) as host,
        chromium(extra_args=FAKE_MEDIA) as browser,
    ):
        page, log = await connected_page(browser, host.server.url + f"/?session={source}")
        await page.click(button)
        await expect(page.locator(button)).to_have_text(stop_label)
        await expect(page.locator("#preview")).to_be_visible()
        await wait_for_stats(page, f's.video === "{source}" && s.imagesOut >= 2')
        label = page.locator("#videoLabel")
        await expect(label).to_have_text(re.compile(rf"^{source} · \d+ frames sent$"))

        answer = await ask_what_it_sees(page)
        # The fake devices' moving pattern, fitted to 768 px: every frame differs.
        match = re.match(r"I see (\d+) frame\(s\), 768×4\d\d, mostly \w+ \(#[0-9a-f]{6}\)", answer)
        assert match, answer
        sight = host.emulator.stats.connection_log[-1].sight
        assert 2 <= int(match.group(1)) <= sight.frames
        assert sight.frames <= (await stats(page))["imagesOut"]

        # Pressed again: the source stops, and no more frames go out.
        await page.click(button)
        await expect(page.locator(button)).to_have_text(
            "Camera" if source == "camera" else "Share screen"
        )
        await expect(label).to_have_text("")
        await expect(page.locator("#preview")).to_be_hidden()
        sent = (await stats(page))["imagesOut"]
        await asyncio.sleep(1.5)
        assert (await stats(page))["imagesOut"] == sent
        assert (await stats(page))["video"] == ""
        assert await page.locator(".msg.notice.error").count() == 0
        assert log.errors == []


async def test_a_still_picture_is_sent_once_and_a_change_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.async_api import expect

    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch) as host,
        chromium(extra_args=FAKE_MEDIA) as browser,
    ):
        page, log = await connected_page(browser, host.server.url + "/?session=still")
        await page.evaluate(STILL_SCREEN)
        await page.click("#screenButton")
        await wait_for_stats(page, "s.imagesOut === 1 && s.imagesSkipped >= 2", timeout_ms=6000)
        await expect(page.locator("#videoLabel")).to_have_text("screen · 1 frame sent")
        answer = await ask_what_it_sees(page)
        assert answer.startswith("I see 1 frame(s), 640×480, mostly red (#"), answer

        await page.evaluate("() => window.__paint('#0000ff')")
        await wait_for_stats(page, "s.imagesOut === 2", timeout_ms=3000)
        answer = await ask_what_it_sees(page)
        assert re.match(
            r"I see 2 frame\(s\), 640×480, mostly blue \(#[0-9a-f]{6}\), changed", answer
        ), answer
        assert host.emulator.stats.connection_log[-1].sight.frames == 2

        # The browser's "Stop sharing" ends the track: the page stops by itself.
        await page.evaluate(
            """() => document.getElementById("preview").srcObject.getVideoTracks()[0]
                .dispatchEvent(new Event("ended"))"""
        )
        await expect(page.locator("#screenButton")).to_have_text("Share screen")
        await expect(page.locator("#videoLabel")).to_have_text("")
        assert (await stats(page))["video"] == ""
        assert log.errors == []


async def test_the_seeds_protocol_offers_no_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.async_api import expect

    async with (
        asyncio.timeout(TEST_TIMEOUT_S),
        hosting(monkeypatch) as host,
        chromium(extra_args=FAKE_MEDIA) as browser,
    ):
        page, log = await open_page(browser, host.server.url + "/?session=s&protocol=seeds")
        await expect(page.locator("#status")).to_have_text("connected", timeout=STEP_MS)
        for button in ("#cameraButton", "#screenButton"):
            await expect(page.locator(button)).to_be_disabled()
            await expect(page.locator(button)).to_have_attribute("title", re.compile("adkvoice.v1"))
        assert log.errors == []
