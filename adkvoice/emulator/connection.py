"""One emulated Live session: the conversation state machine behind a connection.

The session reacts to decoded client messages and streams replies through a `Transport`
(the server adapts a WebSocket to it), so it never touches sockets itself. At most one
"turn task" runs at a time: it transcribes an utterance if needed, runs the matching
rule (possibly a tool call round trip) and speaks the reply (`speaking.Speaker`).
Barge-in (speech start, activityStart, new content) cancels that task and tells the
client `interrupted`, unless the setup asked for NO_INTERRUPTION (then speech waits for
the reply to end).

The model played is the setup's family in the catalogue (`models.emulated_family`):
- 2.x shapes: input transcription streams in word groups ending with `finished`; a tool
  call is followed by `turnComplete` (ADK only surfaces the call then) and the answer
  comes as a new model turn.
- 3.x shapes: one final input transcription; no `turnComplete` until the tool response
  arrived; `mediaChunks` is refused (send `audio`); replayed initial history never
  triggers a reply by itself, ADK's "." text nudge right after it answers the pending
  user turn (any other text, "." included, is the user's).
- Families that report `interactionStatus` (3.8) send it with every turnComplete:
  IN_PROGRESS while more turns answer the same prompt, IDLE when done.
- A call the model does not wait for (a declaration with behavior NON_BLOCKING, or none
  on a family whose default it is) runs in the background: the model says the rule's
  `while` text in a turn of its own, then speaks the result when it arrives, as its
  `scheduling` asks: WHEN_IDLE (after what it is saying), INTERRUPT (cutting that
  short) or SILENT (not at all: the result only enters the context). A user who cuts in
  before the result arrives gets `toolCallCancellation` for it.
- Proactive audio (asked for in the setup): a sound without known words gets no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from adkvoice.errors import ProtocolError
from adkvoice.live_models import DEFAULT_SCHEDULING, Scheduling, message_shapes

from . import client_messages as p
from . import frames
from .context import compress, context_tokens, estimate_tokens
from .faults import Fault, FaultController, seconds_of
from .handles import ContextSnapshot, HandleOwner, IssuedHandles
from .handoff import agent_name, answerable, rule_applies
from .models import emulated_family
from .rules import TRANSFER_FUNCTION, Rule, Rules, TemplateContext, render
from .speaking import (
    TRANSCRIPT_WORDS_PER_CHUNK,
    ConnectionEnded,
    ConnectionOptions,
    Speaker,
    Transport,
    TransportClosed,
    word_groups,
)
from .speech import Stt, Tts, placeholder_transcript, resample
from .stats import ConnectionRecord, EmulatorStats
from .templates import template_context
from .turn_tasks import TurnMaker
from .turn_tasks import after as _after
from .turn_tasks import cancel as _cancel
from .vad import SpeechDetector, SpeechEnded, SpeechStarted, detector_for

log = logging.getLogger(__name__)

# ADK's send_history replays history as a fresh connection's first clientContent and, on 3.x,
# if it ends with the user, sends text "." so the model answers: the same as a typed ".", so
# only the message right after that first content is the nudge.
_NUDGE = "."
Status = frames.InteractionStatus

__all__ = ["ConnectionOptions", "LiveConnection", "Transport", "TransportClosed"]


@dataclass(frozen=True)
class CallResult:
    response: p.JsonObject
    scheduling: Scheduling | None


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
        self.family = emulated_family(setup.model)
        self.record = ConnectionRecord(model=setup.model, resumed=conversation is not None)
        self.conversation = conversation or ContextSnapshot()
        self._transport = transport
        self._rules = rules
        self._stt = stt
        self._faults = faults
        self._stats = stats
        self._handles = handles
        self._handle_owner = HandleOwner()
        self._options = options
        self._gemini3 = message_shapes(setup.model) == "3.x"
        self._speaker = Speaker(
            transport,
            setup,
            shapes="3.x" if self._gemini3 else "2.x",
            tts=tts,
            stats=stats,
            options=options,
        )
        self._functions = set(setup.function_names)
        self._system = setup.system_instruction
        self.record.agent = agent_name(self._system)  # the ADK agent it plays (see handoff)
        det = setup.activity_detection
        self._vad: SpeechDetector | None = None
        if not det.disabled:
            self._vad = detector_for(
                prefix_padding_ms=det.prefix_padding_ms,
                silence_duration_ms=det.silence_duration_ms,
                start_sensitivity=det.start_sensitivity,
                end_sensitivity=det.end_sensitivity,
            )
        self._activity: bytearray | None = None  # audio between activityStart and activityEnd
        self._history_phase = setup.initial_history_in_client_content
        self._turn_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._pending_calls: dict[str, asyncio.Future[CallResult]] = {}
        self._interaction_open = False  # IN_PROGRESS was sent and IDLE not yet
        self._nudge_due = False  # the next message may be ADK's nudge (see _NUDGE)
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

    async def _make_guarded(self, make: TurnMaker) -> None:
        """The turn's coroutine is made only once its task runs: input that arrives in one
        batch cancels the task before it starts, and a coroutine made earlier would then
        never be awaited."""
        await self._guard(make())

    async def _guard(self, coro: Any) -> None:
        """Run a session task so that no failure escapes as an unretrieved task exception."""
        try:
            await coro
        except (TransportClosed, ConnectionEnded):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("emulator session task failed")
            with contextlib.suppress(TransportClosed):
                await self._transport.close(1011, "Internal error encountered.")

    async def _send(self, frame: p.JsonObject) -> None:
        await self._speaker.send(frame)

    # FaultTarget (fault controller) -- ---------------------------------------------------
    async def go_away(self, time_left_s: float, *, send_handle: bool) -> None:
        if send_handle and self.setup.resumption and not self._speaker.open:
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
        nudge_due, self._nudge_due = self._nudge_due, False
        if isinstance(msg, p.ClientContent):
            await self._on_client_content(msg)
        elif isinstance(msg, p.RealtimeInput):
            await self._on_realtime(msg, nudge_due=nudge_due)
        elif isinstance(msg, p.ToolResponse):
            self._on_tool_response(msg)
        else:
            if msg.system_instruction is not None:
                self._system = msg.system_instruction
                self.record.agent = agent_name(self._system)
            if msg.function_names is not None:
                self._functions = set(msg.function_names)

    async def _on_client_content(self, msg: p.ClientContent) -> None:
        history = self.conversation.history
        self._nudge_due = self._gemini3 and msg.turn_complete and not history
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

    async def _on_realtime(self, msg: p.RealtimeInput, *, nudge_due: bool) -> None:
        self._history_phase = False
        if msg.used_media_chunks and self._gemini3:
            raise ProtocolError("this model does not take mediaChunks; send realtimeInput.audio")
        manual = self._vad is None
        if (msg.activity_start or msg.activity_end) and not manual:
            # Kept short: it must fit a WebSocket close reason.
            raise ProtocolError("activityStart/End need automaticActivityDetection.disabled=true")
        if msg.activity_start:
            if self.setup.barge_in:
                await self.interrupt()
            self._activity = bytearray()
        for chunk in msg.audio:
            await self._on_audio(chunk)
        if msg.activity_end and self._activity is not None:
            pcm, self._activity = bytes(self._activity), None
            if pcm:
                await self._start_speech_turn(pcm)
        if msg.audio_stream_end and self._vad is not None:
            ended = self._vad.flush()
            if ended is not None:
                await self._start_speech_turn(ended.pcm)
        if msg.text is not None:
            await self._on_text(msg.text, nudge=nudge_due and msg.text == _NUDGE)

    async def _on_audio(self, chunk: p.AudioChunk) -> None:
        self._stats.audio_in_bytes += len(chunk.pcm)
        pcm = resample(chunk.pcm, chunk.sample_rate, p.INPUT_RATE)
        if self._vad is None:
            if self._activity is not None:
                self._activity += pcm
            return
        for event in self._vad.feed(pcm):
            if isinstance(event, SpeechStarted) and self.setup.barge_in:
                await self.interrupt()
            elif isinstance(event, SpeechEnded):
                await self._start_speech_turn(event.pcm)

    async def _answer_history(self) -> None:
        """Answer a history that ends with the user: their message, or a tool result the
        model has not spoken about yet (then it speaks about that result)."""
        history = self.conversation.history
        last = answerable(history)  # after a handoff: the user's words, not ADK's notes
        if last is None:
            return
        if last.tool_result is None:
            await self._start_turn(partial(self._answer, last.text, in_history=True))
            return
        asked = next((t.text for t in reversed(history) if t.role == "user" and t.text), "")
        await self._start_turn(
            partial(self._answer, asked, in_history=True, tool_result=last.tool_result)
        )

    async def _on_text(self, text: str, *, nudge: bool) -> None:
        if nudge:
            if not self._busy():  # without a history phase it is being answered already
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
                fut.set_result(CallResult(response.response, response.scheduling))
                self._stats.tool_responses_received += 1
            else:
                self._stats.unmatched_tool_responses += 1

    # Turns -------------------------------------------------------------------------------
    def _busy(self) -> bool:
        return self._turn_task is not None and not self._turn_task.done()

    async def _start_turn(self, make: TurnMaker) -> None:
        """Answer new input: barge in on whatever is running, then run the new turn."""
        await self.interrupt()
        self._turn_task = asyncio.create_task(self._make_guarded(make))

    async def _start_speech_turn(self, pcm: bytes) -> None:
        make = partial(self._speech_turn, pcm)
        if self.setup.barge_in or not self._busy():
            await self._start_turn(make)
            return
        # activityHandling NO_INTERRUPTION: the utterance is answered after the reply.
        self._turn_task = asyncio.create_task(self._guard(_after(self._turn_task, make)))

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
        if self._speaker.open:
            spoken = self._speaker.close_turn()
            if spoken:
                self.conversation.history.append(p.Turn("model", spoken))
            await self._send(frames.interrupted())
            await self._turn_complete(spoken, self._idle_status())
            self._stats.interruptions += 1
            self.record.interruptions += 1
        elif self._interaction_open:
            # Nothing was being said, but the interaction (a background call) is over.
            await self._turn_complete("", self._idle_status())

    async def _speech_turn(self, pcm: bytes) -> None:
        self._stats.utterances += 1
        words = (await self._stt.transcribe(pcm)).strip()
        if not words and self.setup.proactive_audio:
            # Proactive audio: the model does not answer sound that is not speech to it.
            self._stats.ignored_utterances += 1
            return
        text = words or placeholder_transcript(pcm)
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

    def _usage(self, reply: str) -> frames.Usage:
        prompt = context_tokens(self._system, self.conversation.history)
        return frames.Usage(prompt, estimate_tokens(reply))

    def _compress_context(self) -> None:
        window = self.setup.compression
        done = None if window is None else compress(self.conversation.history, self._system, window)
        if done is not None:
            self._stats.compressions.append(done)
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
        rule = self._rules.match(text, self._rule_applies)
        if rule.fault == "silent" and rule.transfer is not None:
            self._faults.inject(Fault("silent"))  # for the turn of the agent handed to
        elif rule.fault is not None:
            faults.append(Fault.from_rule(rule))
        ctx = template_context(self.setup, self.conversation, self.record, text, rule)
        delay = self._options.think_time_s + seconds_of(faults, "delay")
        if delay > 0:
            await asyncio.sleep(delay)
        segments = rule.segments
        if any(fault.kind == "silent" for fault in faults):
            self._stats.faults_fired.append("silent")
            return  # the model never answers
        if rule.transfer is not None:
            await self._transfer(rule.transfer, [render(s, ctx) for s in segments], faults)
            return
        if rule.call is not None:
            if rule.call not in self._functions:
                segments = (
                    f"I would call the {rule.call} tool for that, "
                    "but this agent does not declare it.",
                )
            else:
                args = {
                    key: render(value, ctx) if isinstance(value, str) else value
                    for key, value in rule.args.items()
                }
                if tool_result is None and self._runs_in_background(rule.call):
                    await self._answer_in_background(rule, args, ctx, faults)
                    return
                if tool_result is None:
                    tool_result = (await self._call_tool(rule.call, args)).response
                ctx = replace(ctx, result=tool_result, has_result=True)
                segments = segments or (f"The {rule.call} tool returned {{result}}.",)
        await self._say([render(s, ctx) for s in segments or (self._rules.fallback,)], faults)

    def _rule_applies(self, rule: Rule) -> bool:
        return rule_applies(rule, system=self._system, functions=self._functions)

    async def _transfer(self, target: str, said: list[str], faults: list[Fault]) -> None:
        """Hand the conversation to `target` (ADK then connects again as that agent)."""
        if said:
            await self._speaker.speak(" ".join(said), faults)
        await self._call_tool(TRANSFER_FUNCTION, {"agent_name": target})
        spoken = self._speaker.close_turn()
        self.conversation.history.append(p.Turn("model", spoken or f"(to {target})"))
        if self._gemini3:  # 2.x ended the turn with the call
            await self._turn_complete(spoken, self._working_status())

    def _runs_in_background(self, function: str) -> bool:
        behavior = self.setup.behavior_of(function) or self.family.default_tool_behavior
        return behavior == "NON_BLOCKING" and self.family.background_tools

    async def _say(self, segments: list[str], faults: list[Fault]) -> None:
        """The reply, as the family says several segments: one model turn each, IN_PROGRESS
        until the last, where interactionStatus is reported; else one turn for them all."""
        if not self.family.interaction_status:
            await self._reply(" ".join(segments), faults, status=None)
            return
        for i, segment in enumerate(segments):
            last = i == len(segments) - 1
            await self._reply(segment, faults if i == 0 else [], "IDLE" if last else "IN_PROGRESS")

    async def _answer_in_background(
        self, rule: Rule, args: p.JsonObject, ctx: TemplateContext, faults: list[Fault]
    ) -> None:
        """A call the model does not wait for: talk meanwhile, speak the result later."""
        assert rule.call is not None
        call_id, result_arrives = await self._issue_call(rule.call, args, background=True)
        filler = None
        if rule.filler:
            filler = asyncio.ensure_future(
                self._reply(render(rule.filler, ctx), [], status=self._working_status())
            )
        try:
            result = await result_arrives
            scheduling = result.scheduling or DEFAULT_SCHEDULING
            self._stats.schedulings[scheduling] += 1
            if filler is not None and not filler.done() and scheduling == "INTERRUPT":
                await _cancel(filler)
                await self._cut_for_result()
            elif filler is not None:
                await filler  # WHEN_IDLE and SILENT let the model finish its sentence
        finally:
            self._pending_calls.pop(call_id, None)
            if filler is not None and not filler.done():
                await _cancel(filler)
        self.conversation.history.append(p.Turn("user", "", tool_result=result.response))
        if scheduling == "SILENT":
            # The result only enters the context; the interaction is over.
            if self.family.interaction_status:
                await self._turn_complete("", "IDLE")
            return
        ctx = replace(ctx, result=result.response, has_result=True)
        segments = rule.segments or (f"The {rule.call} tool returned {{result}}.",)
        await self._say([render(s, ctx) for s in segments], faults)

    async def _cut_for_result(self) -> None:
        """INTERRUPT scheduling: the result cuts short what the model is saying."""
        if not self._speaker.open:
            return
        spoken = self._speaker.close_turn()
        if spoken:
            self.conversation.history.append(p.Turn("model", spoken))
        await self._send(frames.interrupted())
        await self._turn_complete(spoken, self._working_status())

    async def _issue_call(
        self, name: str, args: p.JsonObject, *, background: bool
    ) -> tuple[str, asyncio.Future[CallResult]]:
        """Send a toolCall; the future resolves with the client's response."""
        call_id = f"emu-call-{secrets.token_hex(4)}-{name}"
        fut: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._pending_calls[call_id] = fut
        await self._maybe_not_resumable()
        await self._send(frames.tool_call([frames.FunctionCall(call_id, name, args)]))
        self._stats.tool_calls_sent += 1
        self._stats.tool_calls_by_name[name] += 1
        self.record.tool_calls[name] += 1
        if background:
            self._stats.background_calls += 1
        return call_id, fut

    async def _call_tool(self, name: str, args: p.JsonObject) -> CallResult:
        """A call the model waits for."""
        call_id, fut = await self._issue_call(name, args, background=False)
        try:
            self._speaker.open = True
            if not self._gemini3:
                # 2.x ends the model turn after a tool call; ADK surfaces the call only then.
                self._speaker.open = False
                await self._turn_complete(name, None)
            return await fut
        finally:
            self._pending_calls.pop(call_id, None)

    async def _maybe_not_resumable(self) -> None:
        if self._faults.mid_turn_resumption_updates and self.setup.resumption:
            await self._send(frames.resumption_update(None, resumable=False))

    async def _reply(self, text: str, faults: list[Fault], status: Status | None) -> None:
        """One model turn saying `text`, ended with turnComplete (and `status`)."""
        if not self._speaker.open:
            await self._maybe_not_resumable()
        for fault in faults:
            if fault.kind == "delay":
                self._stats.faults_fired.append("delay")
            if fault.kind == "malformed":
                self._stats.faults_fired.append("malformed")
                await self._transport.send('{"serverContent": {"modelTurn": ')
        await self._speaker.speak(text, faults)
        self._speaker.close_turn()
        await self._send(frames.generation_complete())
        await self._turn_complete(text, status)
        self.conversation.history.append(p.Turn("model", text))
        self._stats.turns_answered += 1
        self.record.turns_answered += 1
        if self.setup.resumption and status != "IN_PROGRESS":
            await self._issue_handle()
        for fault in faults:
            if fault.kind == "go-away":
                self._stats.faults_fired.append("go-away")
                await self.go_away(fault.seconds, send_handle=fault.send_handle)

    async def _turn_complete(self, said: str, status: Status | None) -> None:
        await self._send(frames.turn_complete(self._usage(said), status))
        if status is not None:
            self._stats.interaction_statuses.append(status)
            self._interaction_open = status == "IN_PROGRESS"

    def _working_status(self) -> Status | None:
        return "IN_PROGRESS" if self.family.interaction_status else None

    def _idle_status(self) -> Status | None:
        return "IDLE" if self.family.interaction_status else None

    async def _issue_handle(self) -> None:
        handle = self._handles.issue(self._handle_owner, self.conversation)
        self._stats.handles_issued += 1
        await self._send(frames.resumption_update(handle, resumable=True))
