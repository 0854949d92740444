"""The embedded backend: an ADK agent in this process, through `Runner.run_live`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal

from google.adk.agents.live_request_queue import LiveRequest, LiveRequestQueue

from adkvoice.agents.loading import (
    declared_behaviors,
    root_agent,
    with_background_tools,
    with_model,
    with_thinking,
)
from adkvoice.backends import link
from adkvoice.backends.base import Capabilities
from adkvoice.backends.handoff import HandoffWatch, agents_in_tree, silent_handoff_line
from adkvoice.backends.live_config import background_rule, run_config
from adkvoice.backends.outbox import Outbox
from adkvoice.backends.recovery import (
    MAX_HELD_AUDIO_BYTES,
    AnsweredFromHistory,
    Backoff,
    GiveUp,
    Retry,
    SendHold,
    ToolReplay,
    TurnLedger,
    dropped_audio_notice,
)
from adkvoice.errors import (
    BackendError,
    ConfigError,
    ConnectionLostError,
    ModelRejectedError,
    StoreError,
)
from adkvoice.events import (
    AgentTeam,
    AnswerComplete,
    Event,
    Handoff,
    Interrupted,
    Modality,
    ResumptionHandle,
)
from adkvoice.live_models import is_text_refusal
from adkvoice.live_options import LiveOptions, LivePlan, plan_session
from adkvoice.store.session_window import SessionWindow
from adkvoice.store.sessions import new_session_id
from adkvoice.tasks import cancel_and_wait
from adkvoice.wire.adk_events import AdkEventMapper
from adkvoice.wire.close_codes import describe_close

if TYPE_CHECKING:
    from google.adk.agents.run_config import RunConfig
    from google.adk.runners import Runner
    from google.adk.sessions.base_session_service import BaseSessionService
    from google.genai.types import Blob

    from adkvoice.agents.loading import LoadedAgent
    from adkvoice.store.handles import HandleStore

log = logging.getLogger(__name__)

ActivitySignal = Literal["activity_start", "activity_end"]  # push-to-talk, held in order


def translate_exception(exc: BaseException, model: str) -> BackendError:
    """Turn what `run_live` raises into one error a user can act on."""
    from google.genai import errors as genai_errors

    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, genai_errors.APIError):
        code = exc.code
        # For a Live close, genai puts the close reason in `details`; message is None.
        detail = exc.details if isinstance(exc.details, str) else ""
        message = (exc.message or detail or exc.status or "").strip().rstrip(".")
        lowered = message.lower()
        if code == 1008 and ("not found" in lowered or "not supported" in lowered):
            return ModelRejectedError(
                f"the model {model!r} was rejected: {message}. Pick a Live API model with --model"
            )
        if code in (401, 403) or "api key" in lowered:
            return BackendError(f"Google rejected the credentials: {message}")
        if code in (1006, 1011, 1012, 1013, 1001):
            return ConnectionLostError(
                f"lost the connection to the model: {describe_close(code, message)}"
            )
        return BackendError(f"the model ended the session: {describe_close(code, message)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = getattr(exc, "verify_message", None) or str(exc)
        return BackendError(
            f"the model endpoint's TLS certificate was not trusted ({why}); for a private CA "
            "set SSL_CERT_FILE to a bundle that holds it"
        )
    if isinstance(exc, ssl.SSLError):
        return BackendError(
            f"TLS failed talking to the model: {getattr(exc, 'reason', None) or exc}"
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionLostError("cannot reach the Live API endpoint: connection refused")
    if isinstance(exc, OSError):
        return ConnectionLostError(f"cannot reach the Live API endpoint: {exc.strerror or exc}")
    if isinstance(exc, ValueError) and "Failed to parse response" in str(exc):
        return ConnectionLostError("the model sent a malformed message; the session ended")
    return BackendError(f"the agent failed: {type(exc).__name__}: {exc}")


class EmbeddedBackend:
    """Runs `Runner.run_live` in a task and yields its events, normalized.

    The conversation survives its connection: ADK resumes with the latest handle after
    goAway or a drop; when ADK gives up, `run_live` is started again with backoff and
    the last handle (or, without one, the history from the session store). A typed turn
    the old connection lost is sent again, with its tools' results replayed rather than
    run twice, and microphone audio captured while disconnected is held (about 2 s).
    """

    def __init__(
        self,
        loaded: LoadedAgent,
        *,
        modality: Modality,
        model: str | None = None,
        session_service: BaseSessionService | None = None,
        store_label: str = "",
        user_id: str = "user",
        session_id: str | None = None,
        endpoint_label: str = "Gemini",
        manual_activity: bool = False,
        handles: HandleStore | None = None,
        handle_key: str | None = None,
        context_compression: int | None = 0,
        backoff: Backoff | None = None,
        live: LiveOptions | None = None,
    ) -> None:
        self._loaded = loaded
        self._modality = modality
        self._live = live or LiveOptions()
        self._plan: LivePlan | None = None  # the options met with the model, at start
        self._speech_as_text = False  # text replies from the model's speech transcript
        self._runs_in_background: Callable[[str], bool] = lambda _name: False
        self._model_override = model
        self._session_service = session_service
        self._store_label = store_label
        self._user_id = user_id
        self._session_id = session_id or new_session_id()
        self._endpoint_label = endpoint_label
        # Push-to-talk: the client marks turns with activity start/end instead of the
        # model's own voice activity detection.
        self._manual_activity = manual_activity
        # Context window compression: None = off, 0 = the server's defaults, N = start
        # compressing at N tokens.
        self._context_compression = context_compression
        self._handles = handles
        self._handle_key = handle_key
        self._handle: str | None = None  # the latest resumption handle
        self._backoff = backoff or Backoff()
        self._queue: LiveRequestQueue | None = None
        self._outbox = Outbox()
        self._task: asyncio.Task[None] | None = None
        self._model_name = ""
        self._closing = False
        self._last_error: str | None = None
        # Reconnect bookkeeping (see recovery.py); `_observed` is False when the agent's
        # model is not Gemini and connections cannot be seen.
        self._observed = False
        self._link_is_up = False
        self._ledger = TurnLedger()
        self.tool_replay = ToolReplay()
        # Microphone audio and push-to-talk signals, in order: a signal must not overtake
        # the audio it frames.
        self._audio_hold: SendHold[bytes | ActivitySignal] = SendHold(MAX_HELD_AUDIO_BYTES)
        # Teams: a handoff reconnects for the agent handed to; say so if it never answers.
        self._team: tuple[str, ...] = ()
        self._handing_over = False  # a handoff was seen and its new connection not yet
        self.handoffs = HandoffWatch(self._handoff_silent)

    capabilities = Capabilities(
        push_to_talk=True, tool_events=True, user_transcripts=True, usage=True, images=True
    )

    @property
    def description(self) -> str:
        return f"{self._loaded.source} · {self._model_name} · {self._endpoint_label}"

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def model_name(self) -> str:
        return self._model_name

    def _build_runner(self) -> Runner:
        from google.adk.agents.llm_agent import LlmAgent
        from google.adk.runners import Runner
        from google.adk.sessions.in_memory_session_service import InMemorySessionService

        service = SessionWindow(
            self._session_service or InMemorySessionService(),
            label=self._store_label,
            on_write_error=self._store_failed,
        )
        root = root_agent(self._loaded)
        if (
            self._model_override
            and isinstance(root, LlmAgent)
            and root.canonical_live_model.model != self._model_override
        ):
            self._loaded = with_model(self._loaded, self._model_override)
            root = root_agent(self._loaded)
        if isinstance(root, LlmAgent):
            self._model_name = root.canonical_live_model.model
        # What the options become for this model; what it rejects ends here, in one line.
        plan = plan_session(self._live, self._model_name, text_replies=self._modality == "TEXT")
        self._plan = plan
        self._speech_as_text = plan.speech_as_text
        for notice in plan.notices:
            self._notice(notice, level="info")
        family = plan.family
        if family is not None and family.default_tool_behavior == "NON_BLOCKING":
            self._loaded = with_background_tools(self._loaded)
        self._loaded = with_thinking(self._loaded, plan.thinking)
        root = root_agent(self._loaded)
        team = [agent for agent in agents_in_tree(root) if isinstance(agent, LlmAgent)]
        self._team = tuple(agent.name for agent in team)
        if team:
            behaviors = {
                name: how for agent in team for name, how in declared_behaviors(agent).items()
            }
            self._runs_in_background = background_rule(family, behaviors)
            # Every agent of a team: a handoff opens the next agent's own connection.
            self._observed = all([link.install(agent) for agent in team])
        if self._loaded.app is not None:
            return Runner(
                app=self._loaded.app,
                app_name=self._loaded.app_name,
                session_service=service,
                auto_create_session=True,
            )
        if self._loaded.agent is None:
            raise ConfigError("no agent to run")
        return Runner(
            app_name=self._loaded.app_name,
            agent=self._loaded.agent,
            session_service=service,
            auto_create_session=True,
        )

    def _run_config(self, handle: str | None) -> RunConfig:
        assert self._plan is not None
        return run_config(
            self._plan,
            audio=self._modality == "AUDIO" or self._speech_as_text,
            handle=handle,
            context_compression=self._context_compression,
            manual_activity=self._manual_activity,
        )

    async def start(self) -> None:
        runner = self._build_runner()
        self._queue = _TrackedQueue(self._ledger.taken)
        if len(self._team) > 1:
            self._outbox.put(AgentTeam(names=self._team))
        if self._handles is not None and self._handle_key is not None:
            saved = self._handles.load(self._handle_key)
            if saved is not None:
                self._handle = saved.handle
                age = max(0.0, time.time() - saved.saved_at)
                self._notice(
                    f"resuming the model's live session (saved {_format_age(age)} ago)",
                    level="info",
                )
        self._task = asyncio.create_task(self._pump(runner), name="adk-run-live")

    # -- the run_live loop ------------------------------------------------------------
    async def _pump(self, runner: Runner) -> None:
        link.current_listener.set(self)
        delays = self._backoff.delays()
        attempt = 0
        refused_with_handle = 0  # attempts with a handle that never connected
        try:
            while True:
                handle = self._handle
                opened_before = self._ledger.connections
                try:
                    await self._run_live_once(runner, handle)
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.debug("run_live failed", exc_info=True)
                    if self._text_refused(exc):
                        continue
                    error = translate_exception(exc, self._model_name)
                    self._last_error = str(error)
                if self._closing or self._outbox.failure is not None:
                    return
                if isinstance(error, StoreError):  # a new connection would meet it again
                    self._outbox.failure = error
                    return
                connected = self._ledger.connections > opened_before
                if handle is not None and not connected:
                    refused_with_handle += 1
                if refused_with_handle and (
                    not isinstance(error, ConnectionLostError) or refused_with_handle >= 2
                ):
                    # The endpoint refused the handle (expired, from another session) or
                    # keeps failing with it: start afresh; the session store still has
                    # the conversation.
                    refused_with_handle = 0
                    self._forget_handle()
                    self._notice(
                        "the saved live session could not be resumed; continuing from "
                        "the stored conversation",
                        level="info",
                    )
                    continue
                if not isinstance(error, ConnectionLostError):
                    self._outbox.failure = error
                    return
                if connected:
                    delays, attempt = self._backoff.delays(), 0  # it worked for a while
                    refused_with_handle = 0
                delay = next(delays, None)
                attempt += 1
                if delay is None:
                    self._outbox.failure = ConnectionLostError(
                        f"{error} (gave up after {self._backoff.attempts} attempts)"
                    )
                    return
                self._notice(
                    f"{error}; reconnecting in {delay:.1f} s "
                    f"(attempt {attempt} of {self._backoff.attempts})"
                )
                await asyncio.sleep(delay)
        finally:
            self._outbox.end()

    def _text_refused(self, exc: BaseException) -> bool:
        """The model refused a TEXT setup (it only speaks): ask for speech from now on and
        show its transcript as the text reply. True when the run should start again."""
        from google.genai import errors as genai_errors

        if self._modality != "TEXT" or self._speech_as_text:
            return False
        if not isinstance(exc, genai_errors.APIError):
            return False
        reason = exc.details if isinstance(exc.details, str) else (exc.message or "")
        if not is_text_refusal(exc.code, reason):
            return False
        self._speech_as_text = True
        self._notice(
            f"{self._model_name} refused text replies (it answers in audio only): "
            "reconnecting for speech and showing its transcript as the text reply",
            level="info",
        )
        return True

    async def _run_live_once(self, runner: Runner, handle: str | None) -> None:
        assert self._queue is not None
        mapper = AdkEventMapper(
            speech_as_text=self._speech_as_text, runs_in_background=self._runs_in_background
        )
        async with contextlib.aclosing(
            runner.run_live(
                user_id=self._user_id,
                session_id=self._session_id,
                live_request_queue=self._queue,
                run_config=self._run_config(handle),
            )
        ) as stream:
            async for adk_event in stream:
                for event in mapper.map(adk_event):
                    self._deliver(event)

    def _deliver(self, event: Event) -> None:
        if isinstance(event, ResumptionHandle) and event.resumable:
            self._keep_handle(event.handle)
        if isinstance(event, Handoff):
            self._handing_over = True
        self.handoffs.observe(event)
        answered = self._ledger.observe(event)
        self._outbox.put(event)
        if answered:
            self.tool_replay.new_turn()
            self._outbox.put(AnswerComplete())

    def _handoff_silent(self, handoff: Handoff) -> None:
        """The agent handed to said nothing in time: one line, and the answer ends."""
        self._notice(silent_handoff_line(handoff, self.handoffs.bound_s))
        self._outbox.put(AnswerComplete())

    def _store_failed(self, exc: Exception) -> None:
        """A write to the session store failed, maybe in ADK's send task, whose failure
        ADK would only raise once a reply that cannot come has ended: end the run now."""
        if self._outbox.failure is None:
            self._outbox.failure = translate_exception(exc, self._model_name)
        if self._task is not None:
            self._task.cancel()

    def _notice(self, message: str, *, level: Literal["info", "warning"] = "warning") -> None:
        self._outbox.notice(message, level=level)

    def _keep_handle(self, handle: str) -> None:
        self._handle = handle
        if self._handles is not None and self._handle_key is not None:
            self._handles.save(self._handle_key, handle)

    def _forget_handle(self) -> None:
        self._handle = None
        if self._handles is not None and self._handle_key is not None:
            self._handles.forget(self._handle_key)

    # -- link.LinkListener: ADK's connections opening and closing ----------------------
    def link_up(self, *, resumed: bool, history_ends_with_user: bool) -> None:
        assert self._queue is not None
        self._link_is_up = True
        outcome = self._ledger.connected(history_ends_with_user)
        log.debug("connection %d up (resumed=%s): %s", self._ledger.connections, resumed, outcome)
        handoff, self._handing_over = self._handing_over, False
        if handoff and isinstance(outcome, AnsweredFromHistory | None):
            # ADK's handoff: the agent handed to answers the replayed conversation.
            outcome = None
        elif self._ledger.connections > 1:
            how = "resumed" if resumed else "history replayed"
            self._notice(f"reconnected to the model ({how})", level="info")
        if isinstance(outcome, AnsweredFromHistory):
            if outcome.had_output:
                self._outbox.put(Interrupted(source="connection"))
            self.tool_replay.repeating()
        elif isinstance(outcome, Retry):
            if outcome.had_output:
                # The part already shown will not be finished; a fresh answer follows.
                self._outbox.put(Interrupted(source="connection"))
            self._notice("the connection ended before the reply was complete; asking again")
            self.tool_replay.repeating()
            request = _text_request(outcome.text)
            self._ledger.resent(request)
            self._queue.send(request)
        elif isinstance(outcome, GiveUp):
            # The same message keeps breaking the connection: end rather than loop.
            why = self._last_error or "the connection to the model kept ending mid-reply"
            self._outbox.failure = ConnectionLostError(
                f"{why}; your message got no complete reply in {outcome.failures} attempts"
            )
            self._queue.close()
            return
        dropped = self._audio_hold.dropped_bytes
        for item in self._audio_hold.take():
            self._send_now(self._queue, item)
        if dropped:
            self._notice(dropped_audio_notice(dropped, reconnecting=self._ledger.connections > 1))

    def link_down(self, *, failed: bool) -> None:
        self._link_is_up = False
        self._ledger.disconnected(failed=failed)
        log.debug("connection %d down (failed=%s)", self._ledger.connections, failed)

    # -- sending ------------------------------------------------------------------------
    def _require_queue(self) -> LiveRequestQueue:
        if self._queue is None:
            raise RuntimeError("backend not started")
        self._outbox.raise_if_failed()
        return self._queue

    async def send_text(self, text: str) -> None:
        queue = self._require_queue()
        request = _text_request(text)
        self._ledger.sent(text, request)
        self.tool_replay.new_turn()
        queue.send(request)

    def _send_now(self, queue: LiveRequestQueue, item: bytes | ActivitySignal) -> None:
        if item == "activity_start":
            queue.send_activity_start()
        elif item == "activity_end":
            queue.send_activity_end()
        else:
            assert isinstance(item, bytes)
            queue.send_realtime(_audio_blob(item))

    def _send_or_hold(self, item: bytes | ActivitySignal) -> None:
        queue = self._require_queue()
        if self._observed and not self._link_is_up:
            # Not connected yet, or reconnecting: hold it (audio bounded) for afterwards.
            size = len(item) if isinstance(item, bytes) else 0
            if self._audio_hold.add(item, audio_bytes=size):
                log.debug("audio hold full: dropping the oldest audio")
            return
        self._send_now(queue, item)

    async def send_audio(self, pcm16k: bytes) -> None:
        self._send_or_hold(pcm16k)

    async def send_image(self, data: bytes, mime_type: str) -> None:
        """A still image for the model to see (image/jpeg, image/png or image/webp). Not
        held while reconnecting: ADK's queue keeps it for the next connection."""
        from google.genai import types

        self._require_queue().send_realtime(types.Blob(data=data, mime_type=mime_type))

    async def send_activity_start(self) -> None:
        self._send_or_hold("activity_start")

    async def send_activity_end(self) -> None:
        self._send_or_hold("activity_end")

    def events(self) -> AsyncIterator[Event]:
        return self._outbox.events()

    async def close(self) -> None:
        self._closing = True
        self.handoffs.cancel()
        if self._queue is not None:
            self._queue.close()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=2.0)
            except TimeoutError:
                await cancel_and_wait(self._task)


def _format_age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def _text_request(text: str) -> LiveRequest:
    from google.adk.agents.live_request_queue import LiveRequest
    from google.genai import types

    return LiveRequest(content=types.Content(role="user", parts=[types.Part(text=text)]))


def _audio_blob(pcm16k: bytes) -> Blob:
    from google.genai import types

    return types.Blob(data=pcm16k, mime_type="audio/pcm;rate=16000")


class _TrackedQueue(LiveRequestQueue):
    """ADK's request queue, telling the ledger which request each connection takes."""

    def __init__(self, on_taken: Callable[[object], None]) -> None:
        super().__init__()
        self._on_taken = on_taken

    async def get(self) -> LiveRequest:
        request = await super().get()
        self._on_taken(request)
        return request
