"""Gemini 3.1 vs 3.8 in the emulator: when the user first hears the agent, and when the
whole answer has arrived, for a question that needs a slow tool and for one that needs none.

Both models run the same agent through the real ADK `run_live` (embedded backend, the
emulator speaking at real time). 3.1 waits for the tool before it says anything; 3.8 runs
it in the background, says it is looking, and speaks the result when it arrives. Times
are from the moment the typed question is sent:

- first audio: the first chunk of agent speech (the first segment's) reaches adkvoice;
- answer end: `AnswerComplete`, i.e. the last segment's end (interactionStatus IDLE on
  3.8; the turn that follows the tool on 3.1).

Run: .venv/bin/python bench/live_models_bench.py [--runs N] [--tool-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

MODELS = ("gemini-3.1-flash-live-preview", "gemini-3.8-live")
RULES = """
[[rule]]
match = "^look it up"
call = "slow_lookup"
while = "Let me look that up."
say = ["I found it.", "The answer is {result.answer}."]

[[rule]]
match = "^hello"
say = "Hello there, nice to hear you."
"""
QUESTIONS = {"slow tool": "look it up", "no tool": "hello"}


@dataclass
class Sample:
    first_audio_s: float
    answer_s: float
    segments: int  # model turns in the answer


def make_agent(tool_seconds: float) -> Any:
    from google.adk.agents import Agent

    from adkvoice.agents.loading import LoadedAgent

    async def slow_lookup() -> dict[str, str]:
        """Looks the answer up; takes a while."""
        await asyncio.sleep(tool_seconds)
        return {"answer": "forty-two"}

    agent = Agent(
        name="bench", model=MODELS[0], instruction="You answer questions.", tools=[slow_lookup]
    )
    return LoadedAgent(app_name="bench", agent=agent, app=None, source="bench")


async def one_answer(backend: Any, events: Any, question: str) -> Sample:
    from adkvoice.events import AgentAudio, AnswerComplete, TurnComplete

    start = time.perf_counter()
    await backend.send_text(question)
    first: float | None = None
    segments = 0
    async for event in events:
        if isinstance(event, AgentAudio) and first is None:
            first = time.perf_counter() - start
        elif isinstance(event, TurnComplete):
            segments += 1
        elif isinstance(event, AnswerComplete):
            assert first is not None, "an answer without speech"
            return Sample(first, time.perf_counter() - start, segments)
    raise SystemExit("the conversation ended during the benchmark")


async def measure(model: str, runs: int, tool_seconds: float) -> dict[str, list[Sample]]:
    from google.adk.sessions.in_memory_session_service import InMemorySessionService

    from adkvoice.backends.factory import embedded_backend
    from adkvoice.config import point_genai_at
    from adkvoice.emulator import Emulator, EmulatorOptions, parse_rules

    options = EmulatorOptions(rules=parse_rules(RULES), audio_pacing=1.0, tts="synthetic")
    results: dict[str, list[Sample]] = {kind: [] for kind in QUESTIONS}
    async with Emulator(options) as emulator:
        point_genai_at(emulator.client_env())
        backend = embedded_backend(
            make_agent(tool_seconds),
            modality="AUDIO",
            model=model,
            session_service=InMemorySessionService(),
            store_label="memory",
            handles_dir=None,
            user_id="bench",
            session_id=None,
            endpoint_label="emulator",
            context_compression=0,
        )
        await backend.start()
        events = backend.events()
        try:
            await one_answer(backend, events, "hello")  # connect and warm up
            for _ in range(runs):
                for kind, question in QUESTIONS.items():
                    results[kind].append(await one_answer(backend, events, question))
        finally:
            await backend.close()
    return results


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tool-seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(
        f"emulator at real-time speech; the slow tool takes {args.tool_seconds:g} s; "
        f"median of {args.runs} answers each"
    )
    print(f"{'model':32} {'question':10} {'first audio':>12} {'answer end':>11} {'turns':>6}")
    for model in MODELS:
        results = asyncio.run(measure(model, args.runs, args.tool_seconds))
        for kind, samples in results.items():
            print(
                f"{model:32} {kind:10} {_median([s.first_audio_s for s in samples]):>12} "
                f"{_median([s.answer_s for s in samples]):>11} "
                f"{statistics.median(s.segments for s in samples):>6.0f}"
            )


if __name__ == "__main__":
    main()
