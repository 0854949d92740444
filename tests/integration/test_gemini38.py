"""Today's Live models end to end: Gemini 3.8 (audio only, tools in the background, answers
in several turns), text replies from models that only speak, and the session options,
through the real CLI, the real ADK and `adkvoice serve`, against the emulator."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from google.adk.agents import Agent
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adkvoice import events as ev
from adkvoice.agents.loading import LoadedAgent
from adkvoice.backends.base import Backend
from adkvoice.backends.factory import embedded_backend
from adkvoice.emulator import parse_rules
from adkvoice.live_models import TEXT_REFUSAL_REASON
from adkvoice.tasks import cancel_and_wait
from tests.integration.conftest import RunCli
from tests.integration.emulator_support import running_emulator, wait_until
from tests.integration.server_support import (
    client,
    expect_close,
    json_frames,
    recv_until,
    seed_text,
    seed_turn,
    serving,
)

pytestmark = pytest.mark.integration

M38 = "gemini-3.8-live"


def _embedded(loaded: LoadedAgent, **kw: Any) -> Backend:
    return embedded_backend(
        loaded,
        modality=kw.pop("modality", "TEXT"),
        model=None,
        session_service=InMemorySessionService(),
        store_label="memory",
        handles_dir=None,
        user_id="u",
        session_id=None,
        endpoint_label="emulator",
        context_compression=0,
        **kw,
    )


@asynccontextmanager
async def started(backend: Backend) -> AsyncIterator[list[ev.Event]]:
    """`backend` started, its events collected into the yielded list; closed on exit."""
    await backend.start()
    seen: list[ev.Event] = []

    async def collect() -> None:
        async for event in backend.events():
            seen.append(event)

    task = asyncio.create_task(collect())
    try:
        yield seen
    finally:
        await backend.close()
        await cancel_and_wait(task)


def _records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def _notes(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("groceries\nthe budget for May\n")
    (tmp_path / "other.txt").write_text("nothing here\n")


def test_piped_chat_on_38_prints_one_complete_line_per_question(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """The time question, then a question the built-in rules answer with the slow
    search_files tool: two lines, the second holding the whole answer of three turns."""
    _notes(tmp_path)
    stdin = "what time is it?\nsearch my files for budget\n"
    result = run_cli(["chat", "--text"], stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("It is ")
    assert re.fullmatch(
        r"Let me look through your files\. I looked through \d+ files\. "
        r"1 file mentions 'budget': notes\.txt \(line 2\)\.",
        lines[1],
    ), lines[1]
    assert "gemini-3.8-live answers in audio only" in result.stderr

    records = _records(run_cli(["chat", "--text", "--json"], stdin=stdin).stdout)
    types = [r["type"] for r in records]
    assert types.count("answer_complete") == 2
    second = types.index("answer_complete") + 1
    answer = records[second:]
    kinds = [r["type"] for r in answer]
    call = answer[kinds.index("tool_call")]
    result_record = answer[kinds.index("tool_result")]
    assert (call["name"], call["background"]) == ("search_files", True)
    assert result_record["scheduling"] == "WHEN_IDLE"
    assert result_record["id"] == call["id"]
    statuses = [r.get("interaction_status") for r in answer if r["type"] == "turn_complete"]
    assert statuses == ["in_progress", "in_progress", "idle"]
    # The answer is complete only after the tool's result and the turns that speak it.
    texts = [i for i, r in enumerate(answer) if r["type"] == "agent_text"]
    assert kinds.index("tool_result") < texts[-1] < kinds.index("answer_complete")
    assert not any(r["type"] in ("agent_audio", "transcript") for r in answer)


def test_31_text_replies_come_from_its_transcript(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--text", "--model", "gemini-3.1-flash-live-preview"],
        stdin="what time is it?\nhello\n",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("It is ")
    assert lines[1].startswith("Hello! I'm the adkvoice emulator")
    assert "gemini-3.1-flash-live-preview answers in audio only" in result.stderr


def test_a_model_adkvoice_does_not_know_is_asked_for_speech_after_it_refuses_text(
    run_cli: RunCli,
) -> None:
    result = run_cli(["chat", "--text", "--model", "gemini-9.0-live"], stdin="hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello! I'm the adkvoice emulator")
    assert "gemini-9.0-live refused text replies" in result.stderr
    assert result.stderr.count("refused text replies") == 1


def test_voices_and_models_list_the_catalogue(run_cli: RunCli) -> None:
    voices = run_cli(["voices"], env={"COLUMNS": "120"})
    assert voices.returncode == 0, voices.stderr
    for voice, sound in (("Kore", "Firm"), ("Sulafat", "Warm"), ("Puck (default)", "Upbeat")):
        assert voice in voices.stdout
        assert sound in voices.stdout
    eight = run_cli(["voices", "--model", "gemini-2.0-flash-live-001"], env={"COLUMNS": "120"})
    assert "Kore" in eight.stdout
    assert "Sulafat" not in eight.stdout
    models = run_cli(["models"], env={"COLUMNS": "120"})
    assert models.returncode == 0, models.stderr
    assert "gemini-3.8-live-extended-thinking" in models.stdout
    assert "tools run in the background by default" in models.stdout


def test_voice_and_language_reach_the_model(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--text", "--voice", "kore", "--language", "de-de"], stdin="what voice is this?\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("I'm speaking with the Kore voice, in de-DE")
    assert "chooses its spoken language itself" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Each model's refusals are unit-tested (test_live_options); these show the CLI.
        (["--affective"], "gemini-3.8-live has no affective dialog"),
        (["--voice", "Nobody"], "is not a Gemini voice"),
        (["--language", "klingon please"], "is not a language code"),
    ],
)
def test_options_the_model_refuses_end_in_one_line(
    run_cli: RunCli, args: list[str], message: str
) -> None:
    result = run_cli(["chat", "--text", *args], stdin="hello\n")
    assert result.returncode == 2
    # One line, before anything starts (not even the emulator).
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("adkvoice: ")
    assert message in line


def test_extended_thinking_gets_a_thinking_level(run_cli: RunCli) -> None:
    result = run_cli(
        ["chat", "--text", "--model", "gemini-3.8-live-extended-thinking"],
        stdin="what voice is this?\n",
    )
    assert result.returncode == 0, result.stderr
    assert "needs a thinking level: using low" in result.stderr
    assert "my thinking setting is low" in result.stdout


async def test_serve_on_38_sends_background_calls_and_statuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch, model=M38) as served:
        async with client(served.ws("ext38"), extended=True) as ws:
            await ws.send(json.dumps({"type": "text", "text": "count to three"}))
            done = '{"type": "turn_complete", "interaction_status": "idle"}'
            frames = json_frames(await recv_until(ws, lambda f: f == done))
            statuses = [f.get("interaction_status") for f in frames if f["type"] == "turn_complete"]
            assert statuses == ["in_progress", "in_progress", "idle"]
            whole = [f["text"] for f in frames if f["type"] == "agent_text" and not f["partial"]]
            assert whole == ["One.", "Two.", "Three."]
            await ws.send(json.dumps({"type": "text", "text": "what time is it?"}))
            frames = json_frames(await recv_until(ws, lambda f: f == done))
            [call] = [f for f in frames if f["type"] == "tool_call"]
            [result] = [f for f in frames if f["type"] == "tool_result"]
            assert call["background"] is True
            assert result["scheduling"] == "WHEN_IDLE"
        async with client(served.ws("seeds38")) as ws:
            frames = await seed_turn(ws, "count to three")
            assert seed_text(frames) == "One. Two. Three."  # one answer, one turn_complete
        assert served.emulator.stats.refusals == []
        assert [s.response_modality for s in served.emulator.stats.setup_log] == ["AUDIO"] * 2


async def test_serve_takes_session_options_from_the_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serving(monkeypatch, model=M38) as served:
        url = served.ws("voiced", voice="Kore", language="ja-JP", barge_in="false")
        async with client(url) as ws:
            frames = await seed_turn(ws, "what voice is this?")
            assert seed_text(frames).startswith("I'm speaking with the Kore voice, in ja-JP")
        setup = served.emulator.stats.setup_log[-1]
        assert (setup.voice, setup.language, setup.barge_in) == ("Kore", "ja-JP", False)
        for query, reason in (
            ({"voice": "Nobody"}, "is not a Gemini voice"),
            ({"affective": "true"}, "has no affective dialog"),
            ({"barge_in": "perhaps"}, "barge_in must be true or false"),
        ):
            async with client(served.ws("refused", **query)) as ws:
                code, why = await expect_close(ws)
            assert code == 1008
            assert reason in why


async def test_cutting_in_during_a_background_tool_cancels_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = parse_rules(
        """
