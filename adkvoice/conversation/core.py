"""The conversation core: one place where a conversation's events meet its sinks.

Every command (chat, talk, serve's sessions) runs its conversation through a
`Conversation`: what the user sends goes to the backend and is published as an event
(`UserText`), every event from the backend goes to every sink in order, and the core adds
the events only it can know (`Interrupted(source="user")` when the user cuts in locally).
Sinks are plain objects with `handle(event)`: views, the speaker, the recorder. When an
answer is complete is decided once, in the backend (`AnswerComplete`); the core only
reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from adkvoice.backends.turns import is_agent_output
from adkvoice.errors import AdkVoiceError, ConnectionLostError, TurnTimeoutError
from adkvoice.events import (
    AgentAudio,
    AnswerComplete,
    Event,
    Interrupted,
    ToolCall,
    Transcript,
    TurnComplete,
    UserText,
)

if TYPE_CHECKING:
    from adkvoice.audio.playback import Playback
    from adkvoice.backends.base import Backend


class Sink(Protocol):
    def handle(self, event: Event) -> None: ...


class Conversation:
    """Routes one conversation's events to its sinks and knows whether an answer is owed."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self._sinks = list(sinks)
        # Set while no answer is owed: from the user's turn (typed or spoken) or the
        # agent's first output until `AnswerComplete`. A graceful shutdown waits for it.
        self.idle = asyncio.Event()
        self.idle.set()
        self.answers = 0  # completed answers so far
        self.failure: AdkVoiceError | None = None  # what ended the backend's stream
        self.ended = False
        self._progress = asyncio.Event()  # an answer completed, or the stream ended

    @property
    def answering(self) -> bool:
        return not self.idle.is_set()

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def publish(self, event: Event) -> None:
        """Fold `event` into the state and hand it to every sink, in order."""
        if isinstance(event, AnswerComplete):
            self.answers += 1
            self.idle.set()
            self._progress.set()
        elif isinstance(event, UserText | ToolCall | Transcript) or is_agent_output(event):
            self.idle.clear()
        for sink in self._sinks:
            sink.handle(event)

    def user_cut_in(self) -> None:
        """The user spoke over the agent (local voice detection or the talk key): the
        agent's audio stops now, before the model notices."""
        self.publish(Interrupted(source="user"))

    async def run(self, backend: Backend) -> None:
        """Publish the backend's events until its stream ends; keep the error that ended it."""
        try:
            async for event in backend.events():
                self.publish(event)
        except AdkVoiceError as exc:
            self.failure = exc
            raise
        finally:
            self.ended = True
            self._progress.set()

    async def wait_answer(self, after: int, timeout_s: float | None) -> None:
        """Until more than `after` answers are complete. Raises the backend's failure, a
        `ConnectionLostError` when the stream ended first, `TurnTimeoutError` on timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.answers <= after and not self.ended:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise TurnTimeoutError(
                f"no complete reply within {timeout_s:g} s (--timeout); the agent or "
                "the model is too slow or stuck"
            ) from None
        if self.answers > after:
            return
        if self.failure is not None:
            raise self.failure
        raise ConnectionLostError("the live session ended before the reply completed")

    async def ask(self, backend: Backend, text: str, timeout_s: float | None) -> None:
        """One typed turn: publish it, send it, wait for its answer."""
        if self.failure is not None:
            raise self.failure
        before = self.answers
        self.publish(UserText(text=text))
        await backend.send_text(text)
        await self.wait_answer(before, timeout_s)


class SpeakerSink:
    """The agent's audio to the speaker: queued as it arrives, flushed on any interruption
    (the model's, the user's, a lost connection's), ended with the answer, and with each
    turn of an answer given in several (its tail plays now, not when the next turn comes,
    and the wait for the next turn is not taken for a stutter)."""

    def __init__(self, playback: Playback) -> None:
        self.playback = playback

    def handle(self, event: Event) -> None:
        if isinstance(event, AgentAudio):
            self.playback.enqueue(event.pcm, event.sample_rate)
        elif isinstance(event, Interrupted):
            self.playback.flush()
        elif isinstance(event, AnswerComplete) or (
            isinstance(event, TurnComplete) and event.interaction == "in_progress"
        ):
            self.playback.end_reply()
