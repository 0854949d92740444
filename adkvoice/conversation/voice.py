"""One voice conversation: the microphone's way to the backend, and when the user cuts in.

Microphone (or `--input-wav`) chunks go to the backend; the backend's events go through
the conversation core (`core.Conversation`) to the speaker, the view, the recorder and
the latency meter. Turn-taking:

- open mic (default): the model's activity detection decides when the user has finished;
- push-to-talk: the talk key sends activity start, pressing it again activity end.

Barge-in: when the user speaks over the agent, local voice detection publishes
`Interrupted(source="user")` and the speaker flushes at once, before the model's own
`interrupted` arrives; the recorder and `--json` see the cut too.

Echo, three ways:
- echo cancellation (the default when a canceller is installed, `adkvoice.audio.aec`): full
  duplex; the model and the local voice detection hear the microphone with the agent's
  own voice taken out, so the user can cut in at normal loudness;
- `--no-aec` (headphones): full duplex on the raw microphone;
- no canceller available (or it fails): half duplex. While the agent speaks the model
  hears silence unless the user's voice is clearly louder than the echo (a higher
  barge-in threshold), so the agent does not hear itself on laptop speakers.

Noise (`adkvoice.audio.noise`, on unless `--no-noise-suppression`): after the echo
canceller, noise suppression and gain control clean what the model hears. The local voice
detection keeps hearing the microphone before them: its thresholds are levels (a voice
clearly louder than the echo), which gain control would move.

Pictures (`images.FrameFeed`, `--camera`/`--screen`): with `--frames while-speaking` they
flow while the user speaks. The gate follows the local voice detection (immediate, and
there on every transport; the model's input transcripts come late and not from every
server), the talk key with push-to-talk, and a typed line; never a muted microphone, nor
the agent's echo in half duplex. A held `/image` or `/screen` goes when the user next
speaks or types.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass

import numpy as np

from adkvoice.audio.aec import EchoCanceller
from adkvoice.audio.capture import CaptureChunk
from adkvoice.audio.dsp import EnergyVad, Int16Array, int16_to_pcm, pcm_to_int16, rms_dbfs
from adkvoice.audio.noise import MicCleaner
from adkvoice.audio.playback import Playback, ReplyStart
from adkvoice.audio.recorder import Recorder
from adkvoice.backends.base import Backend
from adkvoice.conversation.core import Conversation, Sink, SpeakerSink
from adkvoice.conversation.images import FrameFeed, Showing
from adkvoice.errors import ConnectionLostError
from adkvoice.events import AgentAudio, AnswerComplete, Event, Notice, UserText
from adkvoice.ui.keys import Command, TypedLine
from adkvoice.ui.talk_view import TalkView, latency_line, playback_finished

SILENCE_CHUNK = bytes(640)  # 20 ms of 16 kHz s16le
SILENT_FRAME = np.zeros(320, dtype=np.int16)
OVER_ECHO_DB = 10.0  # how much louder than the loudest possible echo a voice must be


class EchoMode(enum.Enum):
    """How the microphone copes with the agent's voice from the speaker."""

    CANCEL = "cancel"  # a canceller takes the echo out: full duplex on cleaned audio
    NONE = "none"  # headphones (--no-aec): full duplex on the raw microphone
    HALF_DUPLEX = "half-duplex"  # no canceller: the model hears silence while the agent speaks


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
        cleaner: MicCleaner | None = None,
    ) -> None:
        """With a `canceller` the mic is full duplex on the cleaned audio (`half_duplex`
        is ignored); the playback needs `tap=True` then, for the echo reference. A
        `cleaner` suppresses noise in what is sent to the model."""
        self.backend = backend
        self.view = view
        self.playback = playback
        self.push_to_talk = push_to_talk
        self.canceller = canceller
        self.echo_mode = (
            EchoMode.CANCEL
            if canceller is not None
            else EchoMode.HALF_DUPLEX
            if half_duplex
            else EchoMode.NONE
        )
        self.cleaner = cleaner
        self._show_processing()
        self.recorder = recorder
        sinks: list[Sink] = [_LatencySink(self), SpeakerSink(playback)]
        if recorder is not None:
            sinks.append(recorder)
        sinks += [view, _AnswerSink(self)]
        self.conversation = Conversation(sinks)
        self.vad = EnergyVad()
        # While the agent speaks without echo cancellation, only a clearly louder voice
        # counts as the user cutting in.
        self.barge_in_vad = EnergyVad(min_dbfs=-28.0, margin_db=18.0)
        # With echo cancellation: the raw microphone, where it is clearly over the echo.
        self._over_echo_vad = EnergyVad()
        self.latency = Latency()
        self.talking = False  # push-to-talk: the user's turn is open
        self.muted = False
        self.quit = asyncio.Event()
        self.answered = asyncio.Event()  # set each time the agent finishes an answer
        self.answered_turns = 0
        self.barge_ins = 0
        self.playback.on_reply_start = self._on_reply_start
        # What the user shows: a camera or screen feed (its `while-speaking` gate follows
        # the local voice detection, or the talk key), and `/image`, `/screen` pictures.
        self.feed: FrameFeed | None = None
        self.showing = Showing(backend, self.conversation.publish)

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
            if self.cleaner is not None:
                pcm = int16_to_pcm(self._clean(frame))
            speaking = self.playback.playing
            heard = self.vad.feed(frame)
            if heard == "speech_end":
                self.latency = Latency(speech_end_at=time.monotonic())
            if heard is not None and not self.push_to_talk:
                # Half duplex without a canceller hears the agent's echo: not the user.
                user = heard == "speech_start" and not (self.half_duplex and speaking)
                await self._user_speaking(user and not self.muted)
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
            self.echo_mode = EchoMode.HALF_DUPLEX
            self._show_processing()
            self.conversation.publish(
                Notice(
                    message=f"echo cancellation failed ({type(exc).__name__}): the microphone "
                    "is muted to the model while the agent speaks; speak up to cut in"
                )
            )
            return frame

    def _clean(self, frame: Int16Array) -> Int16Array:
        """The chunk with noise suppressed and its level evened out; on a failure, the
        chunk as it is, from now on."""
        cleaner = self.cleaner
        assert cleaner is not None
        try:
            return cleaner.process(frame)
        except Exception as exc:
            self.cleaner = None
            self._show_processing()
            self.conversation.publish(
                Notice(
                    message=f"noise suppression failed ({type(exc).__name__}): the "
                    "microphone goes to the model without it"
                )
            )
            return frame

    def _show_processing(self) -> None:
        """What cleans the microphone, on the status line."""
        on: list[str] = []
        if self.echo_mode is EchoMode.CANCEL:
            on.append("echo cancel")
        elif self.echo_mode is EchoMode.HALF_DUPLEX:
            on.append("half duplex")
        if self.cleaner is not None:
            on += self.cleaner.features
        self.view.state.mic_processing = tuple(on)

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

    async def _user_speaking(self, speaking: bool) -> None:
        """The user started or stopped speaking (the local voice detection, which every
        transport has and which is immediate, unlike the model's transcripts): frames
        flow while they speak, and a held `/image` goes before what they say."""
        if self.feed is not None:
            self.feed.set_speaking(speaking)
        if speaking:
            await self.showing.send_pending()

    async def _send_mic(self, pcm: bytes, agent_speaking: bool) -> None:
        if self.push_to_talk and not self.talking:
            return
        if self.half_duplex and agent_speaking and not self.barge_in_vad.active:
            pcm = SILENCE_CHUNK  # keep the model from hearing the agent's own echo
        await self.backend.send_audio(pcm)

    @property
    def half_duplex(self) -> bool:
        return self.echo_mode is EchoMode.HALF_DUPLEX

    def _barge_in(self) -> None:
        if not self.playback.playing:
            return
        self.barge_ins += 1
        self.conversation.user_cut_in()

    # -- keys ---------------------------------------------------------------------------
    async def on_input(self, item: Command | TypedLine) -> None:
        if isinstance(item, TypedLine):
            if await self.showing.handle_line(item.text):
                return
            await self._user_speaking(True)  # a typed turn: the current picture goes too
            self.conversation.publish(UserText(text=item.text))
            await self.backend.send_text(item.text)
            await self._user_speaking(self.talking or self.vad.active)
        elif item is Command.MUTE:
            self.muted = not self.muted
            if self.muted:
                await self._user_speaking(False)
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
            await self._user_speaking(self.talking)
            self.view.refresh()
        elif item is Command.QUIT:
            self.quit.set()

    # -- agent --------------------------------------------------------------------------
    async def pump_events(self) -> None:
        await self.conversation.run(self.backend)
        if not self.quit.is_set():
            raise ConnectionLostError("the live session ended")

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


class _LatencySink:
    """Notes when the reply's first audio arrived (before the speaker queues it)."""

    def __init__(self, session: TalkSession) -> None:
        self._session = session

    def handle(self, event: Event) -> None:
        latency = self._session.latency
        if isinstance(event, AgentAudio) and latency.first_audio_at is None:
            latency.first_audio_at = event.at


class _AnswerSink:
    """Counts complete answers, for `--input-wav` (which ends after the reply)."""

    def __init__(self, session: TalkSession) -> None:
        self._session = session

    def handle(self, event: Event) -> None:
        if isinstance(event, AnswerComplete):
            self._session.answered_turns += 1
            self._session.answered.set()
