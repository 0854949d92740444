"""How `adkvoice serve` sets up its process: the frozen start-up heap and the event loop."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest

from adkvoice.commands.serve import event_loop_factory
from adkvoice.errors import ConfigError
from adkvoice.server.heap import settle_before_sessions

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("thawed")
def test_the_live_path_is_imported_and_frozen_before_the_first_session() -> None:
    frozen = settle_before_sessions()
    assert "google.adk.runners" in sys.modules
    assert "google.genai.live" in sys.modules
    # ADK, google-genai and pydantic's schemas: far more than a session allocates.
    assert frozen > 50_000
    assert gc.get_freeze_count() == frozen
    # What is allocated afterwards is collected as usual.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_asyncio_is_asyncio_s_own_loop() -> None:
    assert event_loop_factory("asyncio") is None


@pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed")
def test_auto_takes_uvloop_when_installed() -> None:
    factory = event_loop_factory("auto")
    assert factory is not None
    loop = factory()
    try:
        assert type(loop).__module__.startswith("uvloop")
        assert loop.run_until_complete(asyncio.sleep(0, result=7)) == 7
    finally:
        loop.close()


@pytest.mark.skipif(HAS_UVLOOP, reason="uvloop is installed")
def test_asking_for_uvloop_without_it_is_one_line() -> None:
    assert event_loop_factory("auto") is None
    with pytest.raises(ConfigError, match=r"pip install 'adkvoice\[fast\]'"):
        event_loop_factory("uvloop")


def test_an_unknown_loop_is_refused_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adkvoice", "serve", "--loop", "trio"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "adkvoice: --loop must be auto, uvloop or asyncio, not 'trio'"
