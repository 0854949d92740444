"""`adkvoice talk`: one voice conversation, wired on the event loop that app.py owns.

Microphone (or `--input-wav`) chunks go to the backend; agent audio goes to the speaker
through `Playback`; events go to the view and the recorder. Turn-taking:

- open mic (default): the model's activity detection decides when the user has finished;
- push-to-talk: the talk key sends activity start, pressing it again activity end.

Barge-in: when the user speaks over the agent (local voice detection, or the server's
`interrupted`), queued agent audio is flushed at once.

Echo, three ways:
- echo cancellation (the default when a canceller is installed, `adkvoice.audio.aec`): full
  duplex; the model and the local voice detection hear the microphone with the agent's
  own voice taken out, so the user can cut in at normal loudness;
- `--no-aec` (headphones): full duplex on the raw microphone;
- no canceller available (or it fails): half duplex. While the agent speaks the model
  hears silence unless the user's voice is clearly louder than the echo (a higher
  barge-in threshold), so the agent does not hear itself on laptop speakers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

import numpy as np
from rich.text import Text

from adkvoice.audio.aec import EchoCanceller
from adkvoice.audio.capture import CaptureChunk
from adkvoice.audio.dsp import EnergyVad, Int16Array, int16_to_pcm, pcm_to_int16, rms_dbfs
from adkvoice.audio.playback import Playback, ReplyStart
from adkvoice.audio.recorder import Recorder
from adkvoice.backends.base import Backend
from adkvoice.conversation.turns import TurnTracker
from adkvoice.events import AgentAudio, Event, Interrupted, Notice
from adkvoice.tasks import cancel_and_wait
from adkvoice.ui.keys import Command, TypedLine
from adkvoice.ui.talk_view import TalkView, latency_line, playback_finished

SILENCE_CHUNK = bytes(640)  # 20 ms of 16 kHz s16le
SILENT_FRAME = np.zeros(320, dtype=np.int16)
OVER_ECHO_DB = 10.0  # how much louder than the loudest possible echo a voice must be


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
        canceller: EchoCanceller | None = None,
    ) -> None:
        """With a `canceller` the mic is full duplex on the cleaned audio (`half_duplex`
        is ignored); the playback needs `tap=True` then, for the echo reference."""
        self.backend = backend
        self.view = view
        self.playback = playback
        self.push_to_talk = push_to_talk
        self.canceller = canceller
        self.half_duplex = half_duplex and canceller is None
        self.recorder = recorder
        self.vad = EnergyVad()
        # While the agent speaks without echo cancellation, only a clearly louder voice
        # counts as the user cutting in.
        self.barge_in_vad = EnergyVad(min_dbfs=-28.0, margin_db=18.0)
        # With echo cancellation: the raw microphone, where it is clearly over the echo.
        self._over_echo_vad = EnergyVad()
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
            pcm = chunk.pcm
            frame = raw = pcm_to_int16(pcm)
            if self.canceller is not None:
                self._drain_played()  # the reference up to now, before the chunk it matches
                frame = self._cancel_echo(raw, chunk.captured_at)
                pcm = int16_to_pcm(frame)
            speaking = self.playback.playing
            if self.vad.feed(frame) == "speech_end":
                self.latency = Latency(speech_end_at=time.monotonic())
            barge = self.barge_in_vad.feed(frame) if speaking else None
            over_echo = self._over_echo_vad.feed(self._over_echo(raw)) if speaking else None
            if speaking and (
                barge == "speech_start"
                or over_echo == "speech_start"
                or (not self.half_duplex and self.vad.active)
            ):
                self._barge_in()
            await self._send_mic(pcm if not self.muted else SILENCE_CHUNK, speaking)
            self.view.refresh()

    def _cancel_echo(self, frame: Int16Array, captured_at: float) -> Int16Array:
        """The chunk with the agent's echo taken out; on a canceller failure, the raw
        chunk and half duplex from now on."""
        canceller = self.canceller
        assert canceller is not None
        try:
            return canceller.process(frame, captured_at)
        except Exception as exc:
            self.canceller = None
            self.half_duplex = True
            self.view.handle(
                Notice(
                    message=f"echo cancellation failed ({type(exc).__name__}): the microphone "
                    "is muted to the model while the agent speaks; speak up to cut in"
                )
            )
            return frame

    def _over_echo(self, raw: Int16Array) -> Int16Array:
        """The raw chunk when it is clearly louder than any echo of what just played,
        else silence. The canceller holds a near-end voice back until it has learnt the
        echo path (or that there is none, on headphones); this lets the user cut in then."""
        canceller = self.canceller
        if canceller is None or rms_dbfs(raw) < canceller.expected_echo_dbfs + OVER_ECHO_DB:
            return SILENT_FRAME
        return raw

    def _drain_played(self) -> None:
        """Audio as played, to the echo canceller (reference) and the recorder."""
        blocks = self.playback.read_played()
        if not blocks:
            return
        if self.canceller is not None:
            self.canceller.add_played(blocks, self.playback.sample_rate)
        if self.recorder is not None:
            for block in blocks:
                self.recorder.add_agent(
                    block.samples, block.t, sample_rate=self.playback.sample_rate
                )

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
            self._drain_played()
            if self.recorder is not None:
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
