"""The conversation core: fan-out to sinks, the answer waiter, the idle state, cut-ins,
and the supervisor that keeps failures from vanishing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adkvoice import events as ev
from adkvoice.conversation.core import Conversation
from adkvoice.errors import ConnectionLostError, TurnTimeoutError
from adkvoice.tasks import Supervisor


class Collect:
    def __init__(self) -> None:
        self.seen: list[ev.Event] = []

    def handle(self, event: ev.Event) -> None:
        self.seen.append(event)


class ScriptedBackend:
    """Answers each typed turn with the given events (an in-memory stand-in)."""

    def __init__(self, answer: list[ev.Event], *, end_after: int | None = None) -> None:
        self._answer = answer
        self._queue: asyncio.Queue[ev.Event | None] = asyncio.Queue()
        self._end_after = end_after
        self.sent: list[str] = []

    async def send_text(self, text: str) -> None:
        self.sent.append(text)
        if self._end_after is not None and len(self.sent) > self._end_after:
            self._queue.put_nowait(None)
            return
        for event in self._answer:
            self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[ev.Event]:
        while (event := await self._queue.get()) is not None:
            yield event


ANSWER = [
    ev.ToolCall(call_id="1", name="t", args={}),
    ev.TurnComplete(),
    ev.AgentText(text="done", partial=False),
    ev.TurnComplete(),
    ev.AnswerComplete(),
]


async def test_every_sink_sees_every_event_in_order_with_the_users_turn_first() -> None:
    first, second = Collect(), Collect()
    conversation = Conversation([first, second])
    backend = ScriptedBackend(ANSWER)
    pump = asyncio.create_task(conversation.run(backend))  # type: ignore[arg-type]
    await conversation.ask(backend, "hi", timeout_s=5)  # type: ignore[arg-type]
    pump.cancel()
    assert first.seen == second.seen
    assert isinstance(first.seen[0], ev.UserText)
    assert first.seen[1:] == ANSWER
    assert conversation.answers == 1


async def test_idle_only_between_answers() -> None:
    conversation = Conversation()
    assert conversation.idle.is_set()
    conversation.publish(ev.UserText(text="hi"))
    assert conversation.answering
    conversation.publish(ev.TurnComplete())  # a tool round's turn: still answering
    assert conversation.answering
    conversation.publish(ev.AnswerComplete())
    assert conversation.idle.is_set()


async def test_a_local_cut_in_is_an_event_every_sink_sees() -> None:
    sink = Collect()
    conversation = Conversation([sink])
    conversation.user_cut_in()
    assert sink.seen == [ev.Interrupted(source="user", at=sink.seen[0].at)]


async def test_waiting_for_an_answer_times_out_in_one_line() -> None:
    conversation = Conversation()
    backend = ScriptedBackend([])
    with pytest.raises(TurnTimeoutError, match=r"no complete reply within 0\.05 s"):
        await conversation.ask(backend, "hi", timeout_s=0.05)  # type: ignore[arg-type]


async def test_a_stream_that_ends_mid_answer_is_an_error_not_a_hang() -> None:
    conversation = Conversation()
    backend = ScriptedBackend(ANSWER, end_after=0)
    pump = asyncio.create_task(conversation.run(backend))  # type: ignore[arg-type]
    with pytest.raises(ConnectionLostError, match="ended before the reply completed"):
        await conversation.ask(backend, "hi", timeout_s=5)  # type: ignore[arg-type]
    await pump


async def test_a_failing_side_task_ends_the_command_with_its_error() -> None:
    supervisor = Supervisor()

    async def key_handler() -> None:
        raise ValueError("key handling broke")

    forever = supervisor.spawn(asyncio.Event().wait(), name="main")
    supervisor.spawn(key_handler(), name="key")
    with pytest.raises(ValueError, match="key handling broke"):
        async with asyncio.timeout(5):
            await supervisor.run_until_first_done([forever])
    assert forever.cancelled()


async def test_a_failure_from_a_thread_ends_the_command() -> None:
    supervisor = Supervisor()
    loop = asyncio.get_running_loop()
    forever = supervisor.spawn(asyncio.Event().wait(), name="main")
    await asyncio.to_thread(loop.call_soon_threadsafe, supervisor.fail, OSError("tty gone"))
    with pytest.raises(OSError, match="tty gone"):
        async with asyncio.timeout(5):
            await supervisor.run_until_first_done([forever])


class FakePlayback:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def enqueue(self, pcm: bytes, sample_rate: int) -> None:
        self.calls.append("audio")

    def flush(self) -> None:
        self.calls.append("flush")

    def end_reply(self) -> None:
        self.calls.append("end")


def test_speaker_ends_each_turn_of_an_answer_given_in_several() -> None:
    from adkvoice.conversation.core import SpeakerSink

    playback = FakePlayback()
    sink = SpeakerSink(playback)  # type: ignore[arg-type]
    audio = ev.AgentAudio(pcm=b"\x00\x00")
    for event in (
        audio,
        ev.TurnComplete(interaction="in_progress"),  # "let me look", then a background tool
        audio,
        ev.TurnComplete(interaction="idle"),
        ev.AnswerComplete(),
        audio,
        ev.TurnComplete(),  # a 2.x tool round's turn: the answer goes on
        ev.Interrupted(),
    ):
        sink.handle(event)
    assert playback.calls == ["audio", "end", "audio", "end", "audio", "flush"]
