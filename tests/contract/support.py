"""The backends a user can pick, each started against the offline emulator, and an event
collector the contract tests share.

Nothing is mocked: every backend runs the real ADK and google-genai against the emulator
on loopback. The transports:

- ``embedded``: `Runner.run_live` in this process (`factory.embedded_backend`).
- ``seeds``: `adkvoice serve`, spoken to in the plain seeds protocol (the client offers
  no subprotocol, so the server answers in the seeds' frames).
- ``adkvoice.v1``: `adkvoice serve`, with the extension negotiated.
- ``run_live``: ADK's own api server (`get_fast_api_app`, under uvicorn in this process),
  at ``/run_live``.
- ``bidi``: a server doing what ADK's bidi-demo sample does
  (`tests.integration.bidi_demo_server`), at ``/ws/USER_ID/SESSION_ID``. The demo picks the
  reply modality from its model's name, so speech is asked of it with a native-audio model
  (`NATIVE_AUDIO`), and text with a 3.x model, which the demo asks for text it refuses,
  is skipped.
- ``bidi@serve``: `adkvoice serve`'s bidi-demo route (``/ws/USER_ID/SESSION_ID``), spoken
  to by the same bidi-demo client. Serve picks the modality from its model as the demo
  does, but from the model catalogue: a model that only speaks answers in speech with its
  transcript (taken as the text reply), so only speech needs a model swap (a model that
  only speaks: `NATIVE_AUDIO`).
- ``seeds-sse``: `adkvoice serve`'s routes for the sample's SSE version (``/events/ID``
  down, a POST to ``/send/ID`` per message up).
- ``seeds@sample`` and ``seeds-sse@sample``: a server doing what the ADK streaming
  sample does, WebSocket and SSE version (`tests.integration.sample_server`): a new session
  per connection, TEXT or AUDIO as asked; a 3.x model, which refuses TEXT, is skipped for
  text.
- ``run_sse``: ADK's own api server at ``/run_sse``, a run per typed turn; it carries no
  audio, so the speech tests check that it is refused and skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from google.adk.agents.base_agent import BaseAgent
from google.adk.apps.app import App
from google.adk.cli.fast_api import get_fast_api_app
from google.adk.cli.utils.base_agent_loader import BaseAgentLoader
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from websockets.typing import Subprotocol

from adkvoice import events as ev
from adkvoice import live_models
from adkvoice.backends.base import Backend
from adkvoice.backends.endpoints import (
    BidiDemoEndpoint,
    Endpoint,
    RunLiveEndpoint,
    RunSseEndpoint,
    SeedsEndpoint,
    SeedsSseEndpoint,
)
from adkvoice.backends.factory import embedded_backend
from adkvoice.backends.recovery import Backoff
from adkvoice.backends.remote import RemoteBackend
from adkvoice.emulator import Emulator
from adkvoice.errors import ConfigError
from adkvoice.server.bidi_ws import speaks_only
from tests.integration.bidi_demo_server import bidi_demo_server, free_socket, serving_asgi
from tests.integration.emulator_support import MODEL_2X, running_emulator, utterance_16k
from tests.integration.sample_server import sample_server
from tests.integration.server_support import Clock, make_agent, serving

Kind = Literal[
    "embedded",
    "seeds",
    "adkvoice.v1",
    "run_live",
    "bidi",
    "bidi@serve",
    "seeds-sse",
    "seeds@sample",
    "seeds-sse@sample",
    "run_sse",
]
KINDS: tuple[Kind, ...] = (
    "embedded",
    "seeds",
    "adkvoice.v1",
    "run_live",
    "bidi",
    "bidi@serve",
    "seeds-sse",
    "seeds@sample",
    "seeds-sse@sample",
    "run_sse",
)
Modality = Literal["TEXT", "AUDIO"]

STEP_S = 10.0  # the longest any one step (a connection, an answer) may take
QUIET_S = 0.4  # after an answer: a doubled AnswerComplete would arrive within this
NATIVE_AUDIO = "gemini-2.5-flash-native-audio-latest"  # a model bidi-demo asks speech of
APP = "servetest"  # make_agent's app name, also the /run_live app_name
# Reconnects quickly, so a dropped connection costs the tests little time.
FAST_BACKOFF = Backoff(first_s=0.05, max_s=0.2, attempts=8)


class PlainSeedsEndpoint(SeedsEndpoint):
    """`SeedsEndpoint` that does not offer adkvoice.v1: the server speaks plain seeds."""

    def subprotocols(self) -> list[Subprotocol] | None:
        return None


# -- ADK's api server, in process ----------------------------------------------------------
class OneAgentLoader(BaseAgentLoader):
    """Serves the test agent under `APP`, built in this test (so its genai client is
    built after the emulator's environment is set, not cached from an earlier test)."""

    def __init__(self, agent: BaseAgent) -> None:
        self._agent = agent

    def load_agent(self, agent_name: str) -> BaseAgent | App:
        if agent_name != APP:
            raise ValueError(f"no agent {agent_name!r}")
        return self._agent

    def list_agents(self) -> list[str]:
        return [APP]


@asynccontextmanager
async def adk_api_server(agent: BaseAgent, agents_dir: Path) -> AsyncIterator[str]:
    """`adk api_server` for `agent`, on 127.0.0.1 at a free port; yields its ws:// base.
    `agents_dir` is an existing folder the server may keep files under (it keeps none:
    its sessions, artifacts and memory are in memory)."""
    with free_socket() as sock:
        async with _uvicorn_on(sock, agent, agents_dir) as url:
            yield url


@asynccontextmanager
async def _uvicorn_on(
    sock: socket.socket, agent: BaseAgent, agents_dir: Path
) -> AsyncIterator[str]:
    port = int(sock.getsockname()[1])
    app = get_fast_api_app(
        agents_dir=str(agents_dir),
        agent_loader=OneAgentLoader(agent),
        session_service_uri="memory://",
        artifact_service_uri="memory://",
        memory_service_uri="memory://",
        use_local_storage=False,
        web=False,
        host="127.0.0.1",
        port=port,
    )
    async with serving_asgi(app, sock) as url:
        yield url


# -- a started backend of each kind --------------------------------------------------------
@dataclass
class Live:
    """A started backend, the emulator behind it and the tool it runs."""

    kind: Kind
    backend: Backend
    emulator: Emulator
    clock: Clock
    events: Collector

    async def model_connected(self) -> None:
        """Until the agent has a live connection to the model (the emulator's side)."""
        async with asyncio.timeout(STEP_S):
            while self.emulator.faults.live_connections < 1:  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.01)