[[rule]]
match = "^search"
call = "slow_search"
while = "Let me look."
say = ["Found it.", "It is in {result.place}."]
"""
    )
    ran: list[str] = []

    async def slow_search() -> dict[str, str]:
        """Searches slowly."""
        await asyncio.sleep(1.5)
        ran.append("done")
        return {"place": "notes.txt"}

    agent = Agent(name="slow", model=M38, instruction="Search.", tools=[slow_search])
    loaded = LoadedAgent(app_name="slow", agent=agent, app=None, source="test")
    async with running_emulator(monkeypatch, rules=rules) as emu:
        backend = _embedded(loaded)
        async with started(backend) as seen:
            await backend.send_text("search my notes")
            await wait_until(lambda: any(isinstance(e, ev.TurnComplete) for e in seen))
            assert any(isinstance(e, ev.ToolCall) and e.background for e in seen)
            await backend.send_text("hello")  # before the result arrives
            await wait_until(lambda: sum(isinstance(e, ev.AnswerComplete) for e in seen) == 2)
            await wait_until(lambda: ran == ["done"])  # ADK finished the tool anyway
            await asyncio.sleep(0.3)
    assert emu.stats.tool_call_cancellations == 1
    assert emu.stats.unmatched_tool_responses == 1  # the late result is not used
    texts = [e.text for e in seen if isinstance(e, ev.AgentText) and not e.partial]
    assert texts[0] == "Let me look."
    assert texts[-1] == "You said: hello"
    assert "Found it." not in texts
    assert sum(isinstance(e, ev.AnswerComplete) for e in seen) == 2
    results = [e for e in seen if isinstance(e, ev.ToolResult)]
    assert [r.scheduling for r in results] == ["WHEN_IDLE"]  # shown, tied to its call


@pytest.mark.filterwarnings(r"ignore:\[EXPERIMENTAL\]:UserWarning")  # ADK's own api server
async def test_text_setup_refusal_is_learned_through_adk_api_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`adk api_server` passes the model's refusal of a TEXT setup on (close 1011 with the
    reason); `--url …/run_live` reconnects for speech and shows the transcript."""
    from adkvoice.backends.endpoints import RunLiveEndpoint
    from adkvoice.backends.remote import RemoteBackend
    from tests.contract.support import APP, adk_api_server
    from tests.integration.server_support import make_agent

    async with running_emulator(monkeypatch) as emu:
        loaded = make_agent(M38)
        assert loaded.agent is not None
        async with adk_api_server(loaded.agent, tmp_path) as base:
            endpoint = RunLiveEndpoint(
                f"{base}/run_live?app_name={APP}&user_id=u1", modality="TEXT", token=None
            )
            remote = RemoteBackend(endpoint, resend_after_s=0.5)
            async with started(remote) as seen:
                await remote.send_text("hello")
                await wait_until(lambda: any(isinstance(e, ev.AnswerComplete) for e in seen))
    assert (1007, TEXT_REFUSAL_REASON) in emu.stats.refusals
    notices = [e.message for e in seen if isinstance(e, ev.Notice)]
    assert any("answers in audio only" in n for n in notices)
    texts = [e.text for e in seen if isinstance(e, ev.AgentText) and not e.partial]
    assert texts[-1].startswith("Hello! I'm the adkvoice emulator")


