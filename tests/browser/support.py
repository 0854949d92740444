"""Helpers for the browser tests: the system Chromium under Playwright, a fake microphone
fed from a WAV of espeak-ng speech, and `adkvoice serve` + the in-process emulator.

Playwright drives Debian's `chromium` package (`executable_path`); `playwright install`
(which downloads a browser) is never needed. Everything binds 127.0.0.1 and every wait is
bounded.
"""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adkvoice.emulator.speech import make_tts, resample
from adkvoice.server import AgentServer, ServeOptions
from tests.integration.emulator_support import MODEL_2X, running_emulator
from tests.integration.server_support import Clock, make_agent

CHROMIUM = os.environ.get("ADKVOICE_CHROMIUM", "/usr/bin/chromium")
STEP_MS = 10_000  # a bound for any single wait on the page
FAKE_MIC_RATE = 48_000  # the fake capture device's own rate: no conversion in Chromium

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no `playwright install`)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        hint = f" (set ADKVOICE_CHROMIUM={found})" if found else ""
        return f"{CHROMIUM} is missing: apt-get install chromium{hint}"
    return None


async def write_fake_mic_wav(path: Path, text: str = "hello there emulator") -> float:
    """A 16-bit PCM mono WAV: 1 s of silence (the page connects while the device already
    runs), the spoken `text` (espeak-ng when installed, else tone bursts), 1.5 s of
    silence so the emulator's VAD ends the utterance. Returns the speech length in s."""
    pcm24 = await make_tts("auto").synthesize(text)
    speech = resample(pcm24, 24_000, FAKE_MIC_RATE)

    def silence(seconds: float) -> bytes:
        return b"\x00\x00" * int(FAKE_MIC_RATE * seconds)

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(FAKE_MIC_RATE)
        wav.writeframes(silence(1.0) + speech + silence(1.5))
    return len(speech) / 2 / FAKE_MIC_RATE


@asynccontextmanager
async def chromium(
    fake_mic: Path | None = None, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[Any]:
    """A headless system Chromium; with `fake_mic`, getUserMedia is granted and reads the
    WAV once (`%noloop`), then silence."""
    from playwright.async_api import async_playwright

    args = [*CHROMIUM_ARGS, *extra_args]
    if fake_mic is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={fake_mic}%noloop",
        ]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args, timeout=STEP_MS * 2)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageLog:
    """What the page said on its console and any uncaught errors."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


async def open_page(browser: Any, url: str) -> tuple[Any, PageLog]:
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(STEP_MS)
    page = await context.new_page()
    log = PageLog()
    page.on("pageerror", lambda exc: log.errors.append(str(exc)))
    page.on("console", lambda msg: log.console.append(f"{msg.type}: {msg.text}"))
    await page.goto(url)
    return page, log


async def stats(page: Any) -> dict[str, Any]:
    """The page's read-only debug counters (`window.adkvoice.stats`)."""
    result: dict[str, Any] = await page.evaluate("() => window.adkvoice.stats")
    return result


async def wait_for_stats(page: Any, condition: str, timeout_ms: int = STEP_MS) -> None:
    """Wait until `condition`, a JS expression over `s` (the stats), holds."""
    script = "() => { const s = window.adkvoice && window.adkvoice.stats; return !!s && (%s); }"
    await page.wait_for_function(script % condition, timeout=timeout_ms)


async def send_text(page: Any, text: str) -> None:
    await page.fill("#message", text)
    await page.press("#message", "Enter")


@dataclass
class Host:
    """The emulator and the agent server the page talks to."""

    emulator: Any
    server: AgentServer


@asynccontextmanager
async def hosting(
    monkeypatch: pytest.MonkeyPatch,
    *,
    emulator: dict[str, Any] | None = None,
    model: str = MODEL_2X,
    **options: Any,
) -> AsyncIterator[Host]:
    """The in-process emulator and `AgentServer` (127.0.0.1, port 0 unless given) for a
    test agent on `model`."""
    options.setdefault("port", 0)
    options.setdefault("handle_signals", False)
    options.setdefault("endpoint_label", "emulator")
    async with (
        running_emulator(monkeypatch, **(emulator or {})) as emu,
        AgentServer(make_agent(model, clock=Clock()), ServeOptions(**options)) as server,
    ):
        yield Host(emu, server)