@asynccontextmanager
async def _remote(kind: Kind, url: str, modality: Modality) -> AsyncIterator[RemoteBackend]:
    endpoint: Endpoint
    if kind in ("seeds", "seeds@sample"):
        endpoint = PlainSeedsEndpoint(url, modality=modality)
    elif kind in ("seeds-sse", "seeds-sse@sample"):
        endpoint = SeedsSseEndpoint(url, modality=modality)
    elif kind == "run_sse":
        endpoint = RunSseEndpoint(url, modality=modality, token=None)
    elif kind == "adkvoice.v1":
        endpoint = SeedsEndpoint(url, modality=modality)
    elif kind in ("bidi", "bidi@serve"):
        endpoint = BidiDemoEndpoint(url, modality=modality)
    else:
        endpoint = RunLiveEndpoint(url, modality=modality, token=None)
    backend = RemoteBackend(endpoint, backoff=FAST_BACKOFF, resend_after_s=1.0)
    async with asyncio.timeout(STEP_S):
        await backend.start()
    yield backend


def bidi_demo_model(model: str, modality: Modality) -> str:
    """The model a bidi-demo server runs for a test of `model` and `modality`: speech only
    comes from a native-audio model; text from a 3.x model cannot come at all."""
    if modality == "AUDIO":
        return NATIVE_AUDIO
    family = live_models.family_of(model)
    if family is None or family.text_replies:
        return model
    pytest.skip(f"bidi-demo asks {model} for TEXT replies, which it refuses")


def sample_model(model: str, modality: Modality) -> str:
    """The model the sample's server runs for a test: it asks for the reply modality the
    client asks for, so text cannot come from a model that only speaks."""
    family = live_models.family_of(model)
    if modality == "AUDIO" or family is None or family.text_replies:
        return model
    pytest.skip(f"the ADK streaming sample asks {model} for TEXT replies, which it refuses")


def serve_bidi_model(model: str, modality: Modality) -> str:
    """The model `adkvoice serve` runs for a bidi-demo test: any model answers text (one
    that only speaks, with its transcript); speech comes from a model that only speaks."""
    if modality == "TEXT" or speaks_only(model):
        return model
    return NATIVE_AUDIO


