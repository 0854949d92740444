"""What a user reads when PostgreSQL cannot be used: one line, the password hidden."""

import socket

import pytest
from sqlalchemy.exc import DBAPIError

from adkvoice.store.postgres import store_error

LABEL = "postgresql://bob:***@db:5432/adk"


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _dbapi(message: str, sqlstate: str | None) -> DBAPIError:
    return DBAPIError("SELECT 1", None, _DriverError(message, sqlstate))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            ConnectionRefusedError(111, "refused"),
            f"cannot reach PostgreSQL at {LABEL}: connection refused (is it running, and listening "
            "on that address and port?)",
        ),
        (
            socket.gaierror(-2, "Name or service not known"),
            f"cannot reach PostgreSQL at {LABEL}: unknown host",
        ),
        (TimeoutError(), f"cannot reach PostgreSQL at {LABEL}: no answer within the timeout"),
        (
            _dbapi('password authentication failed for user "bob"', "28P01"),
            f'PostgreSQL at {LABEL} refused: password authentication failed for user "bob" '
            "(check the user and password in --sessions)",
        ),
        (
            _dbapi('database "adk" does not exist', "3D000"),
            f'PostgreSQL at {LABEL} refused: database "adk" does not exist (create the database '
            "(createdb) or fix its name in --sessions)",
        ),
        (
            _dbapi("connection was closed\nin the middle", None),
            f"lost the connection to PostgreSQL at {LABEL}: connection was closed",
        ),
        (_dbapi("disk full", "53100"), f"PostgreSQL at {LABEL} failed: disk full"),
    ],
)
def test_store_errors(exc: BaseException, expected: str) -> None:
    error = store_error(exc, LABEL)
    assert error is not None
    assert str(error) == expected


def test_other_errors_are_not_the_store_s() -> None:
    assert store_error(ValueError("a bug"), LABEL) is None