async def test_every_session_option_reaches_the_model_setup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adkvoice.live_options import LiveOptions

    options = LiveOptions(
        voice="Aoede",
        language="fr-FR",
        vad_silence_ms=800,
        vad_sensitivity="low",
        barge_in=False,
        proactive=True,
        affective=True,
        thinking="1024",
    )
    agent = Agent(name="opts", model="gemini-2.5-flash-native-audio-latest", instruction="Hi.")
    loaded = LoadedAgent(app_name="opts", agent=agent, app=None, source="test")
    async with (
        running_emulator(monkeypatch) as emu,
        started(_embedded(loaded, modality="AUDIO", live=options)),
    ):
        await wait_until(lambda: emu.stats.setups == 1)
    setup = emu.stats.setup_log[0]
    detection = setup.activity_detection
    assert (setup.voice, setup.language) == ("Aoede", "fr-FR")
    assert (detection.silence_duration_ms, detection.start_sensitivity) == (800, "LOW")
    assert detection.end_sensitivity == "LOW"
    assert setup.barge_in is False
    assert (setup.proactive_audio, setup.affective_dialog) == (True, True)
    assert setup.thinking is not None
    assert setup.thinking.budget == 1024


async def test_url_clients_pass_session_options_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    from adkvoice.backends.remote import remote_backend
    from adkvoice.live_options import LiveOptions

    async with serving(monkeypatch, model=M38) as served:
        url = f"{served.server.ws_url}/ws/options-by-url"
        remote = remote_backend(url, modality="TEXT", live=LiveOptions(voice="Charon"))
        async with started(remote) as seen:
            await remote.send_text("what voice is this?")
            await wait_until(lambda: any(isinstance(e, ev.AnswerComplete) for e in seen))
    texts = [e.text for e in seen if isinstance(e, ev.AgentText) and not e.partial]
    assert texts[-1].startswith("I'm speaking with the Charon voice")
