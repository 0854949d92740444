"""Secrets out of everything adkvoice logs or shows: one `redact` for log lines,
tracebacks and error messages.

Two nets. Values the process knows are secret (the API key, tokens, URL and database
passwords) are registered at start and hidden wherever they appear. Patterns catch the
ones it was not told about: credential headers (`Authorization: Bearer …`,
`x-goog-api-key: …`, also as a dict or bytes-tuple repr), `token=…`-style query
parameters, Google API keys and `scheme://user:password@host` passwords.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
# Shorter registered values would hide ordinary words and numbers all over the output.
MIN_SECRET_CHARS = 6

_HEADER_NAMES = r"(?:proxy-)?authorization|x-goog-api-key|x-api-key"
_HEADER = re.compile(
    rf"""
    (\b(?:{_HEADER_NAMES})
      (?:\s*[:=]\s*                  # Authorization: Bearer X
        |['"]\s*[:,]\s*b?['"]        # 'authorization': 'Bearer X', b'authorization', b'…'
      )
      (?:(?:bearer|basic|token|apikey)\s+)?+  # the scheme stays readable (never the value)
    )
    (?!(?:\.\.\.|…)(?![^\s'",;`)]))   # a placeholder ("Bearer …")
    [^\s'",;`)]+
    """,
    re.IGNORECASE | re.VERBOSE,
)
_QUERY = re.compile(
    r"""
    ((?:\b(?:access_token|refresh_token|id_token|token|api_key|apikey|client_secret
           |password|passwd)
       |[?&]key)
     =['"]?)
    (?!(?:\.\.\.|…)(?![^&\s'"\#<>`)]))   # a placeholder ("add ?token=...")
    [^&\s'"#<>`)]+
    """,
    re.IGNORECASE | re.VERBOSE,
)
_GOOGLE_API_KEY = re.compile(r"AIza[0-9A-Za-z_-]{35}")
# The password runs to the last @ before the path: an unencoded @ in it hides whole.
_URL_PASSWORD = re.compile(r"""(\b[a-z][a-z0-9+.-]*://[^\s:/?#@'"]*:)[^\s/?#'"]+(?=@)""", re.I)

_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Hide `value` from now on wherever it appears (also percent-encoded, as in a URL).
    None, and values too short to be secrets, are ignored."""
    global _secret_pattern
    if value is None or len(value.strip()) < MIN_SECRET_CHARS:
        return
    value = value.strip()
    forms = {value, quote(value, safe="")}
    if forms <= _secrets:
        return
    _secrets.update(forms)
    # Longest first, so a secret that contains another is hidden whole.
    ordered = sorted(_secrets, key=len, reverse=True)
    _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_url_password(url: str | None) -> None:
    """Register the password in `scheme://user:password@host…`, as written and decoded."""
    if not url or "@" not in url:
        return
    userinfo, at, _host = urlsplit(url).netloc.rpartition("@")
    _user, colon, password = userinfo.partition(":")
    if at and colon:
        register_secret(password)
        register_secret(unquote(password))


def forget_secrets() -> None:
    """Clear the registry (tests)."""
    global _secret_pattern
    _secrets.clear()
    _secret_pattern = None


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by `***`; anything else unchanged."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _HEADER.sub(rf"\1{MASK}", text)
    text = _QUERY.sub(rf"\1{MASK}", text)
    text = _GOOGLE_API_KEY.sub(MASK, text)
    return _URL_PASSWORD.sub(rf"\1{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """Formats with the handler's own formatter, then redacts the final text: message,
    arguments, traceback and stack alike."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def redact_log_handlers() -> None:
    """Make every handler configured so far (on the root and on any named logger)
    write redacted text. Idempotent; call it after configuring logging."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in list(logging.Logger.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in list(logger.handlers):
            if not isinstance(handler.formatter, RedactingFormatter):
                handler.setFormatter(RedactingFormatter(handler.formatter))
