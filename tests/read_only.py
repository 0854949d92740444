"""Files and directories that cannot be written, for root too (root ignores permissions)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Inside the block `paths` cannot be written (nor a directory added to): by their
    permissions, or for root by the immutable attribute; skips where neither holds."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root, and there is no chattr to make a file read-only")
    locked: list[Path] = []
    try:
        for path in paths:
            done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"running as root, and chattr +i fails here: {done.stderr.strip()}")
            locked.append(path)
        yield
    finally:
        for path in locked:
            subprocess.run(["chattr", "-i", str(path)], check=False)
