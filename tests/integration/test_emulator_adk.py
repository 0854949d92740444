"""The emulator driven by real ADK: `Runner.run_live` + `LiveRequestQueue`, real tools.

The agent code path is exactly a user's: the environment points google-genai at the
emulator (GOOGLE_GEMINI_BASE_URL, SSL_CERT_FILE, GOOGLE_API_KEY) and nothing is mocked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from types import TracebackType
from typing import Any

import pytest
from google.adk.agents import Agent, LiveRequestQueue
from google.adk.agents.run_config import RunConfig
from google.adk.events import Event
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import errors, types

from adkvoice.emulator import Emulator
from adkvoice.emulator.client_messages import SlidingWindow
from adkvoice.live_models import family_of

from .emulator_support import (
    MODEL_2X,
    MODEL_3X,
    MODELS,
    STEP_TIMEOUT_S,
    chunks,
    running_emulator,
    silence_16k,
    utterance_16k,
    wait_until,
)

pytestmark = pytest.mark.integration


class Clock:
    """A fake tool that counts its executions (duplicated or swallowed calls show up)."""

    def __init__(self) -> None:
        self.calls = 0

    def get_current_time(self) -> dict[str, str]:
        """Returns the current local time."""
        self.calls += 1
        return {"time": "10:42"}


def make_runner(model: str, clock: Clock | None = None, sessions: Any = None) -> Runner:
    agent = Agent(
        name="emulated",
        model=model,
        instruction="You are a test agent.",
        tools=[clock.get_current_time] if clock else [],
    )
    return Runner(
        app_name="emulator-tests",
        agent=agent,
        session_service=sessions or InMemorySessionService(),
        auto_create_session=True,
    )


class LiveRun:
    """Runs `run_live` in a task; the test sends input and waits for events meanwhile."""

    def __init__(self, runner: Runner, run_config: RunConfig, session_id: str = "s1") -> None:
        self.queue = LiveRequestQueue()
        self.events: list[Event] = []
        self.error: BaseException | None = None
        self._runner = runner
        self._config = run_config
        self._session_id = session_id
        self._task: asyncio.Task[None] | None = None

    async def _consume(self) -> None:
        agen = self._runner.run_live(
            user_id="u", session_id=self._session_id, live_request_queue=self.queue,
            run_config=self._config,
        )  # fmt: skip
        try:
            async for event in agen:
                self.events.append(event)
        except Exception as exc:
            self.error = exc
        finally:
            await agen.aclose()

    async def __aenter__(self) -> LiveRun:
        self._task = asyncio.create_task(self._consume())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.queue.close()
        assert self._task is not None
        try:
            async with asyncio.timeout(STEP_TIMEOUT_S):
                await self._task
        except TimeoutError:
            self._task.cancel()
            await asyncio.wait([self._task])

    def send_text(self, text: str) -> None:
        self.queue.send_content(types.Content(role="user", parts=[types.Part(text=text)]))

    async def wait_for(self, pred: Callable[[Event], bool], start: int = 0) -> Event:
        """The first event from index `start` on that matches; fails on a run error."""
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while True:
                for event in self.events[start:]:
                    if pred(event):
                        return event
                if self.error is not None:
                    raise AssertionError(f"run_live failed: {self.error!r}")
                if self._task is not None and self._task.done():
                    raise AssertionError("run_live ended before the expected event")
                await asyncio.sleep(0.01)

    async def finished_error(self) -> BaseException | None:
        assert self._task is not None
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await asyncio.wait([self._task])
        return self.error


def final_text(event: Event) -> str | None:
    """The complete model text of a TEXT-modality turn, or the finished transcript."""
    if event.output_transcription and event.output_transcription.finished:
        return event.output_transcription.text
    if event.partial or event.author == "user" or not event.content or not event.content.parts:
        return None
    text = "".join(p.text or "" for p in event.content.parts)
    return text or None


def final_text_part(event: Event) -> str:
    """The text of a streamed text event (partial or not)."""
    if event.author == "user" or not event.content or not event.content.parts:
        return ""
    return "".join(p.text or "" for p in event.content.parts)


def streamed_words(event: Event) -> str:
    """A piece of a reply as it streams: a text delta, or a piece of its transcript."""
    if event.output_transcription and not event.output_transcription.finished:
        return event.output_transcription.text or ""
    return final_text_part(event) if event.partial else ""


def said(expected: str) -> Callable[[Event], bool]:
    return lambda e: final_text(e) == expected


def replies(modality: str, model: str) -> str:
    """The modality a model answers in when asked for `modality`: models that only speak
    refuse TEXT (as Gemini does), so text replies come from their speech's transcript."""
    family = family_of(model)
    return "AUDIO" if family is not None and not family.text_replies else modality


