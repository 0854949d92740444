"""One emulated Live session: the conversation state machine behind a connection.

The session reacts to decoded client messages and streams replies through a `Transport`
(the server adapts a WebSocket to it), so it never touches sockets itself. At most one
"turn task" runs at a time: it transcribes an utterance if needed, runs the matching
rule (possibly a tool call round trip) and streams the reply. Barge-in (speech start,
activityStart, new content) cancels that task and tells the client `interrupted`.

Family differences (mirroring what google-adk 2.13 expects, see models.py):
- 2.x: input transcription streams in word groups ending with `finished`; audio and its
  transcription arrive in separate messages; a tool call is followed by `turnComplete`
  (ADK only surfaces the call then) and the answer comes as a new model turn.
- 3.x: one final input transcription; transcription rides in the audio message; no
  `turnComplete` until the tool response arrived; `mediaChunks` is refused (send
  `audio`); replayed initial history never triggers a reply by itself, ADK's "." text
  nudge answers the pending user turn.

Context window compression (`setup.contextWindowCompression.slidingWindow`) works as Gemini
documents it: before a turn runs, if the context (system instruction plus history, in
estimated tokens) exceeds the trigger, the oldest turns are dropped until it is at most the
target; the kept part starts at a user turn, the system instruction always stays and the
turn being answered is never dropped. Usage metadata then counts the compressed context.

Audio replies are paced against absolute deadlines (start + audio sent × pacing), so a
reply with `audio_pacing=1.0` takes as long as it lasts, however long each send takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from adkvoice.errors import ProtocolError

from . import client_messages as p
from . import frames
from .faults import Fault, FaultController, seconds_of
from .handles import ContextSnapshot, HandleOwner, IssuedHandles
from .models import is_gemini_3_live
from .rules import Rules, TemplateContext, render
from .speech import Stt, Tts, placeholder_transcript, resample
from .stats import Compression, ConnectionRecord, EmulatorStats
from .vad import DEFAULT_SILENCE_MS, DEFAULT_START_MS, SpeechDetector, SpeechEnded, SpeechStarted

log = logging.getLogger(__name__)

AUDIO_CHUNK_BYTES = 2 * p.OUTPUT_RATE * 80 // 1000  # 80 ms of 24 kHz s16le
TEXT_WORDS_PER_CHUNK = 3
TRANSCRIPT_WORDS_PER_CHUNK = 2
_NUDGE = re.compile(r"^\W*$")  # ADK's "." that asks 3.x to answer replayed history


class TransportClosed(Exception):
    """The peer is gone; whatever was being sent is moot."""


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


class _ConnectionEnded(Exception):
    """A fault closed or dropped the connection mid-reply."""


def word_groups(text: str, size: int) -> list[str]:
    """Split into groups of `size` words whose concatenation is exactly `text`."""
    words = re.findall(r"\s*\S+\s*", text)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def tokens_for_words(words: int) -> int:
    return math.ceil(words * 4 / 3)


def estimate_tokens(text: str) -> int:
    return tokens_for_words(len(text.split()))


def context_tokens(system: str, history: Sequence[p.Turn]) -> int:
    """Estimated tokens of what the model sees: the system instruction and the history."""
    return tokens_for_words(len(system.split()) + sum(len(t.text.split()) for t in history))


def slide_window(history: list[p.Turn], system: str, target_tokens: int) -> int:
    """Drop the oldest turns until the context is at most `target_tokens`; return how many.

    The kept part starts at a user turn and always includes the newest user turn, even if
    that alone is over the target (the turn being answered cannot be forgotten).
    """
    words = [len(t.text.split()) for t in history]
    remaining = len(system.split()) + sum(words)  # of the suffix starting at index i
    last_user = max((i for i, t in enumerate(history) if t.role == "user"), default=-1)
    if tokens_for_words(remaining) <= target_tokens:
        return 0
    for i in range(1, last_user + 1):
        remaining -= words[i - 1]
        fits = tokens_for_words(remaining) <= target_tokens
        if history[i].role == "user" and (fits or i == last_user):
            del history[:i]
            return i
    return 0


class LiveConnection:
    def __init__(
        self,
        setup: p.Setup,
        *,
        transport: Transport,
        rules: Rules,
        tts: Tts,
        stt: Stt,
        faults: FaultController,
        stats: EmulatorStats,
        handles: IssuedHandles,
        options: ConnectionOptions,
        conversation: ContextSnapshot | None = None,
    ) -> None:
        self.setup = setup
        self.record = ConnectionRecord(model=setup.model, resumed=conversation is not None)
        self.conversation = conversation or ContextSnapshot()
        self._transport = transport
        self._rules = rules
        self._tts = tts
        self._stt = stt
        self._faults = faults
        self._stats = stats
        self._handles = handles
        self._handle_owner = HandleOwner()
        self._options = options
        self._gemini3 = is_gemini_3_live(setup.model)
        self._functions = set(setup.function_names)
        self._system = setup.system_instruction
        det = setup.activity_detection
        self._vad: SpeechDetector | None = None
        if not det.disabled:
            self._vad = SpeechDetector(
                start_ms=det.prefix_padding_ms or DEFAULT_START_MS,
                silence_ms=det.silence_duration_ms or DEFAULT_SILENCE_MS,
            )
        self._activity: bytearray | None = None  # audio between activityStart and activityEnd
        self._history_phase = setup.initial_history_in_client_content
        self._turn_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._pending_calls: dict[str, asyncio.Future[p.JsonObject]] = {}
        self._model_turn_open = False
        self._spoken: list[str] = []
        self._going_away = False

    # Lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._stats.connection_log.append(self.record)
        self._faults.register(self)
        if self._options.go_away_after_s is not None:
            self._spawn(self._go_away_later(self._options.go_away_after_s))

    async def shutdown(self) -> None:
        self._faults.unregister(self)
        self.record.closed_at = time.monotonic()
        self._handles.connection_ended(self._handle_owner)
        tasks = [t for t in (self._turn_task, *self._background) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        for fut in self._pending_calls.values():
            fut.cancel()
        self._pending_calls.clear()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(self._guard(coro))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _guard(self, coro: Any) -> None:
        """Run a session task so that no failure escapes as an unretrieved task exception."""
        try:
            await coro
        except (TransportClosed, _ConnectionEnded):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("emulator session task failed")
            with contextlib.suppress(TransportClosed):
                await self._transport.close(1011, "Internal error encountered.")

    async def _send(self, frame: p.JsonObject) -> None:
        await self._transport.send(frames.encode(frame))

    # FaultTarget (fault controller) -- ---------------------------------------------------
    async def go_away(self, time_left_s: float, *, send_handle: bool) -> None:
        if send_handle and self.setup.resumption and not self._model_turn_open:
            await self._issue_handle()
        await self._send(frames.go_away(time_left_s))
        self._stats.go_aways_sent += 1
        self.record.go_aways_sent += 1
        if not self._going_away:
            self._going_away = True
            self._spawn(self._close_later(time_left_s))

    async def close(self, code: int, reason: str) -> None:
        await self._transport.close(code, reason)

    def abort(self) -> None:
        self._transport.abort()

    async def _go_away_later(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await self.go_away(self._options.go_away_time_left_s, send_handle=False)

    async def _close_later(self, time_left_s: float) -> None:
        await asyncio.sleep(time_left_s)
        await self._transport.close(1000, "goAway deadline reached; resume with the last handle")

    # Client messages ---------------------------------------------------------------------
    async def handle(self, msg: p.ClientMessage) -> None:
        """Apply one client message; raise ProtocolError for messages Gemini would refuse."""
        if isinstance(msg, p.Setup):
            raise ProtocolError("setup may only be sent once, as the first message")
        if isinstance(msg, p.ClientContent):
            await self._on_client_content(msg)
        elif isinstance(msg, p.RealtimeInput):
            await self._on_realtime(msg)
        elif isinstance(msg, p.ToolResponse):
            self._on_tool_response(msg)
        else:
            if msg.system_instruction is not None:
                self._system = msg.system_instruction
            if msg.function_names is not None:
                self._functions = set(msg.function_names)

    async def _on_client_content(self, msg: p.ClientContent) -> None:
        history = self.conversation.history
        if self._history_phase:
            # historyConfig.initialHistoryInClientContent: context only, no model call,
            # except that 2.x models (as ADK expects) answer a history ending with the user.
            history.extend(msg.turns)
            if msg.turn_complete:
                self._history_phase = False
                if not self._gemini3:
                    await self._answer_history()
            return
        if msg.turn_complete:
            await self.interrupt()  # Gemini: turn_complete=true always cuts the model off
        history.extend(msg.turns)
        if msg.turn_complete:
            await self._answer_history()

    async def _on_realtime(self, msg: p.RealtimeInput) -> None:
        self._history_phase = False
        if msg.used_media_chunks and self._gemini3:
            raise ProtocolError("this model does not take mediaChunks; send realtimeInput.audio")
        manual = self._vad is None
        if (msg.activity_start or msg.activity_end) and not manual:
            # Kept short: it must fit a WebSocket close reason.
            raise ProtocolError("activityStart/End need automaticActivityDetection.disabled=true")
        if msg.activity_start:
            await self.interrupt()
            self._activity = bytearray()
        for chunk in msg.audio:
            await self._on_audio(chunk)
        if msg.activity_end and self._activity is not None:
            pcm, self._activity = bytes(self._activity), None
            if pcm:
                await self._start_turn(partial(self._speech_turn, pcm))
        if msg.audio_stream_end and self._vad is not None:
            ended = self._vad.flush()
            if ended is not None:
                await self._start_turn(partial(self._speech_turn, ended.pcm))
        if msg.text is not None:
            await self._on_text(msg.text)

    async def _on_audio(self, chunk: p.AudioChunk) -> None:
        self._stats.audio_in_bytes += len(chunk.pcm)
        pcm = resample(chunk.pcm, chunk.sample_rate, p.INPUT_RATE)
        if self._vad is None:
            if self._activity is not None:
                self._activity += pcm
            return
        for event in self._vad.feed(pcm):
            if isinstance(event, SpeechStarted):
                await self.interrupt()
            elif isinstance(event, SpeechEnded):
                await self._start_turn(partial(self._speech_turn, event.pcm))

    async def _answer_history(self) -> None:
        """Answer a history that ends with the user: their message, or a tool result the
        model has not spoken about yet (then it speaks about that result)."""
        history = self.conversation.history
        if not history or history[-1].role != "user":
            return
        last = history[-1]
        if last.tool_result is None:
            await self._start_turn(partial(self._answer, last.text, in_history=True))
            return
        asked = next((t.text for t in reversed(history) if t.role == "user" and t.text), "")
        await self._start_turn(
            partial(self._answer, asked, in_history=True, tool_result=last.tool_result)
        )

    async def _on_text(self, text: str) -> None:
        if _NUDGE.match(text):
            if not self._busy():
                await self._answer_history()
            return
        await self._start_turn(partial(self._answer, text, in_history=False))

    def _on_tool_response(self, msg: p.ToolResponse) -> None:
        for response in msg.responses:
            fut = self._pending_calls.get(response.id or "")
            if fut is None and response.id is None:  # Vertex-style: match by name
                fut = next(
                    (f for cid, f in self._pending_calls.items() if cid.endswith(response.name)),
                    None,
                )
            if fut is not None and not fut.done():
                fut.set_result(response.response)
                self._stats.tool_responses_received += 1
            else:
                self._stats.unmatched_tool_responses += 1

    # Turns -------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._turn_task is not None and not self._turn_task.done()

    async def _start_turn(self, make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Answer new input: barge in on whatever is running, then run the new turn."""
        await self.interrupt()
        self._turn_task = asyncio.create_task(self._guard(make()))

    async def interrupt(self) -> None:
        """Barge-in: stop the current turn; tell the client if it had started answering."""
        task = self._turn_task
        if task is None or task.done():
            return
        pending = list(self._pending_calls)
        task.cancel()
        await asyncio.wait([task])  # unlike `await task`, never swallows our own cancellation
        self._turn_task = None
        if pending:
            await self._send(frames.tool_call_cancellation(pending))
            self._stats.tool_call_cancellations += 1
        if self._model_turn_open:
            spoken = "".join(self._spoken).strip()
            if spoken:
                self.conversation.history.append(p.Turn("model", spoken))
            await self._send(frames.interrupted())
            await self._send(frames.turn_complete(self._usage(spoken)))
            self._model_turn_open = False
            self._stats.interruptions += 1
            self.record.interruptions += 1

    async def _speech_turn(self, pcm: bytes) -> None:
        self._stats.utterances += 1
        text = (await self._stt.transcribe(pcm)).strip() or placeholder_transcript(pcm)
        self._stats.transcripts.append(text)
        if self.setup.input_transcription:
            if self._gemini3:
                await self._send(frames.input_transcription(text, finished=True))
            else:
                groups = word_groups(text, TRANSCRIPT_WORDS_PER_CHUNK)
                for i, group in enumerate(groups):
                    await self._send(
                        frames.input_transcription(group, finished=i == len(groups) - 1)
                    )
        await self._answer(text, in_history=False)

    def _earlier_user_texts(self) -> list[str]:
        """What the user said before the turn being answered, as far as the context goes."""
        # Function responses replayed as user-role turns carry no text: skip them.
        users = [t.text for t in self.conversation.history if t.role == "user" and t.text]
        return users[:-1]

    def _usage(self, reply: str) -> frames.Usage:
        prompt = context_tokens(self._system, self.conversation.history)
        return frames.Usage(prompt, estimate_tokens(reply))

    def _compress_context(self) -> None:
        window = self.setup.compression
        if window is None:
            return
        history = self.conversation.history
        before = context_tokens(self._system, history)
        if before <= window.trigger_tokens:
            return
        dropped = slide_window(history, self._system, window.target_tokens)
        if dropped:
            after = context_tokens(self._system, history)
            self._stats.compressions.append(Compression(before, after, dropped))
            self.record.compressions += 1

    async def _answer(
        self, text: str, *, in_history: bool, tool_result: p.JsonObject | None = None
    ) -> None:
        """Answer `text`; with `tool_result`, its tool already ran (replayed history)."""
        faults = self._faults.take_for_turn()
        if not in_history:
            self.conversation.history.append(p.Turn("user", text))
        self.conversation.user_turns += 1
        self._stats.user_texts.append(text)
        self._compress_context()  # "before running the turn", as Gemini counts the trigger
        rule = self._rules.match(text)
        if rule.fault is not None:
            faults.append(Fault.from_rule(rule))
        earlier = self._earlier_user_texts()
        ctx = TemplateContext(
            text=text,
            previous=earlier[-1] if earlier else "nothing yet",
            first=earlier[0] if earlier else "nothing yet",
            turn=self.conversation.user_turns,
            model=self.setup.model_id,
        )
        delay = self._options.think_time_s + seconds_of(faults, "delay")
        if delay > 0:
            await asyncio.sleep(delay)
        say = rule.say
        if rule.call is not None:
            if rule.call in self._functions:
                args = {
                    key: render(value, ctx) if isinstance(value, str) else value
                    for key, value in rule.args.items()
                }
                if tool_result is None:
                    result = await self._call_tool(rule.call, args)
                else:
                    result = tool_result
                ctx = replace(ctx, result=result, has_result=True)
                say = say or f"The {rule.call} tool returned {{result}}."
            else:
                say = (
                    f"I would call the {rule.call} tool for that, "
                    "but this agent does not declare it."
                )
        await self._reply(render(say or self._rules.fallback, ctx), faults)

    async def _call_tool(self, name: str, args: p.JsonObject) -> p.JsonObject:
        call_id = f"emu-call-{secrets.token_hex(4)}-{name}"
        fut: asyncio.Future[p.JsonObject] = asyncio.get_running_loop().create_future()
        self._pending_calls[call_id] = fut
        try:
            await self._maybe_not_resumable()
            await self._send(frames.tool_call([frames.FunctionCall(call_id, name, args)]))
            self._stats.tool_calls_sent += 1
            self._stats.tool_calls_by_name[name] += 1
            self.record.tool_calls[name] += 1
            self._model_turn_open = True
            if not self._gemini3:
                # 2.x ends the model turn after a tool call; ADK surfaces the call only then.
                self._model_turn_open = False
                await self._send(frames.turn_complete(self._usage(name)))
            return await fut
        finally:
            self._pending_calls.pop(call_id, None)

    async def _maybe_not_resumable(self) -> None:
        if self._faults.mid_turn_resumption_updates and self.setup.resumption:
            await self._send(frames.resumption_update(None, resumable=False))

    async def _fire_mid_reply(self, faults: Iterable[Fault]) -> None:
        for fault in faults:
            if fault.kind == "close-1011":
                self._stats.faults_fired.append(fault.kind)
                await self._transport.close(fault.code, fault.reason)
                raise _ConnectionEnded
            if fault.kind == "drop":
                self._stats.faults_fired.append(fault.kind)
                self._transport.abort()
                raise _ConnectionEnded

    async def _reply(self, text: str, faults: list[Fault]) -> None:
        self._spoken = []
        if not self._model_turn_open:
            await self._maybe_not_resumable()
        for fault in faults:
            if fault.kind == "delay":
                self._stats.faults_fired.append("delay")
            if fault.kind == "malformed":
                self._stats.faults_fired.append("malformed")
                await self._transport.send('{"serverContent": {"modelTurn": ')
        self._model_turn_open = True
        if self.setup.response_modality == "TEXT":
            await self._stream_text(text, faults)
        else:
            await self._stream_audio(text, faults)
        await self._send(frames.generation_complete())
        await self._send(frames.turn_complete(self._usage(text)))
        self._model_turn_open = False
        self.conversation.history.append(p.Turn("model", text))
        self._stats.turns_answered += 1
        self.record.turns_answered += 1
        if self.setup.resumption:
            await self._issue_handle()
        for fault in faults:
            if fault.kind == "go-away":
                self._stats.faults_fired.append("go-away")
                await self.go_away(fault.seconds, send_handle=fault.send_handle)

    async def _stream_text(self, text: str, faults: list[Fault]) -> None:
        slow_s = seconds_of(faults, "slow")
        if slow_s:
            self._stats.faults_fired.append("slow")
        for i, group in enumerate(word_groups(text, TEXT_WORDS_PER_CHUNK) or [text]):
            if slow_s:
                await asyncio.sleep(slow_s)
            await self._send(frames.model_text(group))
            self._spoken.append(group)
            if i == 0:
                await self._fire_mid_reply(faults)
            await asyncio.sleep(self._options.text_chunk_delay_s)

    async def _stream_audio(self, text: str, faults: list[Fault]) -> None:
        pcm = await self._tts.synthesize(text)
        chunks = [pcm[i : i + AUDIO_CHUNK_BYTES] for i in range(0, len(pcm), AUDIO_CHUNK_BYTES)]
        chunks = chunks or [b"\x00\x00" * (p.OUTPUT_RATE // 100)]
        groups = (
            word_groups(text, TRANSCRIPT_WORDS_PER_CHUNK) if self.setup.output_transcription else []
        )
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
        for i, chunk in enumerate(chunks):
            if slow_s:
                await _sleep_until(loop, start + sent_s * pacing + slow_s * (i + 1))
            said = "".join(per_chunk[i]) or None
            if self._gemini3:
                await self._send(frames.model_audio(chunk, said))
            else:
                await self._send(frames.model_audio(chunk))
                if said is not None:
                    await self._send(frames.output_transcription(said))
            self._spoken.extend(per_chunk[i])
            self._stats.audio_out_bytes += len(chunk)
            if i == 0:
                await self._fire_mid_reply(faults)
            # Absolute deadlines: time spent sending does not add up into drift.
            sent_s += len(chunk) / (2 * p.OUTPUT_RATE)
            await _sleep_until(loop, start + sent_s * pacing + slow_s * (i + 1))
        if not groups:
            self._spoken = [text]
        elif not self._gemini3:
            await self._send(frames.output_transcription(None, finished=True))

    async def _issue_handle(self) -> None:
        handle = self._handles.issue(self._handle_owner, self.conversation)
        self._stats.handles_issued += 1
        await self._send(frames.resumption_update(handle, resumable=True))


async def _sleep_until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    """Sleep until `deadline` on the loop clock; always yields, even when it has passed."""
    await asyncio.sleep(max(0.0, deadline - loop.time()))
