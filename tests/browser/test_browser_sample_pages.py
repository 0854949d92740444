"""The ADK streaming sample's own page, as it behaves, against `adkvoice serve`: it keeps
one global socket, opens a second one with the same session id on Start Audio (leaving
the first open), and reconnects 5 s after any close. The script below does the same from
serve's origin; it is written from the sample's documented behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .support import STEP_MS, chromium, hosting, missing_browser

_MISSING = missing_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"browser tests: {_MISSING}"),
]

TEST_TIMEOUT_S = 60

SAMPLE_PAGE = """async () => {
  const sessionId = "4242";
  const log = { opened: 0, closed: [], texts: [], audioFrames: 0, completes: 0 };
  let websocket = null;
  let isAudio = false;
  function connect() {
    const ws = new WebSocket(`ws://${location.host}/ws/${sessionId}?is_audio=${isAudio}`);
    websocket = ws;
    ws.onopen = () => { log.opened += 1; };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.turn_complete) { log.completes += 1; return; }
      if (message.mime_type === "audio/pcm") log.audioFrames += 1;
      if (message.mime_type === "text/plain") log.texts.push(message.data);
    };
    ws.onclose = (event) => {
      log.closed.push(`${event.code} ${event.reason}`);
      setTimeout(connect, 5000);
    };
  }
  const until = async (check) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  };
  const send = (text) => websocket.send(JSON.stringify({ mime_type: "text/plain", data: text }));
  connect();
  await until(() => log.opened === 1);
  send("my name is Ada");
  await until(() => log.completes === 1);
  isAudio = true;  // Start Audio: a second socket, the first left open
  connect();
  await until(() => log.opened === 2);
  send("what did I say?");
  await until(() => log.completes === 2);
  await new Promise((r) => setTimeout(r, 6000));  // past the page's 5 s reconnect
  window.__sample = log;
  return log;
}"""


async def test_the_sample_pages_two_sockets_do_not_flap(monkeypatch: pytest.MonkeyPatch) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with hosting(monkeypatch) as host, chromium() as browser:
            page = await browser.new_page()
            page.set_default_timeout(STEP_MS)
            await page.goto(f"{host.server.url}/healthz")  # serve's origin, no script of ours
            log = await page.evaluate(SAMPLE_PAGE)
    assert log["closed"] == []  # nothing closed, so the page never reconnected
    assert log["opened"] == 2
    assert log["completes"] == 2
    assert "".join(log["texts"]).endswith("Before that you said: my name is Ada")
    assert log["audioFrames"] > 0  # the newer, audio socket carried the second answer


# The SSE version of the sample: an EventSource on /events/ID, a fetch POST to /send/ID
# for each message and each 0.2 s of microphone audio; Start Audio closes the EventSource
# and opens another with is_audio=true; on any error it closes and reconnects after 5 s.
SSE_SAMPLE_PAGE = """async () => {
  const sessionId = "4343";
  const log = { opened: 0, errors: [], texts: [], audioFrames: 0, completes: 0, failedPosts: [] };
  let eventSource = null;
  let isAudio = false;
  function connectSSE() {
    eventSource = new EventSource(`http://${location.host}/events/${sessionId}?is_audio=${isAudio}`);
    eventSource.onopen = () => { log.opened += 1; };
    eventSource.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.turn_complete) { log.completes += 1; return; }
      if (message.mime_type === "audio/pcm") log.audioFrames += 1;
      if (message.mime_type === "text/plain") log.texts.push(message.data);
    };
    eventSource.onerror = () => {
      log.errors.push(`error on is_audio=${isAudio}`);
      eventSource.close();
      setTimeout(connectSSE, 5000);
    };
  }
  async function sendMessage(message) {
    try {
      const response = await fetch(`http://${location.host}/send/${sessionId}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(message),
      });
      if (!response.ok) log.failedPosts.push(`${response.status} ${await response.text()}`);
    } catch (error) {
      log.failedPosts.push(String(error));
    }
  }
  const until = async (check) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  };
  connectSSE();
  await until(() => log.opened === 1);
  await sendMessage({ mime_type: "text/plain", data: "my name is Ada" });
  await until(() => log.completes === 1);
  isAudio = true;  // Start Audio: close the stream, reopen it in audio mode
  eventSource.close();
  connectSSE();
  await until(() => log.opened === 2);
  const silence = btoa(String.fromCharCode(...new Uint8Array(6400)));  // 0.2 s at 16 kHz
  for (let i = 0; i < 3; i++) {
    await sendMessage({ mime_type: "audio/pcm", data: silence });
    await new Promise((r) => setTimeout(r, 200));
  }
  await sendMessage({ mime_type: "text/plain", data: "what did I say?" });
  await until(() => log.completes === 2);
  await new Promise((r) => setTimeout(r, 1000));  // an error would show by now
  eventSource.close();
  return log;
}"""


async def test_the_sse_sample_page_talks_and_switches_to_audio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with hosting(monkeypatch) as host, chromium() as browser:
            page = await browser.new_page()
            page.set_default_timeout(STEP_MS)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))

            def on_console(msg: Any) -> None:
                # Chromium asks for /favicon.ico, which serve does not have.
                if msg.type == "error" and not msg.location["url"].endswith("/favicon.ico"):
                    problems.append(f"{msg.text} ({msg.location['url']})")

            page.on("console", on_console)
            await page.goto(f"{host.server.url}/healthz")  # serve's origin, no script of ours
            log = await page.evaluate(SSE_SAMPLE_PAGE)
    assert log["errors"] == []  # no stream failed, so the page never reconnected
    assert log["failedPosts"] == []
    assert problems == []
    assert log["opened"] == 2
    assert log["completes"] == 2
    assert "".join(log["texts"]).endswith("Before that you said: my name is Ada")
    assert log["audioFrames"] > 0  # the audio stream carried the second answer
