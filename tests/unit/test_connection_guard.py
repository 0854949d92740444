"""The connection guard's policy: which half-sent requests are closed, when, and what is
logged about it (pure: time is passed in)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adkvoice.errors import ConfigError
from adkvoice.server import ServeOptions
from adkvoice.server.guard import OVER_CAP, SLOW, CloseTally, ConnectionGuard, PendingRequests


def test_a_pending_request_expires_at_its_deadline() -> None:
    pending: PendingRequests[str] = PendingRequests(deadline_s=10.0, cap=8)
    assert pending.begin("a", now=0.0) == []
    assert pending.begin("b", now=4.0) == []
    assert pending.next_deadline() == 10.0
    assert pending.expired(now=9.9) == []
    assert pending.expired(now=10.0) == ["a"]
    assert "a" not in pending
    assert pending.next_deadline() == 14.0
    assert pending.expired(now=100.0) == ["b"]
    assert pending.next_deadline() is None
    assert len(pending) == 0


def test_more_bytes_of_the_same_request_do_not_move_its_deadline() -> None:
    pending: PendingRequests[str] = PendingRequests(deadline_s=10.0, cap=8)
    pending.begin("slow", now=0.0)
    for t in range(1, 10):  # a byte a second
        pending.begin("slow", now=float(t))
    assert pending.expired(now=10.0) == ["slow"]


def test_a_completed_request_is_not_closed() -> None:
    pending: PendingRequests[str] = PendingRequests(deadline_s=1.0, cap=8)
    pending.begin("fast", now=0.0)
    pending.begin("slow", now=0.1)
    pending.finish("fast")
    pending.finish("unknown")  # closed before it was ever pending: nothing to do
    assert pending.next_deadline() == pytest.approx(1.1)
    assert pending.expired(now=5.0) == ["slow"]


def test_a_kept_alive_connection_gets_a_new_deadline_for_its_next_request() -> None:
    pending: PendingRequests[str] = PendingRequests(deadline_s=10.0, cap=8)
    pending.begin("kept", now=0.0)
    pending.finish("kept")  # first request complete
    pending.begin("other", now=5.0)
    pending.begin("kept", now=20.0)  # second request begins
    assert pending.expired(now=25.0) == ["other"]
    assert pending.expired(now=29.9) == []
    assert pending.expired(now=30.0) == ["kept"]


def test_one_too_many_closes_the_oldest_not_the_newcomer() -> None:
    pending: PendingRequests[int] = PendingRequests(deadline_s=10.0, cap=3)
    for n in range(3):
        assert pending.begin(n, now=float(n)) == []
    assert pending.begin(3, now=3.0) == [0]
    assert pending.begin(3, now=3.5) == []  # already pending: no one else pays for it
    pending.finish(2)
    assert pending.begin(4, now=4.0) == []  # room again
    assert pending.begin(5, now=5.0) == [1]
    assert [k for k in (3, 4, 5) if k in pending] == [3, 4, 5]
    assert pending.next_deadline() == 13.0


def test_a_flood_keeps_the_newest_within_the_cap() -> None:
    pending: PendingRequests[int] = PendingRequests(deadline_s=10.0, cap=256)
    evicted: list[int] = []
    for n in range(2000):
        evicted += pending.begin(n, now=n / 1000)
    assert len(pending) == 256
    assert evicted == list(range(2000 - 256))
    assert 1999 in pending  # the fresh one (a health check, say) is still there


def test_the_tally_says_the_first_close_at_once_then_counts_once_a_minute() -> None:
    tally = CloseTally(deadline_s=10.0, cap=256, every_s=60.0)
    assert tally.line(now=0.0) is None  # nothing closed, nothing to say
    tally.record(OVER_CAP)
    first = tally.line(now=100.0)
    assert first is not None
    assert "1 oldest of too many" in first
    assert "10 s" in first
    assert "256" in first
    assert "once every 60 s" in first
    tally.record(OVER_CAP, 500)
    tally.record(SLOW, 3)
    assert tally.due_at() == 160.0
    assert tally.line(now=120.0) is None
    summary = tally.line(now=160.0)
    assert summary is not None
    assert "500 oldest of too many" in summary
    assert "3 too slow" in summary
    assert tally.line(now=1000.0) is None  # said everything
    assert tally.due_at() is None
    tally.record(SLOW)
    assert tally.due_at() == 220.0
    final = tally.line(now=161.0, final=True)  # the server stops: say it anyway
    assert final is not None
    assert "1 too slow" in final
    assert tally.totals == {OVER_CAP: 501, SLOW: 4}


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


async def test_the_guard_closes_on_the_loop_and_logs_sparingly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="adkvoice.server")
    guard = ConnectionGuard(deadline_s=0.2, cap=2)
    a, b, c, done = FakeTransport(), FakeTransport(), FakeTransport(), FakeTransport()
    guard.pending(a)
    guard.pending(done)
    guard.complete(done)
    guard.pending(b)
    guard.pending(c)  # a is the oldest of three
    assert a.aborted
    assert not b.aborted
    assert not c.aborted
    await asyncio.sleep(0.35)
    assert b.aborted
    assert c.aborted
    assert not done.aborted
    guard.closed(b)  # connection_lost after the abort: already forgotten
    guard.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "adkvoice.server"]
    assert len(lines) == 2, lines  # the first close, then the rest at stop: not one each
    assert "1 oldest of too many" in lines[0]
    assert "2 too slow" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ServeOptions(request_timeout_s=0), "request_timeout_s must be positive"),
        (ServeOptions(request_timeout_s=-1.0), "request_timeout_s must be positive"),
        (ServeOptions(max_pending_connections=0), "max_pending_connections must be positive"),
    ],
)
def test_options_validation(options: ServeOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        options.validate()


def test_options_defaults() -> None:
    options = ServeOptions()
    assert options.request_timeout_s == 10.0
    assert options.max_pending_connections == 256
    options.validate()
