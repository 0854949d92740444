"""The emulator chat starts in a child process: it listens, says its own errors as they
would be said in process, and is gone (with its certificate directory) once stopped."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from adkvoice.backends.emulator_process import EmulatorProcess
from adkvoice.errors import ConfigError

pytestmark = pytest.mark.integration


def _spawn(rules_file: Path | None = None) -> EmulatorProcess:
    started = EmulatorProcess.spawn(
        rules_file=rules_file, text_chunk_delay_s=0.0, audio_pacing=0.0, debug=False
    )
    assert started is not None
    return started


def test_child_listens_and_is_gone_once_stopped() -> None:
    started = _spawn()
    try:
        env = asyncio.run(started.client_env())
        assert env is not None
        assert env["GOOGLE_GEMINI_BASE_URL"].startswith("https://127.0.0.1:")
        bundle = Path(env["SSL_CERT_FILE"])
        assert bundle.is_file()
        # The bundle holds a CA the client can load, as with the emulator in process.
        ssl.create_default_context(cafile=str(bundle))
    finally:
        started.close()
    assert started._process.returncode == 0
    assert not bundle.parent.exists()


async def test_a_bad_rules_file_is_the_same_error_as_in_process(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("not [[ toml", encoding="utf-8")
    started = _spawn(rules)
    try:
        with pytest.raises(ConfigError, match="is not valid TOML"):
            await started.client_env()
    finally:
        await started.stop()


def test_close_before_it_listens_ends_it_at_once() -> None:
    started = _spawn()
    started.close()  # still importing: terminated, not waited for through its start
    assert started._process.returncode is not None
