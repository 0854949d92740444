"""What every HTTP response of `serve` gets: the Host check and the security headers.

An ASGI middleware outside every route, so no route can forget either. WebSocket
handshakes pass through: their endpoint refuses with a close code and reason, the only
thing a browser shows of a refused WebSocket.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adkvoice.server.options import ServeOptions
from adkvoice.server.security import host_name

log = logging.getLogger("adkvoice.server")

# The page loads its own script, style and audio worklets and talks to its own server:
# nothing inline, nothing from elsewhere, never inside another site's frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # `/?token=…` must not leak to other sites through Referer.
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"microphone=(self), camera=(self), display-capture=(self)"),
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, options: ServeOptions) -> None:
        self.app = app
        self.options = options
        self._refused_hosts: set[str] = set()  # names logged once each, not per request

    def host_allowed(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        if self.options.answers_to(host):
            return True
        name = host_name(host)[:100]
        if name not in self._refused_hosts and len(self._refused_hosts) < 100:
            self._refused_hosts.add(name)
            log.warning(
                "refused requests for host %r: not a name this server answers to "
                "(--allow-host adds one); repeats are not logged",
                name,
            )
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        if not self.host_allowed(scope):
            body = (
                b"this server does not answer to that host name; reach it as 127.0.0.1 or "
                b"localhost, or start serve with --allow-host NAME\n"
            )
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)
