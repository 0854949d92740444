"""Fixtures: one started backend per transport, for each modality the contract needs.

`kind` (the transport) and `model` are fixtures so a test can parametrize them itself,
for instance to mark one transport's known failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.support import KINDS, Kind, Live, spoken_words, started
from tests.integration.emulator_support import MODEL_2X


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def model() -> str:
    return MODEL_2X


@pytest.fixture
async def speech() -> bytes:
    """An utterance at 16 kHz; ask for it before the backend, so it is ready first."""
    return await spoken_words()


@pytest.fixture
async def text_live(
    kind: Kind, model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Live]:
    """A started backend that answers in text."""
    async with started(kind, monkeypatch, tmp_path, modality="TEXT", model=model) as live:
        yield live


@pytest.fixture
async def audio_live(
    kind: Kind, model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Live]:
    """A started backend that answers in speech, the model detecting the user's turns."""
    async with started(kind, monkeypatch, tmp_path, modality="AUDIO", model=model) as live:
        yield live


@pytest.fixture
async def ptt_live(
    kind: Kind, model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Live]:
    """A started backend that answers in speech, asked for push-to-talk: the client marks
    the user's turns with activity start/end (the model's own detection off)."""
    async with started(
        kind, monkeypatch, tmp_path, modality="AUDIO", manual_activity=True, model=model
    ) as live:
        yield live
