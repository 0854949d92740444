"""Who may use the server: the token and the browser Origin check (pure functions).

Token: `Authorization: Bearer <token>` or `?token=<token>` (browsers cannot set headers on
a WebSocket or an EventSource, so the query form exists). Compared in constant time.

Origin: browsers send `Origin` on WebSocket handshakes and cross-origin requests; a page
on another site must not drive the agent with the user's network position. Requests
without `Origin` (terminals, scripts) pass; they are what the token is for. The server's
own origin always passes; others only when listed (`"*"` allows any).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)


def supplied_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = query.get("token")
    return token if token else None


def token_ok(expected: str | None, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    if not expected:
        return True
    got = supplied_token(headers, query)
    return got is not None and hmac.compare_digest(got.encode(), expected.encode())


def _origin_key(scheme: str, host: str, port: int | None) -> tuple[str, str, int]:
    scheme = _WEB_SCHEME.get(scheme.lower(), scheme.lower())
    return scheme, host.lower().strip("[]"), port or _DEFAULT_PORTS.get(scheme, 0)


def _parse_origin(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return _origin_key(parts.scheme, parts.hostname, port)


def _own_origin(host_header: str, scheme: str) -> tuple[str, str, int] | None:
    return _parse_origin(f"{_WEB_SCHEME.get(scheme, scheme)}://{host_header}")


def origin_ok(
    origin: str | None, *, host_header: str | None, scheme: str, allowed: tuple[str, ...]
) -> bool:
    """May a page from `origin` use this server (reached as `host_header` over `scheme`)?"""
    if origin is None:
        return True
    if "*" in allowed:
        return True
    origin = origin.strip()
    if origin == "null":
        return "null" in allowed
    key = _parse_origin(origin)
    if key is None:
        return False
    if host_header and key == _own_origin(host_header, scheme):
        return True
    return any(key == _parse_origin(item) for item in allowed if item not in ("*", "null"))


def redact(text: str) -> str:
    """Hide `token=...` in anything logged (access logs print query strings)."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    """Logging filter that removes tokens from uvicorn's access and error lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact in place, keeping the shape of `args` (uvicorn's AccessFormatter unpacks it).
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
