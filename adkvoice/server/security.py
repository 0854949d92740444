"""Who may use the server (pure functions): the token, the Host allow-list and the
browser checks.

Token: `Authorization: Bearer <token>` or `?token=<token>` (browsers cannot set headers on
a WebSocket or an EventSource, so the query form exists). Compared in constant time.

Host (DNS rebinding): a site whose name an attacker points at 127.0.0.1 is, to the
browser, the attacker's own origin, so its pages may read and drive a token-less local
server; its requests carry the attacker's name in `Host`. Without a token only loopback
names (localhost, 127.0.0.0/8, ::1), the address served on and `--allow-host` names pass.
With a token any name does (the token is the guard) unless `--allow-host` narrows it.

Browsers: a page on another site must not drive the agent with the user's network
position. `Origin` (sent on WebSocket handshakes and cross-origin requests) must be the
server's own or listed in `--allow-origin`. A request without `Origin` whose
`Sec-Fetch-Site` says another site sent it (an `<img>` tag, a no-cors fetch, a link) is
refused on the API routes. Requests with neither header come from terminals and scripts:
they pass, and are what the token is for.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from adkvoice.redaction import redact as redact_secrets

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WEB_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


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


def host_name(host_header: str | None) -> str:
    """The name in a `Host` header, lower case, without port or IPv6 brackets."""
    if not host_header:
        return ""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback_name(name: str) -> bool:
    """localhost (and *.localhost, which browsers resolve to loopback), 127.0.0.0/8, ::1."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_ok(
    host_header: str | None,
    *,
    token: str | None,
    bind_host: str,
    allowed_hosts: tuple[str, ...],
) -> bool:
    """May a request that names `host_header` be served (see the module doc)?"""
    if "*" in allowed_hosts or (token and not allowed_hosts):
        return True
    name = host_name(host_header)
    if not name:
        return False
    if is_loopback_name(name) or name == bind_host.strip("[]").lower():
        return True
    return name in (h.strip().lower() for h in allowed_hosts)


_OTHER_SITES = ("cross-site", "same-site")


def cross_site_refusal(
    headers: Mapping[str, str], *, scheme: str, allowed_origins: tuple[str, ...]
) -> str | None:
    """Why a browser request sent by another site is refused, or None if it may go on.
    `headers` has lower-case names."""
    origin = headers.get("origin")
    if origin is not None:
        if origin_ok(
            origin, host_header=headers.get("host"), scheme=scheme, allowed=allowed_origins
        ):
            return None
        return "this page's origin may not use this server"
    if headers.get("sec-fetch-site", "").strip().lower() in _OTHER_SITES:
        return "requests sent by other sites may not use this server"
    return None


def redact(text: str) -> str:
    """Hide tokens and other secrets in anything logged (`adkvoice.redaction`)."""
    return redact_secrets(text)


class RedactTokens(logging.Filter):
    """Logging filter that removes secrets from uvicorn's access and error lines, for
    handlers added after the server's (whose formatters redact everything)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Redact in place, keeping the shape of `args` (uvicorn's AccessFormatter unpacks it).
        # A format string is left alone: "password=%s" made "password=***" would no longer
        # take its argument, and logging would print the raw record to stderr.
        if isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True