def config(modality: str, *, model: str = MODEL_2X, **kw: Any) -> RunConfig:
    # ADK transcribes the model's speech by default: the transcript is the text reply.
    return RunConfig(response_modalities=[types.Modality(replies(modality, model))], **kw)


@pytest.mark.parametrize("modality", ["TEXT", "AUDIO"])
@pytest.mark.parametrize("model", MODELS)
async def test_tool_round_trip_runs_the_tool_once(
    monkeypatch: pytest.MonkeyPatch, model: str, modality: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        clock = Clock()
        cfg = config(
            modality, model=model, output_audio_transcription=types.AudioTranscriptionConfig()
        )
        async with LiveRun(make_runner(model, clock), cfg) as run:
            run.send_text("What time is it?")
            await run.wait_for(said("It is 10:42."))
            run.send_text("hello")
            await run.wait_for(lambda e: (final_text(e) or "").startswith("Hello! I'm the"))
    calls = [c for e in run.events for c in e.get_function_calls()]
    responses = [r for e in run.events for r in e.get_function_responses()]
    assert [c.name for c in calls] == ["get_current_time"]
    assert [r.response for r in responses] == [{"time": "10:42"}]
    assert clock.calls == 1
    assert (emu.stats.tool_calls_sent, emu.stats.tool_responses_received) == (1, 1)
    assert emu.stats.tool_calls_by_name == {"get_current_time": 1}
    assert emu.stats.connection_log[0].tool_calls == {"get_current_time": 1}
    assert emu.stats.unmatched_tool_responses == 0
    assert any(e.usage_metadata and e.usage_metadata.total_token_count for e in run.events)
    if replies(modality, model) == "AUDIO":
        audio = [
            p.inline_data
            for e in run.events
            if e.content and e.content.parts
            for p in e.content.parts
            if p.inline_data
        ]
        assert audio
        assert all(b.mime_type == "audio/pcm;rate=24000" for b in audio)
    setup = emu.stats.setup_log[0]
    assert setup.function_names == ("get_current_time",)
    assert setup.response_modality == replies(modality, model)
    assert setup.system_instruction.startswith("You are a test agent.")


@pytest.mark.parametrize("model", MODELS)
async def test_audio_in_gives_user_transcription_and_answer(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    async with running_emulator(monkeypatch) as emu:
        cfg = config(
            "AUDIO",
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
        )
        async with LiveRun(make_runner(model), cfg) as run:
            audio = silence_16k(0.2) + await utterance_16k() + silence_16k(0.7)
            for piece in chunks(audio, ms=100):
                run.queue.send_realtime(types.Blob(data=piece, mime_type="audio/pcm;rate=16000"))
            heard = await run.wait_for(
                lambda e: bool(e.input_transcription and e.input_transcription.finished)
            )
            assert heard.author == "user"
            assert heard.input_transcription is not None
            transcript = heard.input_transcription.text or ""
            assert transcript.startswith("[speech ")
            await run.wait_for(said(f"You said: {transcript}"))
    assert emu.stats.utterances == 1
    assert emu.stats.audio_in_bytes == len(audio)  # URL-safe base64 decoded, nothing lost


async def test_manual_activity_with_adk(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch):
        cfg = config(
            "TEXT",
            model=MODEL_3X,
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)
            ),
        )
        async with LiveRun(make_runner(MODEL_3X), cfg) as run:
            run.queue.send_activity_start()
            run.queue.send_realtime(
                types.Blob(data=silence_16k(1.0), mime_type="audio/pcm;rate=16000")
            )
            run.queue.send_activity_end()
            await run.wait_for(said("You said: [speech 1.0 s]"))


