"""The pure bookkeeping behind surviving reconnects: turns, tool replay, held audio."""

from __future__ import annotations

from adkvoice.backends.recovery import (
    MAX_TURN_FAILURES,
    AnsweredFromHistory,
    AwaitServer,
    GiveUp,
    Retry,
    SendHold,
    ToolReplay,
    TurnLedger,
)
from adkvoice.events import AgentText, Interrupted, ToolCall, ToolResult, TurnComplete


def _ledger_with_turn_taken(text: str = "hi") -> tuple[TurnLedger, object]:
    ledger = TurnLedger()
    assert ledger.connected() is None
    request = object()
    ledger.sent(text, request)
    ledger.taken(request)
    return ledger, request


def test_a_turn_still_queued_is_not_repeated() -> None:
    ledger = TurnLedger()
    ledger.connected()
    ledger.sent("hi", object())  # never taken: the new connection will send it
    ledger.disconnected(failed=True)
    assert ledger.connected() is None


def test_a_turn_taken_by_a_lost_connection_is_repeated() -> None:
    ledger, _ = _ledger_with_turn_taken()
    ledger.disconnected(failed=True)
    assert ledger.connected() == Retry(text="hi", had_output=False, attempt=2)


def test_a_cut_reply_is_repeated_and_says_output_was_seen() -> None:
    ledger, _ = _ledger_with_turn_taken()
    ledger.observe(AgentText(text="Hel", partial=True))
    ledger.disconnected(failed=True)
    outcome = ledger.connected()
    assert isinstance(outcome, Retry)
    assert outcome.had_output


def test_an_answered_turn_is_not_repeated() -> None:
    ledger, _ = _ledger_with_turn_taken()
    ledger.observe(AgentText(text="Hello", partial=True))
    assert ledger.observe(TurnComplete())
    ledger.disconnected(failed=True)
    assert ledger.connected() is None


def test_a_tool_rounds_turn_complete_does_not_end_the_turn() -> None:
    ledger, _ = _ledger_with_turn_taken()
    assert not ledger.observe(ToolCall(call_id="1", name="t", args={}))
    assert not ledger.observe(TurnComplete())  # 2.x ends the model turn after a tool call
    assert not ledger.observe(ToolResult(call_id="1", name="t", response={}, duration_s=0))
    ledger.disconnected(failed=True)
    assert isinstance(ledger.connected(), Retry)


def test_history_that_ends_with_the_turn_answers_it_without_a_resend() -> None:
    ledger, _ = _ledger_with_turn_taken("what time is it")
    ledger.disconnected(failed=True)
    assert ledger.connected(history_ends_with_user=True) == AnsweredFromHistory(had_output=False)
    # The replayed history is now in flight on the new connection.
    ledger.disconnected(failed=True)
    assert isinstance(ledger.connected(), Retry)


def test_a_turn_that_keeps_breaking_the_connection_is_given_up() -> None:
    ledger, request = _ledger_with_turn_taken()
    for _ in range(MAX_TURN_FAILURES - 1):
        ledger.disconnected(failed=True)
        assert isinstance(ledger.connected(), Retry)
        ledger.resent(request)
        ledger.taken(request)
    ledger.disconnected(failed=True)
    assert ledger.connected() == GiveUp(text="hi", failures=MAX_TURN_FAILURES)
    assert ledger.pending is None


def test_go_away_reconnects_do_not_count_as_failures() -> None:
    ledger, request = _ledger_with_turn_taken()
    for _ in range(MAX_TURN_FAILURES + 2):
        ledger.disconnected(failed=False)
        assert isinstance(ledger.connected(), Retry)
        ledger.resent(request)
        ledger.taken(request)


def test_interruption_does_not_end_the_turn() -> None:
    ledger, _ = _ledger_with_turn_taken()
    assert not ledger.observe(Interrupted())
    assert ledger.pending is not None


def test_tool_replay_answers_only_a_repeated_turn_once_per_recorded_call() -> None:
    replay = ToolReplay()
    replay.new_turn()
    assert replay.lookup("clock", {}) is None  # first time: the tool runs
    replay.record("clock", {}, {"time": "10:42"})
    assert replay.lookup("clock", {}) is None  # same turn, not repeated: runs again
    replay.repeating()
    assert replay.lookup("clock", {"tz": "UTC"}) is None  # other arguments: runs
    assert replay.lookup("clock", {}) == {"time": "10:42"}
    assert replay.lookup("clock", {}) is None  # each recorded result is used once
    replay.new_turn()
    replay.repeating()
    assert replay.lookup("clock", {}) is None
    assert replay.replayed == 1


def test_tool_replay_matches_arguments_regardless_of_key_order() -> None:
    replay = ToolReplay()
    replay.record("f", {"a": 1, "b": 2}, {"ok": True})
    replay.repeating()
    assert replay.lookup("f", {"b": 2, "a": 1}) == {"ok": True}


def test_audio_hold_keeps_the_newest_audio_and_counts_what_it_dropped() -> None:
    hold: SendHold[bytes] = SendHold(max_audio_bytes=10)
    assert not hold.add(b"aaaa", audio_bytes=4)
    assert not hold.add(b"bbbb", audio_bytes=4)
    assert hold.add(b"cccc", audio_bytes=4)  # first drop reported once
    assert not hold.add(b"dddd", audio_bytes=4)
    assert hold.held_bytes == 8
    assert hold.dropped_bytes == 8
    assert hold.take() == [b"cccc", b"dddd"]
    assert hold.held_bytes == 0
    assert hold.dropped_bytes == 0


def test_send_hold_keeps_typed_turns_in_order_and_drops_only_audio() -> None:
    hold: SendHold[str] = SendHold(max_audio_bytes=4)
    hold.add("a1", audio_bytes=4)
    hold.add("hello")
    hold.add("a2", audio_bytes=4)
    assert hold.take() == ["hello", "a2"]


def test_a_remote_reconnect_waits_for_the_server_before_resending() -> None:
    ledger, _ = _ledger_with_turn_taken()
    ledger.observe(AgentText(text="Hel", partial=True))
    ledger.disconnected(failed=True)
    assert ledger.connected(history_ends_with_user=None) == AwaitServer(text="hi", had_output=True)
    assert ledger.pending is not None
    assert not ledger.pending.output_seen
    ledger.observe(AgentText(text="Hello", partial=True))
    assert ledger.observe(TurnComplete())
    assert ledger.pending is None
