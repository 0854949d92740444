"""What WebSocket close codes mean to a user, in one line each."""

from __future__ import annotations

_MEANINGS: dict[int, str] = {
    1000: "the server ended the session normally",
    1001: "the server is going away (restarting or shutting down)",
    1002: "protocol error (for `adk api_server`: the session does not exist)",
    1006: "the connection dropped without a close frame (network failure or server crash)",
    1007: "the server rejected a message as invalid (wrong format or mime type)",
    1008: "the server refused the request (policy: bad model name, key or session)",
    1009: "a message was too large for the server",
    1011: "the server hit an internal error mid-conversation",
    1012: "the server is restarting",
    1013: "the server is overloaded: try again later",
}


def describe_close(code: int | None, reason: str = "") -> str:
    """`the server hit an internal error mid-conversation (close code 1011: <reason>)`."""
    if code is None:
        return reason or "the connection closed"
    meaning = _MEANINGS.get(code, "unexpected close")
    reason = reason.strip()
    if code == 1006:
        reason = ""  # the client made this reason up; the meaning says it all
    return (
        f"{meaning} (close code {code}: {reason})" if reason else f"{meaning} (close code {code})"
    )
