"""`redaction.redact`: registered secrets and credential patterns become ***, in every
form they are logged or printed; ordinary text passes unchanged."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from adkvoice.config import register_env_secrets, register_settings_secrets
from adkvoice.redaction import (
    RedactingFormatter,
    forget_secrets,
    redact,
    redact_log_handlers,
    register_secret,
    register_url_password,
)

KEY = "AIzaSyD3adB33fC0ffee0123456789abcdefGHI"  # the shape of a Google API key
assert len(KEY) == 39


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Header lines, as websockets and uvicorn log them.
        ("> Authorization: Bearer tok-123.abc", "> Authorization: Bearer ***"),
        ("< authorization: Bearer tok-123.abc", "< authorization: Bearer ***"),
        ("> Authorization: Basic dXNlcjpwYXNz==", "> Authorization: Basic ***"),
        ("Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: Basic ***"),
        ("> x-goog-api-key: opaque-key-value", "> x-goog-api-key: ***"),
        ("X-Goog-Api-Key:opaque-key-value", "X-Goog-Api-Key:***"),
        ("x-api-key: abcdef123", "x-api-key: ***"),
        ("Authorization: sometoken", "Authorization: ***"),
        # Dict reprs and JSON.
        (
            "{'authorization': 'Bearer tok-123', 'host': 'h'}",
            "{'authorization': 'Bearer ***', 'host': 'h'}",
        ),
        ('{"Authorization": "Bearer tok-123"}', '{"Authorization": "Bearer ***"}'),
        ("{'x-goog-api-key': 'opaque-key-value'}", "{'x-goog-api-key': '***'}"),
        # Bytes-tuple reprs (httpx, h11).
        ("[(b'authorization', b'Bearer tok-123')]", "[(b'authorization', b'Bearer ***')]"),
        ("(b'x-goog-api-key', b'opaque-key-value')", "(b'x-goog-api-key', b'***')"),
        # Query strings.
        (
            "GET /ws/1?is_audio=true&token=abc123 HTTP/1.1",
            "GET /ws/1?is_audio=true&token=*** HTTP/1.1",
        ),
        ("/x?token=abc&y=1", "/x?token=***&y=1"),
        ("wss://h/ws?key=opaque-key-value&alt=sse", "wss://h/ws?key=***&alt=sse"),
        ("https://h/v1?access_token=ya29.abc", "https://h/v1?access_token=***"),
        ("url?api_key=zzz123", "url?api_key=***"),
        ("RemoteBackend(token='abc123')", "RemoteBackend(token='***')"),
        ("RemoteBackend(token=abc123)", "RemoteBackend(token=***)"),
        ("host=db user=bob password=s3cret", "host=db user=bob password=***"),
        # Google API keys anywhere.
        (f"api_key={KEY}", "api_key=***"),
        (f"the key {KEY} leaked", "the key *** leaked"),
        (f"wss://h/ws?alt=x&foo={KEY}", "wss://h/ws?alt=x&foo=***"),
        # URL passwords: the user and host stay.
        ("postgresql://adkvoice:pw@db:5432/x", "postgresql://adkvoice:***@db:5432/x"),
        ("postgresql+asyncpg://bob:p%40ss@db/adk", "postgresql+asyncpg://bob:***@db/adk"),
        ("ws://user:S3cret@127.0.0.1:1/ws/x", "ws://user:***@127.0.0.1:1/ws/x"),
        ("cannot reach 'wss://u:p@ss@h/ws/x'", "cannot reach 'wss://u:***@h/ws/x'"),
        ("redis://:onlypass@cache", "redis://:***@cache"),
    ],
)
def test_patterns_hide_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello there, what time is it?",
        "Bearer of good news: the authorization step passed",
        "ws://127.0.0.1:8000/ws/abc?is_audio=true&voice=Kore",
        "https://example.com/search?q=key&monkey=1&keys=2",
        "http://127.0.0.1:8000/path@version",
        "postgresql://bob@db/adk",
        "max_tokens=10 total_token_count=5",
        "121 tokens · first output 151 ms",
        "user@example.com wrote: AIza is not a key",
        json.dumps({"type": "text", "text": "hi", "turn_complete": True, "usage": {"tokens": 3}}),
        '{"mime_type": "audio/pcm", "data": "AAAAAQAB"}',
        # Placeholders in messages and help text are not secrets.
        "missing or wrong token: add ?token=...",
        "(close code 1008: missing or wrong token: add ?token=...)",
        "header `Authorization: Bearer …` or `?token=`",
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nValueError: bad',
    ],
)
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert redact(text) == text


def test_registered_secrets_are_hidden_anywhere() -> None:
    register_secret("plain-token-42")
    assert redact("sent plain-token-42 twice: plain-token-42") == "sent *** twice: ***"
    assert redact("{'t': 'plain-token-42'}") == "{'t': '***'}"


def test_a_registered_secret_is_hidden_percent_encoded_too() -> None:
    register_secret("a b/c+d")
    assert redact("x?t=a%20b%2Fc%2Bd&u=1") == "x?t=***&u=1"


def test_short_and_missing_values_are_not_registered() -> None:
    register_secret("abc")
    register_secret(None)
    register_secret("     ")
    assert redact("abc abcdef") == "abc abcdef"


def test_the_longer_of_overlapping_secrets_is_hidden_whole() -> None:
    register_secret("secret")
    register_secret("secret-and-more")
    assert redact("x secret-and-more y") == "x *** y"


def test_url_passwords_register_as_written_and_decoded() -> None:
    register_url_password("ws://me:p%40ssw0rd@host/ws/x")
    assert redact("Basic auth for p@ssw0rd failed") == "Basic auth for *** failed"
    assert redact("p%40ssw0rd") == "***"
    register_url_password("ws://host/ws/x")
    register_url_password(None)


def test_redaction_is_idempotent() -> None:
    register_secret("plain-token-42")
    once = redact(f"Authorization: Bearer plain-token-42 key {KEY} ws://a:b@c token=x")
    assert redact(once) == once


def test_env_secrets_skip_the_emulator_placeholder() -> None:
    register_env_secrets(
        {"GOOGLE_API_KEY": "emulator", "GEMINI_API_KEY": "gemini-key-1", "HOME": "/home/me"}
    )
    assert redact("emulator gemini-key-1 /home/me") == "emulator *** /home/me"


def test_settings_secrets() -> None:
    register_settings_secrets(
        token="serve-token-9", url="ws://u:urlpass1@h/ws/x", sessions="postgresql://a:dbpass1@db/x"
    )
    assert redact("serve-token-9 urlpass1 dbpass1") == "*** *** ***"


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("cannot reach ws://u:hunter22@h/ws/x")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_formatter_redacts_message_arguments_and_traceback() -> None:
    formatter = RedactingFormatter(logging.Formatter("%(name)s: %(message)s"))
    line = formatter.format(_record("> %s: %s", "Authorization", "Bearer tok-123", exc=True))
    assert line.startswith("t: > Authorization: Bearer ***\nTraceback")
    assert "tok-123" not in line
    assert "hunter22" not in line
    assert "ws://u:***@h/ws/x" in line


def test_log_handlers_are_wrapped_once_and_keep_their_format() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    logger = logging.getLogger("adkvoice.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        redact_log_handlers()
        redact_log_handlers()
        assert isinstance(handler.formatter, RedactingFormatter)
        assert not isinstance(handler.formatter.inner, RedactingFormatter)
        logger.error("x-goog-api-key: %s", "opaque-key-value")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert stream.getvalue() == "[ERROR] x-goog-api-key: ***\n"


def test_what_the_user_sees_hides_secrets() -> None:
    from adkvoice.backends.endpoints import endpoint_for
    from adkvoice.errors import ConfigError
    from adkvoice.events import ErrorEvent, Notice
    from adkvoice.ui.chat_view import PlainChatView
    from adkvoice.ui.lines import error_line, notice_line
    from adkvoice.wire.seeds import SeedsClientCodec

    url = "ws://me:hunter22@h:8000/ws/x"
    endpoint = endpoint_for(url, modality="TEXT")
    assert endpoint.description(SeedsClientCodec(is_audio=False)).startswith(
        "ws://me:***@h:8000/ws/x · "
    )
    with pytest.raises(ConfigError) as refused:
        endpoint_for("http://me:hunter22@h/ws/x", modality="TEXT")
    assert "hunter22" not in str(refused.value)
    assert notice_line(Notice(message=f"connected to {url}")).plain == (
        "! connected to ws://me:***@h:8000/ws/x"
    )
    assert error_line(ErrorEvent(message=f"key {KEY}")).plain == "✗ key ***"
    out, err = io.StringIO(), io.StringIO()
    PlainChatView(out, err).handle(ErrorEvent(message="Authorization: Bearer tok-123"))
    assert err.getvalue() == "error: Authorization: Bearer ***\n"


def test_the_server_filter_keeps_format_strings_working() -> None:
    from adkvoice.server.security import RedactTokens

    record = logging.LogRecord("uvicorn.error", logging.DEBUG, "", 0, "password=%s", ("pw1",), None)
    assert RedactTokens().filter(record)
    # Still formattable; the handler's formatter hides what only the whole line shows.
    assert RedactingFormatter().format(record) == "password=***"
    plain = logging.LogRecord("uvicorn.error", logging.DEBUG, "", 0, "< x-api-key: k-123", (), None)
    assert RedactTokens().filter(plain)
    assert plain.getMessage() == "< x-api-key: ***"
