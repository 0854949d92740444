"""Fixtures for the scale-out tests: one private PostgreSQL for the whole run, and the
deployment of deploy/ (two `adkvoice serve` instances, the emulator, nginx) on loopback."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli
from tests.scaleout.stack import Postgres, Stack, postgres_bin, tool_available


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed: scripts/setup --test installs it")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root needs the 'postgres' user (apt install postgresql)")
    server = Postgres.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _stack(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not tool_available("nginx"):
        pytest.skip("nginx is not installed: scripts/setup --test installs it")
    stack = Stack.start(tmp_path_factory.mktemp("stack"), postgres)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(_stack: Stack) -> Stack:
    """The deployment with both instances up (a test before may have killed one)."""
    _stack.ensure_running()
    return _stack


@pytest.fixture
def client_dir(tmp_path: Path) -> Path:
    return tmp_path / "client"


__all__ = ["run_cli"]  # the CLI runner of the integration tests, used here too