@asynccontextmanager
async def _backend(
    kind: Kind,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    modality: Modality,
    manual_activity: bool,
    model: str,
    emulator: dict[str, Any],
) -> AsyncIterator[tuple[Backend, Emulator, Clock]]:
    if kind == "run_sse" and modality == "AUDIO":
        with pytest.raises(ConfigError, match="text only"):
            RunSseEndpoint("http://h/run_sse?app_name=a", modality=modality, token=None)
        pytest.skip("ADK's /run_sse carries no audio (refused before connecting)")
    if kind in ("seeds", "adkvoice.v1", "seeds-sse"):
        async with serving(monkeypatch, model=model, emulator=emulator, audio_burst_s=30) as srv:
            url = f"{srv.server.ws_url}/ws/contract1"
            if kind == "seeds-sse":
                url = f"{srv.server.url}/events/contract1"
            async with _remote(kind, url, modality) as remote:
                yield remote, srv.emulator, srv.clock
        return
    if kind == "bidi@serve":
        model = serve_bidi_model(model, modality)
        async with serving(monkeypatch, model=model, emulator=emulator, audio_burst_s=30) as srv:
            url = f"{srv.server.ws_url}/ws/u1/contract1"
            async with _remote(kind, url, modality) as remote:
                yield remote, srv.emulator, srv.clock
        return
    if kind == "bidi":
        model = bidi_demo_model(model, modality)
    if kind in ("seeds@sample", "seeds-sse@sample"):
        model = sample_model(model, modality)
    async with running_emulator(monkeypatch, **emulator) as emu:
        clock = Clock()
        loaded = make_agent(model, clock)
        if kind == "bidi":
            assert loaded.agent is not None
            async with (
                bidi_demo_server(loaded.agent) as base,
                _remote(kind, f"{base}/ws/u1/contract1", modality) as remote,
            ):
                yield remote, emu, clock
            return
        if kind in ("seeds@sample", "seeds-sse@sample"):
            assert loaded.agent is not None
            async with sample_server(loaded.agent) as base:
                url = f"{base}/ws/contract1"
                if kind == "seeds-sse@sample":
                    url = base.replace("ws://", "http://", 1) + "/events/contract1"
                async with _remote(kind, url, modality) as remote:
                    yield remote, emu, clock
            return
        if kind in ("run_live", "run_sse"):
            assert loaded.agent is not None
            async with adk_api_server(loaded.agent, tmp_path) as base:
                url = f"{base}/run_live?app_name={APP}&user_id=u1"
                if kind == "run_sse":
                    url = (
                        base.replace("ws://", "http://", 1) + f"/run_sse?app_name={APP}&user_id=u1"
                    )
                async with _remote(kind, url, modality) as remote:
                    yield remote, emu, clock
            return
        embedded = embedded_backend(
            loaded,
            modality=modality,
            model=None,
            session_service=InMemorySessionService(),
            store_label="memory",
            handles_dir=None,
            user_id="user",
            session_id=None,
            endpoint_label="emulator",
            context_compression=0,
            manual_activity=manual_activity,
        )
        await embedded.start()
        yield embedded, emu, clock


@asynccontextmanager
async def started(
    kind: Kind,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    modality: Modality = "TEXT",
    manual_activity: bool = False,
    model: str = MODEL_2X,
    emulator: dict[str, Any] | None = None,
) -> AsyncIterator[Live]:
    """A started backend of `kind`, its events collected; closed (bounded) on exit."""
    async with _backend(
        kind,
        monkeypatch,
        tmp_path,
        modality=modality,
        manual_activity=manual_activity,
        model=model,
        emulator=emulator or {},
    ) as (backend, emu, clock):
        events = Collector(backend)
        try:
            yield Live(kind, backend, emu, clock, events)
        finally:
            try:
                async with asyncio.timeout(STEP_S):
                    await backend.close()
            finally:
                await events.stop()


# -- speech -----------------------------------------------------------------------------------
_SPEECH: list[bytes] = []


async def spoken_words() -> bytes:
    """One utterance at 16 kHz (synthesized once per run: espeak-ng is slow to start)."""
    if not _SPEECH:
        _SPEECH.append(await utterance_16k())
    return _SPEECH[0]


