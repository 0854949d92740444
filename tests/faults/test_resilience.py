"""A conversation survives its connection: 100 faults of each kind, nothing lost or repeated.

Each cycle injects one fault with the emulator's controller and types one turn through
the embedded backend (real ADK, real google-genai, the emulator on loopback). Half the
turns run a tool. Afterwards every turn must have been answered exactly once, by a reply
that names it, and every tool call must have run exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from google.adk.agents.llm_agent import Agent
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adkvoice.agents.loading import LoadedAgent
from adkvoice.backends.embedded import EmbeddedBackend
from adkvoice.backends.recovery import Backoff
from adkvoice.emulator import Emulator, parse_rules
from adkvoice.emulator.faults import FaultController
from adkvoice.events import AgentText, AnswerComplete, Event, Interrupted
from tests.integration.emulator_support import MODELS, running_emulator

pytestmark = [pytest.mark.integration, pytest.mark.parametrize("model", MODELS)]

CYCLES = 100
TURN_TIMEOUT_S = 15.0

RULES = parse_rules(
    """
fallback = "Echo {text}."

[[rule]]
match = '^tool '
call = "record_call"
args = { note = "{text}" }
say = "Recorded {result.note}, done."
"""
)


class Ledger:
    """The tool the agent calls: counts every execution per argument."""

    def __init__(self) -> None:
        self.executions: Counter[str] = Counter()

    def record_call(self, note: str) -> dict[str, str]:
        """Records a note."""
        self.executions[note] += 1
        return {"note": note}


class Conversation:
    """Typed turns through the backend; collects the reply that completes each one."""

    def __init__(self, backend: EmbeddedBackend) -> None:
        self.backend = backend
        self.replies: list[str] = []  # one per completed answer, in order
        self._reply: list[str] = []
        self._answered = asyncio.Event()
        self._task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for event in self.backend.events():
            self._fold(event)

    def _fold(self, event: Event) -> None:
        if isinstance(event, AgentText) and event.partial:
            self._reply.append(event.text)
        elif isinstance(event, Interrupted):
            self._reply.clear()  # cut off: a fresh answer follows
        if isinstance(event, AnswerComplete):
            self.replies.append("".join(self._reply))
            self._reply.clear()
            self._answered.set()

    async def ask(self, text: str) -> str:
        self._answered.clear()
        before = len(self.replies)
        await self.backend.send_text(text)
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await self._answered.wait()
        assert len(self.replies) == before + 1, self.replies[before:]
        return self.replies[-1]

    async def close(self) -> None:
        await self.backend.close()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@asynccontextmanager
async def conversation(
    monkeypatch: pytest.MonkeyPatch, ledger: Ledger, model: str
) -> AsyncIterator[tuple[Emulator, Conversation]]:
    async with running_emulator(monkeypatch, rules=RULES, text_chunk_delay_s=0.002) as emu:
        agent = Agent(
            name="faults",
            model=model,
            instruction="You are a test agent.",
            tools=[ledger.record_call],
        )
        backend = EmbeddedBackend(
            LoadedAgent(app_name="faults", agent=agent, app=None, source="test"),
            modality="TEXT",
            session_service=InMemorySessionService(),
            backoff=Backoff(first_s=0.05, max_s=0.2, attempts=8),
        )
        await backend.start()
        conv = Conversation(backend)
        try:
            yield emu, conv
        finally:
            await conv.close()


Inject = Callable[[FaultController, random.Random], Awaitable[None]]


async def _close_mid_reply(faults: FaultController, rng: random.Random) -> None:
    faults.close_mid_reply()


async def _drop_mid_reply(faults: FaultController, rng: random.Random) -> None:
    faults.drop_mid_reply()


async def _slow_server(faults: FaultController, rng: random.Random) -> None:
    faults.delay_next_reply(rng.uniform(0.0, 0.05))


def _go_away(*, send_handle: bool) -> Inject:
    pending: set[asyncio.Task[int]] = set()

    async def inject(faults: FaultController, rng: random.Random) -> None:
        # At a random moment of the next turn: before it, mid-reply or just after. Moments
        # between two connections reach no connection, and are not counted.
        async def later() -> int:
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            return await faults.go_away_now(0.3, send_handle=send_handle)

        task = asyncio.get_running_loop().create_task(later())
        pending.add(task)
        task.add_done_callback(pending.discard)

    return inject


async def _run_cycles(
    monkeypatch: pytest.MonkeyPatch, model: str, inject: Inject
) -> tuple[Emulator, Ledger]:
    ledger = Ledger()
    rng = random.Random(5)
    async with conversation(monkeypatch, ledger, model) as (emu, conv):
        for cycle in range(CYCLES):
            uses_tool = cycle % 2 == 1
            text = f"tool n{cycle}" if uses_tool else f"turn n{cycle}"
            await inject(emu.faults, rng)
            reply = await conv.ask(text)
            expected = f"Recorded tool n{cycle}, done." if uses_tool else f"Echo turn n{cycle}."
            assert reply == expected, (cycle, conv.replies[-3:])
        await asyncio.sleep(0.3)  # a duplicate answer would arrive now
        assert len(conv.replies) == CYCLES, conv.replies[CYCLES:]
    expected_calls = {f"tool n{c}": 1 for c in range(1, CYCLES, 2)}
    assert dict(ledger.executions) == expected_calls
    return emu, ledger


async def test_close_1011_mid_reply(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    emu, _ = await _run_cycles(monkeypatch, model, _close_mid_reply)
    assert emu.stats.faults_fired.count("close-1011") == CYCLES


async def test_tcp_drop_mid_reply(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    emu, _ = await _run_cycles(monkeypatch, model, _drop_mid_reply)
    assert emu.stats.faults_fired.count("drop") == CYCLES


async def test_go_away_with_a_fresh_handle(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    emu, _ = await _run_cycles(monkeypatch, model, _go_away(send_handle=True))
    assert emu.stats.go_aways_sent >= CYCLES // 2


async def test_go_away_without_a_fresh_handle(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    emu, _ = await _run_cycles(monkeypatch, model, _go_away(send_handle=False))
    assert emu.stats.go_aways_sent >= CYCLES // 2


async def test_slow_server(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    emu, _ = await _run_cycles(monkeypatch, model, _slow_server)
    assert emu.stats.faults_fired.count("delay") == CYCLES
