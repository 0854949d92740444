"""Every test keeps its conversations in its own data directory, never the user's."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("ADKVOICE_SESSIONS", raising=False)
    monkeypatch.delenv("ADKVOICE_INSTANCE", raising=False)
