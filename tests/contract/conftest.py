"""Fixtures: one started backend per transport, for each modality the contract needs.

`kind` (the transport) and `model` are fixtures so a test can parametrize them itself,
for instance with the models a behaviour differs on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adkvoice.events import Modality
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


def _started_backend(
    name: str, doc: str, *, modality: Modality, manual_activity: bool = False
) -> Any:
    """A fixture that yields a started backend of the test's `kind`, closed afterwards."""

    async def fixture(
        kind: Kind, model: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> AsyncIterator[Live]:
        async with started(
            kind,
            monkeypatch,
            tmp_path,
            modality=modality,
            manual_activity=manual_activity,
            model=model,
        ) as live:
            yield live

    fixture.__doc__ = doc
    return pytest.fixture(name=name)(fixture)


text_live = _started_backend(
    "text_live", "A started backend that answers in text.", modality="TEXT"
)
audio_live = _started_backend(
    "audio_live",
    "A started backend that answers in speech, the model detecting the user's turns.",
    modality="AUDIO",
)
ptt_live = _started_backend(
    "ptt_live",
    "A started backend that answers in speech, asked for push-to-talk: the client marks "
    "the user's turns with activity start/end (the model's own detection off).",
    modality="AUDIO",
    manual_activity=True,
)