# -- events ----------------------------------------------------------------------------------
class Collector:
    """Reads a backend's events in the background; waits on them with a bound."""

    def __init__(self, backend: Backend) -> None:
        self.seen: list[ev.Event] = []
        self.error: BaseException | None = None
        self.ended = False
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(backend), name="contract-events")

    async def _run(self, backend: Backend) -> None:
        try:
            async for event in backend.events():
                self.seen.append(event)
                self._changed.set()
        except Exception as exc:
            self.error = exc
        finally:
            self.ended = True
            self._changed.set()

    def trouble(self) -> list[ev.Event]:
        """Errors and warnings: none may come in a conversation without injected faults."""
        return [
            e
            for e in self.seen
            if isinstance(e, ev.ErrorEvent) or (isinstance(e, ev.Notice) and e.level == "warning")
        ]

    async def until(
        self,
        done: Callable[[], bool],
        *,
        timeout_s: float = STEP_S,
        allow_warnings: bool = False,
    ) -> None:
        """Until `done()` holds. Fails at once if the events end first or (unless allowed)
        an error or warning arrives, and when time runs out."""
        try:
            async with asyncio.timeout(timeout_s):
                while not done():
                    if self.ended:
                        raise AssertionError(
                            f"the events ended ({self.error!r}) first; seen: {describe(self.seen)}"
                        )
                    if not allow_warnings and self.trouble():
                        raise AssertionError(f"trouble: {describe(self.seen)}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(
                f"no match within {timeout_s} s; seen: {describe(self.seen)}"
            ) from None
        if not allow_warnings:
            assert not self.trouble(), describe(self.seen)

    def count(self, kind: type[ev.Event]) -> int:
        return sum(isinstance(e, kind) for e in self.seen)

    async def answers(
        self,
        n: int,
        *,
        text: str | None = None,
        timeout_s: float = STEP_S,
        allow_warnings: bool = False,
    ) -> list[ev.Event]:
        """Until the `n`th AnswerComplete (and, given `text`, one that follows the answer
        showing `text`), then a quiet moment in which a doubled answer would show;
        everything seen so far."""

        def done() -> bool:
            if self.count(ev.AnswerComplete) < n:
                return False
            return text is None or completes_answer_with(self.seen, text)

        await self.until(done, timeout_s=timeout_s, allow_warnings=allow_warnings)
        await asyncio.sleep(QUIET_S)
        return list(self.seen)

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def since_last_cut(events: list[ev.Event]) -> list[ev.Event]:
    """The events after the last `Interrupted` (all of them if there was none)."""
    cuts = indexes(events, ev.Interrupted)
    return events[cuts[-1] + 1 :] if cuts else list(events)


def completes_answer_with(events: list[ev.Event], text: str) -> bool:
    """After the last cut, an AnswerComplete follows an answer that shows `text`."""
    tail = since_last_cut(events)
    return any(
        isinstance(e, ev.AnswerComplete) and text in shown_text(tail[:i])
        for i, e in enumerate(tail)
    )


def is_answer_text(event: ev.Event) -> bool:
    return isinstance(event, ev.AgentText) or (
        isinstance(event, ev.Transcript) and event.speaker == "agent"
    )


def shown_text(events: list[ev.Event]) -> str:
    """The agent's words as a view shows them: deltas, or the whole text when no delta of
    it came; agent text and agent transcripts each once."""
    text, speech = ev.SegmentText(), ev.SegmentText()
    out: list[str] = []
    for event in events:
        piece = None
        if isinstance(event, ev.AgentText):
            piece = text.feed(event.text, final=not event.partial)
        elif isinstance(event, ev.Transcript) and event.speaker == "agent":
            piece = speech.feed(event.text, final=event.finished)
        if piece:
            out.append(piece)
    return "".join(out)


def indexes(events: list[ev.Event], kind: type[ev.Event]) -> list[int]:
    return [i for i, e in enumerate(events) if isinstance(e, kind)]


def describe(events: list[ev.Event]) -> str:
    """A short account of an event list for assertion messages (audio by size only)."""
    parts = []
    for event in events:
        if isinstance(event, ev.AgentAudio):
            parts.append(f"AgentAudio({len(event.pcm)} B @ {event.sample_rate})")
        elif isinstance(event, ev.TurnComplete | ev.AnswerComplete):
            parts.append(type(event).__name__)
        else:
            parts.append(repr(event))
    return "[" + ", ".join(parts) + "]"