@pytest.mark.parametrize("model", MODELS)
async def test_interruption_reaches_adk(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with running_emulator(monkeypatch, audio_pacing=1.0) as emu:
        cfg = config("AUDIO", output_audio_transcription=types.AudioTranscriptionConfig())
        async with LiveRun(make_runner(model), cfg) as run:
            run.send_text("hello")
            await run.wait_for(
                lambda e: bool(e.content and e.content.parts and e.content.parts[0].inline_data)
            )
            run.send_text("stop")
            cut = await run.wait_for(lambda e: bool(e.interrupted))
            index = run.events.index(cut)
            await run.wait_for(said("You said: stop"), start=index)
    assert emu.stats.interruptions == 1


@pytest.mark.parametrize("model", MODELS)
async def test_go_away_resumes_with_handle(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with running_emulator(monkeypatch) as emu:
        cfg = config("TEXT", model=model, session_resumption=types.SessionResumptionConfig())
        async with LiveRun(make_runner(model), cfg) as run:
            run.send_text("my name is Ada")
            await run.wait_for(said("You said: my name is Ada"))
            await run.wait_for(lambda e: bool(e.live_session_resumption_update))
            await emu.faults.go_away_now(time_left_s=5.0)
            await wait_until(lambda: emu.stats.resumed_sessions == 1)
            run.send_text("what did I say?")
            await run.wait_for(said("Before that you said: my name is Ada"))
    assert emu.stats.setups == 2
    assert emu.stats.go_aways_sent == 1
    assert (emu.stats.connections_opened, emu.stats.resumed_connections) == (2, 1)
    first, second = emu.stats.connection_log
    assert (first.resumed, first.go_aways_sent, first.open) == (False, 1, False)
    assert (second.resumed, second.turns_answered) == (True, 1)


async def test_close_1011_between_turns_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        cfg = config("TEXT", session_resumption=types.SessionResumptionConfig())
        async with LiveRun(make_runner(MODEL_2X), cfg) as run:
            run.send_text("my name is Ada")
            await run.wait_for(lambda e: bool(e.live_session_resumption_update))
            assert await emu.faults.close_now(1011) == 1
            await wait_until(lambda: emu.stats.resumed_sessions == 1)
            run.send_text("what did I say?")
            await run.wait_for(said("Before that you said: my name is Ada"))


@pytest.mark.parametrize(
    ("inject", "code"),
    [
        (lambda emu: emu.faults.close_mid_reply(), 1011),
        (lambda emu: emu.faults.drop_mid_reply(), 1006),
    ],
    ids=["close-1011", "drop"],
)
async def test_connection_faults_surface_as_api_error(
    monkeypatch: pytest.MonkeyPatch, inject: Callable[[Emulator], None], code: int
) -> None:
    async with running_emulator(monkeypatch) as emu:
        inject(emu)
        async with LiveRun(make_runner(MODEL_2X), config("TEXT")) as run:
            run.send_text("hello")
            error = await run.finished_error()
    assert isinstance(error, errors.APIError)
    assert error.code == code


@pytest.mark.parametrize(("kind", "code"), [("close-1011", 1011), ("drop", 1006)])
@pytest.mark.parametrize("model", MODELS)
async def test_fault_after_the_tool_response_runs_the_tool_once(
    monkeypatch: pytest.MonkeyPatch, model: str, kind: str, code: int
) -> None:
    async with running_emulator(monkeypatch) as emu:
        if kind == "drop":
            emu.faults.drop_mid_reply()
        else:
            emu.faults.close_mid_reply()
        clock = Clock()
        async with LiveRun(make_runner(model, clock), config("TEXT", model=model)) as run:
            run.send_text("What time is it?")
            error = await run.finished_error()
    assert isinstance(error, errors.APIError)
    assert error.code == code
    assert clock.calls == 1  # the fault came after the tool ran and its result went back
    assert emu.stats.tool_responses_received == 1
    assert emu.stats.faults_fired == [kind]
    answer = [words for e in run.events if (words := streamed_words(e))]
    assert answer
    assert answer[0].startswith("It is")  # the reply had begun


@pytest.mark.parametrize("model", MODELS)
async def test_context_window_compression_through_run_config(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    trigger, target = 300, 200  # ADK's system instruction is part of every prompt
    compression = types.ContextWindowCompressionConfig(
        trigger_tokens=trigger, sliding_window=types.SlidingWindow(target_tokens=target)
    )
    async with running_emulator(monkeypatch) as emu:
        cfg = config("TEXT", model=model, context_window_compression=compression)
        async with LiveRun(make_runner(model), cfg) as run:
            for i in range(16):
                words = f"turn {i}: the quick brown fox jumps over the lazy dog again"
                run.send_text(words)
                await run.wait_for(said(f"You said: {words}"))
            run.send_text("what did I say first?")
            answer = await run.wait_for(
                lambda e: (final_text(e) or "").startswith("The first thing you said")
            )
    assert emu.stats.setup_log[0].compression == SlidingWindow(trigger, target)
    prompts = [
        e.usage_metadata.prompt_token_count
        for e in run.events
        if e.usage_metadata and e.usage_metadata.prompt_token_count
    ]
    assert len(prompts) >= 16
    assert max(prompts) <= trigger
    assert emu.stats.compressions
    # The early turns are gone from the model's context window; the latest are kept.
    remembered = re.search(r"I still remember: turn (\d+):", final_text(answer) or "")
    assert remembered
    assert 10 <= int(remembered.group(1)) <= 15


async def test_malformed_frame_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_emulator(monkeypatch) as emu:
        emu.faults.malformed_next_reply()
        async with LiveRun(make_runner(MODEL_3X), config("AUDIO")) as run:
            run.send_text("hello")
            error = await run.finished_error()
    assert isinstance(error, ValueError)
    assert "Failed to parse response" in str(error)


async def test_model_rejected_surfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    async with (
        running_emulator(monkeypatch),
        LiveRun(make_runner("gemini-2.5-flash"), config("TEXT")) as run,
    ):
        error = await run.finished_error()
    assert isinstance(error, errors.APIError)
    assert error.code == 1008
    assert "not supported for bidiGenerateContent" in str(error)


@pytest.mark.parametrize("model", MODELS)
async def test_new_run_live_replays_history(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    async with running_emulator(monkeypatch) as emu:
        sessions = InMemorySessionService()
        async with LiveRun(
            make_runner(model, sessions=sessions), config("TEXT", model=model)
        ) as run:
            run.send_text("my name is Ada")
            await run.wait_for(said("You said: my name is Ada"))
        async with LiveRun(
            make_runner(model, sessions=sessions), config("TEXT", model=model)
        ) as run:
            run.send_text("what did I say?")
            await run.wait_for(said("Before that you said: my name is Ada"))
    replayed = emu.stats.setup_log[1]
    assert replayed.initial_history_in_client_content
    assert emu.stats.turns_answered == 2


@pytest.mark.parametrize("model", MODELS)
async def test_a_replayed_unanswered_question_is_answered(
    monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    """A history that ends with the user is answered (3.x after ADK's "." nudge); a "."
    the user types afterwards is theirs, answered like any other text."""
    async with running_emulator(monkeypatch) as emu:
        sessions = InMemorySessionService()
        session = await sessions.create_session(app_name="emulator-tests", user_id="u")
        question = types.Content(role="user", parts=[types.Part(text="are you there")])
        await sessions.append_event(session, Event(author="user", content=question))
        runner = make_runner(model, sessions=sessions)
        async with LiveRun(runner, config("TEXT", model=model), session_id=session.id) as run:
            await run.wait_for(said("You said: are you there"))
            run.send_text(".")
            await run.wait_for(said("You said: ."))
    assert emu.stats.user_texts == ["are you there", "."]
