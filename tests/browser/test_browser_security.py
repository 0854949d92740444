"""Other websites against `adkvoice serve`, in headless Chromium: a page on another
origin that fires the requests a page can send without asking (an image, no-cors
fetches, a WebSocket), and a DNS-rebinding site whose name resolves to 127.0.0.1.
Neither may reach the agent."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import logging
import threading
from collections.abc import Iterator

import pytest

from .support import STEP_MS, chromium, hosting, missing_browser

_MISSING = missing_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(_MISSING is not None, reason=f"browser tests: {_MISSING}"),
]

TEST_TIMEOUT_S = 45

# Everything a page on another site can send to the server without a CORS grant.
ATTACK = """async (base) => {
  const outcomes = {};
  const img = new Image();
  img.src = base + "/chat/stream?query=attack+by+image";
  const tries = {
    get: () => fetch(base + "/chat/stream?query=attack+by+get", { mode: "no-cors" }),
    post: () => fetch(base + "/chat/stream", {
      method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" },
      body: JSON.stringify({ query: "attack by post" }),
    }),
  };
  for (const [name, go] of Object.entries(tries)) {
    try { await go(); outcomes[name] = "sent"; } catch (e) { outcomes[name] = "failed"; }
  }
  outcomes.ws = await new Promise((resolve) => {
    const ws = new WebSocket(base.replace("http", "ws") + "/ws/attack?is_audio=false");
    ws.onopen = () => ws.send(JSON.stringify({ mime_type: "text/plain", data: "attack by ws" }));
    ws.onclose = (e) => resolve(`closed ${e.code} ${e.reason}`);
    setTimeout(() => resolve("timeout"), 5000);
  });
  return outcomes;
}"""


@contextlib.contextmanager
def attacker_site() -> Iterator[str]:
    """Another site on this machine (localhost, another port: cross-site to 127.0.0.1),
    serving one harmless page; the URL of that page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><p>cat pictures</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/cats.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_a_page_on_another_site_cannot_drive_the_agent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with hosting(monkeypatch) as host, chromium() as browser:
            page = await browser.new_page()
            page.set_default_timeout(STEP_MS)
            with attacker_site() as attacker:
                await page.goto(attacker)
                outcomes = await page.evaluate(ATTACK, host.server.url)
            await asyncio.sleep(1.0)  # the image and fetches have landed
            assert outcomes["ws"].startswith("closed 1008"), outcomes
            # Each request reached the server and was refused before the agent ran (the
            # browser then also blocks the page from reading the refusal).
            statuses = [
                line.rsplit(" ", 1)[-1]
                for line in caplog.messages
                if "/chat/stream" in line and "HTTP/1.1" in line
            ]
            assert sorted(statuses) == ["403", "403", "403"], caplog.messages
            assert host.emulator.stats.user_texts == []
            assert host.emulator.stats.rest_requests == 0


async def test_a_rebinding_site_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """rebind.example resolves to 127.0.0.1: to the browser it is the attacker's own
    origin, so the Origin check alone lets its page chat. The Host check refuses it."""
    async with asyncio.timeout(TEST_TIMEOUT_S):
        async with hosting(monkeypatch) as host:
            port = host.server.port
            rules = "--host-resolver-rules=MAP rebind.example 127.0.0.1"
            async with chromium(extra_args=(rules,)) as browser:
                page = await browser.new_page()
                page.set_default_timeout(STEP_MS)
                response = await page.goto(f"http://rebind.example:{port}/")
                assert response is not None
                assert response.status == 403
                sse = await page.evaluate(
                    "async () => (await fetch('/chat/stream?query=rebound')).status"
                )
                assert sse == 403
                # The same page at a loopback name works.
                ok = await page.goto(f"http://127.0.0.1:{port}/")
                assert ok is not None
                assert ok.status == 200
            assert not [t for t in host.emulator.stats.user_texts if "rebound" in t]
