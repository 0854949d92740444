"""Microphone audio captured before the model connection is up: kept, bounded, announced."""

from __future__ import annotations

import asyncio

import pytest
from google.adk.agents.llm_agent import Agent
from google.adk.sessions.in_memory_session_service import InMemorySessionService

from adkvoice.agents.loading import LoadedAgent
from adkvoice.backends.embedded import EmbeddedBackend
from adkvoice.backends.recovery import MAX_HELD_AUDIO_BYTES, MIC_BYTES_PER_SECOND
from adkvoice.events import Notice
from tests.integration.emulator_support import MODEL_3X, running_emulator, wait_until

pytestmark = pytest.mark.integration


async def test_audio_before_the_connection_is_held_up_to_two_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_emulator(monkeypatch) as emu:
        agent = Agent(name="hold", model=MODEL_3X, instruction="You are a test agent.")
        backend = EmbeddedBackend(
            LoadedAgent(app_name="hold", agent=agent, app=None, source="test"),
            modality="AUDIO",
            session_service=InMemorySessionService(),
        )
        await backend.start()
        try:
            # Three seconds of (silent) microphone audio before the connection opens.
            chunk = b"\x00\x00" * 320  # 20 ms
            for _ in range(150):
                await backend.send_audio(chunk)
            notices: list[str] = []

            async def collect() -> None:
                async for event in backend.events():
                    if isinstance(event, Notice):
                        notices.append(event.message)

            task = asyncio.create_task(collect())
            await wait_until(lambda: emu.stats.audio_in_bytes >= MAX_HELD_AUDIO_BYTES)
            await asyncio.sleep(0.2)
            # Only the newest 2 s reached the model (resampled bytes are the same at 16 kHz).
            assert emu.stats.audio_in_bytes == MAX_HELD_AUDIO_BYTES
            assert notices == [
                f"{1.0:.1f} s of microphone audio was dropped while connecting (only the "
                f"last {MAX_HELD_AUDIO_BYTES // MIC_BYTES_PER_SECOND} s are kept)"
            ]
            task.cancel()
        finally:
            await backend.close()
