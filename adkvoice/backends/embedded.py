"""The embedded backend: an ADK agent in this process, through `Runner.run_live`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Literal

from adkvoice.backends.adk_events import AdkEventMapper
from adkvoice.close_codes import describe_close
from adkvoice.errors import (
    BackendError,
    ConfigError,
    ConnectionLostError,
    ModelRejectedError,
)
from adkvoice.events import Event
from adkvoice.tasks import cancel_and_wait

if TYPE_CHECKING:
    from google.adk.agents.live_request_queue import LiveRequestQueue
    from google.adk.runners import Runner
    from google.adk.sessions.base_session_service import BaseSessionService

    from adkvoice.agent_loading import LoadedAgent

log = logging.getLogger(__name__)

Modality = Literal["TEXT", "AUDIO"]


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
    """Runs `Runner.run_live` in a task and yields its events, normalized."""

    def __init__(
        self,
        loaded: LoadedAgent,
        *,
        modality: Modality,
        model: str | None = None,
        session_service: BaseSessionService | None = None,
        user_id: str = "user",
        session_id: str | None = None,
        endpoint_label: str = "Gemini",
        manual_activity: bool = False,
    ) -> None:
        self._loaded = loaded
        self._modality = modality
        self._model_override = model
        self._session_service = session_service
        self._user_id = user_id
        self._session_id = session_id or f"adkvoice-{uuid.uuid4().hex[:12]}"
        self._endpoint_label = endpoint_label
        # Push-to-talk: the client marks turns with activity start/end instead of the
        # model's own voice activity detection.
        self._manual_activity = manual_activity
        self._queue: LiveRequestQueue | None = None
        # None marks the end of the conversation.
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failure: BackendError | None = None
        self._model_name = ""

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

        service = self._session_service or InMemorySessionService()
        root = self._loaded.app.root_agent if self._loaded.app else self._loaded.agent
        if isinstance(root, LlmAgent):
            if self._model_override:
                root.model = self._model_override
            self._model_name = root.canonical_model.model
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

    def _run_config(self) -> object:
        from google.adk.agents.run_config import RunConfig
        from google.genai import types

        audio = self._modality == "AUDIO"
        return RunConfig(
            response_modalities=[types.Modality.AUDIO if audio else types.Modality.TEXT],
            output_audio_transcription=types.AudioTranscriptionConfig() if audio else None,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(),
            realtime_input_config=(
                types.RealtimeInputConfig(
                    automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
                )
                if self._manual_activity
                else None
            ),
        )

    async def start(self) -> None:
        from google.adk.agents.live_request_queue import LiveRequestQueue

        runner = self._build_runner()
        self._queue = LiveRequestQueue()
        run_config = self._run_config()
        self._task = asyncio.create_task(self._pump(runner, run_config), name="adk-run-live")

    async def _pump(self, runner: Runner, run_config: object) -> None:
        from google.adk.agents.run_config import RunConfig

        assert self._queue is not None
        assert isinstance(run_config, RunConfig)
        mapper = AdkEventMapper()
        try:
            async with contextlib.aclosing(
                runner.run_live(
                    user_id=self._user_id,
                    session_id=self._session_id,
                    live_request_queue=self._queue,
                    run_config=run_config,
                )
            ) as stream:
                async for adk_event in stream:
                    for event in mapper.map(adk_event):
                        self._events.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("run_live failed", exc_info=True)
            self._failure = translate_exception(exc, self._model_name)
        finally:
            self._events.put_nowait(None)

    def _require_queue(self) -> LiveRequestQueue:
        if self._queue is None:
            raise RuntimeError("backend not started")
        if self._failure is not None:
            raise self._failure
        return self._queue

    async def send_text(self, text: str) -> None:
        from google.genai import types

        self._require_queue().send_content(
            types.Content(role="user", parts=[types.Part(text=text)])
        )

    async def send_audio(self, pcm16k: bytes) -> None:
        from google.genai import types

        self._require_queue().send_realtime(
            types.Blob(data=pcm16k, mime_type="audio/pcm;rate=16000")
        )

    async def send_activity_start(self) -> None:
        self._require_queue().send_activity_start()

    async def send_activity_end(self) -> None:
        self._require_queue().send_activity_end()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            item = await self._events.get()
            if item is None:
                self._events.put_nowait(None)  # later callers see the end too
                if self._failure is not None:
                    raise self._failure
                return
            yield item

    async def close(self) -> None:
        if self._queue is not None:
            self._queue.close()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=2.0)
            except TimeoutError:
                await cancel_and_wait(self._task)
