"""`adkvoice talk`: one voice conversation, wired on the event loop that app.py owns.

Microphone (or `--input-wav`) chunks go to the backend; agent audio goes to the speaker
through `Playback`; events go to the view and the recorder. Turn-taking:

- open mic (default): the model's activity detection decides when the user has finished;
- push-to-talk: the talk key sends activity start, pressing it again activity end.

Barge-in: when the user speaks over the agent (local voice detection, or the server's
`interrupted`), queued agent audio is flushed at once. Without echo cancellation the mic
is half-duplex while the agent speaks: the model hears silence unless the user's voice is
clearly louder than the echo (a higher barge-in threshold), so the agent does not hear
itself on laptop speakers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

from rich.text import Text

from adkvoice.backends.base import Backend
from adkvoice.capture import CaptureChunk
from adkvoice.dsp import EnergyVad, pcm_to_int16
from adkvoice.events import AgentAudio, Event, Interrupted, Notice
from adkvoice.keys import Command, TypedLine
from adkvoice.playback import Playback, ReplyStart
from adkvoice.recorder import Recorder
from adkvoice.talk_view import TalkView, latency_line, playback_finished
from adkvoice.tasks import cancel_and_wait
from adkvoice.turns import TurnTracker

SILENCE_CHUNK = bytes(640)  # 20 ms of 16 kHz s16le


@dataclass
class Latency:
    """End of user speech → first agent audio at the speaker, split by who spent it."""

    speech_end_at: float | None = None
    first_audio_at: float | None = None  # the backend delivered the reply's first chunk
    reported: bool = False


class TalkSession:
    def __init__(
        self,
        backend: Backend,
        view: TalkView,
        playback: Playback,
        *,
        push_to_talk: bool,
        half_duplex: bool,
        recorder: Recorder | None = None,
    ) -> None:
        self.backend = backend
        self.view = view
        self.playback = playback
        self.push_to_talk = push_to_talk
        self.half_duplex = half_duplex
        self.recorder = recorder
        self.vad = EnergyVad()
        # While the agent speaks without echo cancellation, only a clearly louder voice
        # counts as the user cutting in.
        self.barge_in_vad = EnergyVad(min_dbfs=-28.0, margin_db=18.0)
        self.turns = TurnTracker()
        self.latency = Latency()
        self.talking = False  # push-to-talk: the user's turn is open
        self.muted = False
        self.quit = asyncio.Event()
        self.answered = asyncio.Event()  # set each time the agent finishes an answer
        self.answered_turns = 0
        self.barge_ins = 0
        self.playback.on_reply_start = self._on_reply_start

    # -- microphone ---------------------------------------------------------------------
    async def pump_mic(self, source: AsyncIterable[CaptureChunk]) -> None:
        async for chunk in source:
            if self.quit.is_set():
                return
            self.view.state.mic_level_db = chunk.level_dbfs
            if self.recorder is not None:
                self.recorder.add_mic(chunk.pcm, chunk.captured_at)
            frame = pcm_to_int16(chunk.pcm)
            speaking = self.playback.playing
            if self.vad.feed(frame) == "speech_end":
                self.latency = Latency(speech_end_at=time.monotonic())
            barge = self.barge_in_vad.feed(frame) if speaking else None
            if speaking and (barge == "speech_start" or (not self.half_duplex and self.vad.active)):
                self._barge_in()
            await self._send_mic(chunk.pcm if not self.muted else SILENCE_CHUNK, speaking)
            self.view.refresh()

    async def _send_mic(self, pcm: bytes, agent_speaking: bool) -> None:
        if self.push_to_talk and not self.talking:
            return
        if self.half_duplex and agent_speaking and not self.barge_in_vad.active:
            pcm = SILENCE_CHUNK  # keep the model from hearing the agent's own echo
        await self.backend.send_audio(pcm)

    def _barge_in(self) -> None:
        if not self.playback.playing:
            return
        self.playback.flush()
        self.barge_ins += 1
        self.view.handle(Notice(message="you cut in: agent audio stopped"))

    # -- keys ---------------------------------------------------------------------------
    async def on_input(self, item: Command | TypedLine) -> None:
        if isinstance(item, TypedLine):
            self.view.print_line(Text.assemble(("you › ", "bold cyan"), item.text))
            await self.backend.send_text(item.text)
        elif item is Command.MUTE:
            self.muted = not self.muted
            self.view.state.muted = self.muted
            self.view.refresh()
        elif item is Command.TALK and self.push_to_talk:
            self.talking = not self.talking
            self.view.state.holding_talk_key = self.talking
            if self.talking:
                self._barge_in()
                await self.backend.send_activity_start()
            else:
                self.latency = Latency(speech_end_at=time.monotonic())
                await self.backend.send_activity_end()
            self.view.refresh()
        elif item is Command.QUIT:
            self.quit.set()

    # -- agent --------------------------------------------------------------------------
    async def pump_events(self) -> None:
        async for event in self.backend.events():
            self.handle(event)

    def handle(self, event: Event) -> None:
        if isinstance(event, AgentAudio):
            if self.latency.first_audio_at is None:
                self.latency.first_audio_at = event.at
            self.playback.enqueue(event.pcm, event.sample_rate)
        elif isinstance(event, Interrupted):
            self.playback.flush()
        if self.recorder is not None:
            self.recorder.add_event(event)
        self.view.handle(event)
        if self.turns.feed(event):
            self.playback.end_reply()
            self.answered_turns += 1
            self.answered.set()

    def _on_reply_start(self, start: ReplyStart) -> None:
        lat = self.latency
        if lat.reported or lat.speech_end_at is None or lat.first_audio_at is None:
            return
        lat.reported = True
        backend_s = max(0.0, lat.first_audio_at - lat.speech_end_at)
        local_s = max(0.0, start.speaker_at - lat.first_audio_at)
        self.view.print_line(latency_line(backend_s, local_s))

    async def watch_playback(self) -> None:
        """Mode changes when playback ends, and the recorder's agent channel."""
        while not self.quit.is_set():
            if self.recorder is not None:
                for block in self.playback.read_played():
                    self.recorder.add_agent(
                        block.samples, block.t, sample_rate=self.playback.sample_rate
                    )
                self.recorder.flush()
            if not self.playback.playing:
                playback_finished(self.view.state)
            await asyncio.sleep(0.05)


async def run_until_done(session: TalkSession, tasks: list[asyncio.Task[None]]) -> None:
    """Wait for quit or for any task to end (an error ends the conversation)."""
    quit_waiter = asyncio.create_task(session.quit.wait())
    try:
        done, _ = await asyncio.wait([*tasks, quit_waiter], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not quit_waiter and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await cancel_and_wait([*tasks, quit_waiter])
