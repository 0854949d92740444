"""What the model says in one model turn, on the wire: text parts (TEXT modality) or
24 kHz speech with its transcription (AUDIO), in the family's message shapes.

- 2.x shapes: audio and its transcription arrive in separate messages, and the
  transcription ends with a `finished` message.
- 3.x shapes: the transcription rides in the audio message.

Audio is paced against absolute deadlines (start + audio sent × pacing), so a reply with
`audio_pacing=1.0` takes as long as it lasts, however long each send takes. The reply
faults that strike mid-reply (close, drop) fire after the first chunk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from . import client_messages as p
from . import frames
from .faults import Fault, seconds_of
from .speech import SpeechStyle, Tts
from .stats import EmulatorStats

AUDIO_CHUNK_BYTES = 2 * p.OUTPUT_RATE * 80 // 1000  # 80 ms of 24 kHz s16le
TEXT_WORDS_PER_CHUNK = 3
TRANSCRIPT_WORDS_PER_CHUNK = 2


class TransportClosed(Exception):
    """The peer is gone; whatever was being sent is moot."""


class ConnectionEnded(Exception):
    """A fault closed or dropped the connection mid-reply."""


class Transport(Protocol):
    async def send(self, data: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None: ...


@dataclass(frozen=True)
class ConnectionOptions:
    text_chunk_delay_s: float = 0.0
    audio_pacing: float = 0.0
    think_time_s: float = 0.0
    go_away_after_s: float | None = None
    go_away_time_left_s: float = 1.0


def word_groups(text: str, size: int) -> list[str]:
    """Split into groups of `size` words whose concatenation is exactly `text`."""
    words = re.findall(r"\s*\S+\s*", text)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


class Speaker:
    """Streams the model's words into the current model turn and remembers what was said,
    so an interruption can keep the part the user heard."""

    def __init__(
        self,
        transport: Transport,
        setup: p.Setup,
        *,
        shapes: Literal["2.x", "3.x"],
        tts: Tts,
        stats: EmulatorStats,
        options: ConnectionOptions,
    ) -> None:
        self._transport = transport
        self._setup = setup
        self._gemini3 = shapes == "3.x"
        self._tts = tts
        self._stats = stats
        self._options = options
        self._style = SpeechStyle(voice=setup.voice or SpeechStyle().voice, language=setup.language)
        self.spoken: list[str] = []  # what the current turn has said so far
        self.open = False  # a model turn has started and not completed

    async def send(self, frame: p.JsonObject) -> None:
        await self._transport.send(frames.encode(frame))

    async def speak(self, text: str, faults: list[Fault]) -> None:
        """Say `text` in the current model turn (opening it if need be)."""
        self.open = True
        if self._setup.response_modality == "TEXT":
            await self._stream_text(text, faults)
        else:
            await self._stream_audio(text, faults)

    def close_turn(self) -> str:
        """The turn ended (completed or cut): what it said."""
        said = "".join(self.spoken).strip()
        self.spoken = []
        self.open = False
        return said

    async def _fire_mid_reply(self, faults: Iterable[Fault]) -> None:
        for fault in faults:
            if fault.kind == "close-1011":
                self._stats.faults_fired.append(fault.kind)
                await self._transport.close(fault.code, fault.reason)
                raise ConnectionEnded
            if fault.kind == "drop":
                self._stats.faults_fired.append(fault.kind)
                self._transport.abort()
                raise ConnectionEnded

    async def _stream_text(self, text: str, faults: list[Fault]) -> None:
        slow_s = seconds_of(faults, "slow")
        if slow_s:
            self._stats.faults_fired.append("slow")
        for i, group in enumerate(word_groups(text, TEXT_WORDS_PER_CHUNK) or [text]):
            if slow_s:
                await asyncio.sleep(slow_s)
            await self.send(frames.model_text(group))
            self.spoken.append(group)
            if i == 0:
                await self._fire_mid_reply(faults)
            await asyncio.sleep(self._options.text_chunk_delay_s)

    async def _stream_audio(self, text: str, faults: list[Fault]) -> None:
        pcm = await self._tts.synthesize(text, self._style)
        chunks = [pcm[i : i + AUDIO_CHUNK_BYTES] for i in range(0, len(pcm), AUDIO_CHUNK_BYTES)]
        chunks = chunks or [b"\x00\x00" * (p.OUTPUT_RATE // 100)]
        transcribe = self._setup.output_transcription
        groups = word_groups(text, TRANSCRIPT_WORDS_PER_CHUNK) if transcribe else []
        # Spread the transcript evenly over the audio, like a model speaking it.
        per_chunk: list[list[str]] = [[] for _ in chunks]
        for g, group in enumerate(groups):
            per_chunk[g * len(chunks) // len(groups)].append(group)
        slow_s = seconds_of(faults, "slow")
        if slow_s:
            self._stats.faults_fired.append("slow")
        pacing = self._options.audio_pacing
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent_s = 0.0  # audio sent so far
        held = 0  # pieces held back by a slow fault: each piece of the transcript (or each
        # chunk, without one), so a slow reply arrives in as many pieces as a text one
        for i, chunk in enumerate(chunks):
            if slow_s and (per_chunk[i] or not groups):
                held += 1
                await _sleep_until(loop, start + sent_s * pacing + slow_s * held)
            said = "".join(per_chunk[i]) or None
            if self._gemini3:
                await self.send(frames.model_audio(chunk, said))
            else:
                await self.send(frames.model_audio(chunk))
                if said is not None:
                    await self.send(frames.output_transcription(said))
            self.spoken.extend(per_chunk[i])
            self._stats.audio_out_bytes += len(chunk)
            if i == 0:
                await self._fire_mid_reply(faults)
            # Absolute deadlines: time spent sending does not add up into drift.
            sent_s += len(chunk) / (2 * p.OUTPUT_RATE)
            await _sleep_until(loop, start + sent_s * pacing + slow_s * held)
        if not groups:
            self.spoken.append(text)
        elif not self._gemini3:
            await self.send(frames.output_transcription(None, finished=True))


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    """Sleep until `deadline` on the loop clock; always yields, even when it has passed."""
    await asyncio.sleep(max(0.0, deadline - loop.time()))
