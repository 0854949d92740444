"""Shared helpers for the emulator integration tests (plain functions, no fixtures)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adkvoice.emulator import Emulator, EmulatorOptions
from adkvoice.emulator.speech import make_tts, resample

MODEL_2X = "gemini-2.0-flash-live-001"
MODEL_3X = "gemini-3.1-flash-live-preview"
MODELS = [MODEL_2X, MODEL_3X]
STEP_TIMEOUT_S = 10.0


@asynccontextmanager
async def running_emulator(
    monkeypatch: pytest.MonkeyPatch, **options: Any
) -> AsyncIterator[Emulator]:
    """Start an emulator and point google-genai (and so ADK) at it through the environment.

    The genai client reads the environment when it is constructed, so build clients and
    agents inside this block.
    """
    options.setdefault("tts", "synthetic")
    options.setdefault("stt", "placeholder")
    async with Emulator(EmulatorOptions(**options)) as emu:
        for key, value in emu.client_env().items():
            monkeypatch.setenv(key, value)
        for key in ("GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
            monkeypatch.delenv(key, raising=False)
        yield emu


async def wait_until(pred: Callable[[], bool]) -> None:
    """Poll a condition on emulator state (stats have no events to wait on), bounded."""
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not pred():  # noqa: ASYNC110 - polling plain counters is the point here
            await asyncio.sleep(0.01)


async def utterance_16k(text: str = "hello there emulator") -> bytes:
    """A spoken-ish utterance at 16 kHz: espeak-ng when installed, else tone bursts."""
    pcm24 = await make_tts("auto").synthesize(text)
    return resample(pcm24, 24_000, 16_000)


def silence_16k(seconds: float) -> bytes:
    return b"\x00\x00" * int(16_000 * seconds)


def chunks(pcm: bytes, ms: int = 40) -> list[bytes]:
    size = 2 * 16 * ms
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
