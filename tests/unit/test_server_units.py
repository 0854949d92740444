"""The server's pure parts: token and Origin checks, rate limit, error tally, options."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adkvoice.errors import ConfigError
from adkvoice.server import ServeOptions, is_loopback
from adkvoice.server.limits import ErrorTally, TokenBucket
from adkvoice.server.security import (
    RedactTokens,
    cross_site_refusal,
    host_ok,
    origin_ok,
    redact,
    token_ok,
)
from adkvoice.server.ws import close_reason


@pytest.mark.parametrize(
    ("headers", "query", "ok"),
    [
        ({}, {}, False),
        ({"authorization": "Bearer tok"}, {}, True),
        ({"authorization": "bearer tok"}, {}, True),
        ({"authorization": "Bearer nope"}, {}, False),
        ({"authorization": "Basic tok"}, {}, False),
        ({}, {"token": "tok"}, True),
        ({}, {"token": "tok2"}, False),
        ({}, {"token": ""}, False),
    ],
)
def test_token(headers: dict[str, str], query: dict[str, str], ok: bool) -> None:
    assert token_ok("tok", headers, query) is ok
    assert token_ok(None, headers, query) is True  # no token configured: open


@pytest.mark.parametrize(
    ("origin", "host", "scheme", "allowed", "ok"),
    [
        (None, "127.0.0.1:8000", "ws", (), True),  # not a browser
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws", (), True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "http", (), True),
        ("https://127.0.0.1:8000", "127.0.0.1:8000", "ws", (), False),  # scheme differs
        ("https://example.com", "example.com", "wss", (), True),
        ("https://example.com:443", "example.com", "wss", (), True),  # default port
        ("http://LOCALHOST:8000", "localhost:8000", "ws", (), True),
        ("http://evil.example", "127.0.0.1:8000", "ws", (), False),
        ("http://127.0.0.1:9999", "127.0.0.1:8000", "ws", (), False),  # other port
        ("https://app.example.com", "10.0.0.1:8000", "ws", ("https://app.example.com",), True),
        ("https://app.example.com/", "h", "ws", ("https://app.example.com",), True),
        ("https://other.example.com", "h", "ws", ("https://app.example.com",), False),
        ("http://anything", "h", "ws", ("*",), True),
        ("null", "h", "ws", (), False),
        ("null", "h", "ws", ("null",), True),
        ("not a url", "h", "ws", (), False),
        ("http://[::1]:8000", "[::1]:8000", "ws", (), True),
        ("http://h:bad", "h", "ws", (), False),
    ],
)
def test_origin(
    origin: str | None, host: str, scheme: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_ok(origin, host_header=host, scheme=scheme, allowed=allowed) is ok


@pytest.mark.parametrize(
    ("host", "token", "allowed", "ok"),
    [
        ("127.0.0.1:8000", None, (), True),
        ("localhost:8000", None, (), True),
        ("LOCALHOST", None, (), True),
        ("app.localhost:8000", None, (), True),  # browsers resolve *.localhost to loopback
        ("[::1]:8000", None, (), True),
        ("127.9.9.9", None, (), True),
        ("rebind.example:8000", None, (), False),  # DNS rebinding
        ("localhost.rebind.example", None, (), False),
        ("127.0.0.1.rebind.example", None, (), False),
        ("", None, (), False),
        (None, None, (), False),
        ("rebind.example", "t", (), True),  # the token guards
        ("voice.example.com", None, ("voice.example.com",), True),
        ("VOICE.example.com:443", None, ("voice.example.com",), True),
        ("other.example.com", "t", ("voice.example.com",), False),  # the list narrows it
        ("anything", None, ("*",), True),
        ("192.168.1.5:8000", None, (), False),
    ],
)
def test_host(host: str | None, token: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert host_ok(host, token=token, bind_host="127.0.0.1", allowed_hosts=allowed) is ok


def test_the_address_served_on_is_a_name_the_server_answers_to() -> None:
    assert host_ok("10.1.2.3:80", token=None, bind_host="10.1.2.3", allowed_hosts=("x",))
    assert host_ok("[fe80::1]:80", token=None, bind_host="[fe80::1]", allowed_hosts=("x",))


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ({}, None),  # terminals and scripts
        ({"sec-fetch-site": "same-origin"}, None),
        ({"sec-fetch-site": "none"}, None),  # typed into the address bar
        ({"sec-fetch-site": "cross-site"}, "other sites"),  # <img>, no-cors fetch, a link
        ({"sec-fetch-site": "same-site"}, "other sites"),  # another port of localhost
        ({"origin": "http://evil.example", "host": "127.0.0.1:8000"}, "origin"),
        ({"origin": "http://127.0.0.1:8000", "host": "127.0.0.1:8000"}, None),
        (
            {
                "origin": "https://app.example.com",
                "host": "127.0.0.1:8000",
                "sec-fetch-site": "cross-site",
            },
            None,  # listed with --allow-origin
        ),
    ],
)
def test_cross_site(headers: dict[str, str], refused: str | None) -> None:
    got = cross_site_refusal(headers, scheme="http", allowed_origins=("https://app.example.com",))
    if refused is None:
        assert got is None
    else:
        assert got is not None
        assert refused in got


@pytest.mark.parametrize("name", ["http://x.example", "x.example:8000", "a b", ""])
def test_allow_host_takes_a_bare_name(name: str) -> None:
    with pytest.raises(ConfigError, match="--allow-host"):
        ServeOptions(allowed_hosts=(name,)).validate()
    ServeOptions(allowed_hosts=("x.example", "::1", "*")).validate()


def test_redaction() -> None:
    line = '127.0.0.1:5 - "WebSocket /ws/1?is_audio=true&token=abc123" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /ws/1?is_audio=true&token=***" [accepted]'
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', ("c", "GET", "/x?token=t"), None
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == 'c - "GET /x?token=***"'
    assert isinstance(record.args, tuple)
    assert len(record.args) == 3


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=100.0, capacity=200.0)
    assert bucket.take(200, now=0.0)  # the burst
    assert not bucket.take(1, now=0.0)
    assert not bucket.take(60, now=0.5)  # 50 refilled
    assert bucket.take(50, now=0.5)
    assert bucket.take(200, now=10.0)  # refills up to capacity only
    assert not bucket.take(1, now=10.0)


def test_error_tally_logs_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    tally = ErrorTally(logging.getLogger("test.tally"), "session s")
    with caplog.at_level(logging.INFO, logger="test.tally"):
        for _ in range(50):
            tally.record("invalid_json", "bad json")
        tally.record("invalid_base64", "bad base64")
    assert len(caplog.records) == 2
    assert tally.total == 51
    assert tally.summary() == "invalid_base64 x1, invalid_json x50"
    assert tally.should_notify("x", now=0.0, every_s=1.0)
    assert not tally.should_notify("x", now=0.5, every_s=1.0)
    assert tally.should_notify("x", now=1.0, every_s=1.0)


def test_close_reason_fits_the_limit() -> None:
    assert close_reason("short") == "short"
    long = close_reason("é" * 200)
    assert len(long.encode()) <= 123
    assert long.endswith("...")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("myhost", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ServeOptions(host="0.0.0.0"), "without a token"),
        (ServeOptions(token="  "), "empty"),
        (ServeOptions(port=70000), "not a TCP port"),
        (ServeOptions(log_level="chatty"), "log-level"),
        (ServeOptions(allowed_origins=("app.example.com",)), "needs a scheme"),
        (ServeOptions(max_sessions=0), "max_sessions must be positive"),
        (ServeOptions(audio_rate_slack=0), "audio_rate_slack"),
        (ServeOptions(drain_timeout_s=-1), "drain_timeout_s"),
        (ServeOptions(keyfile=Path("k.pem")), "both --certfile and --keyfile"),
    ],
)
def test_options_validation(options: ServeOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        options.validate()


def test_options_defaults_are_safe() -> None:
    options = ServeOptions()
    options.validate()
    assert options.host == "127.0.0.1"
    assert options.token is None
    assert options.audio_bytes_per_s == 40_000
    assert options.audio_burst_bytes == 64_000
    ServeOptions(host="0.0.0.0", token="t", allowed_origins=("*", "null")).validate()
