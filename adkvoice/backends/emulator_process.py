"""The Live API emulator in a child process, started before this process imports ADK.

ADK's imports take a second or more of CPU; the emulator's own (TLS, numpy, its rules) and
its start take about 0.2 s more. Started first, in a process of its own, the emulator gets
ready on another core while this one imports ADK, so the first reply does not wait for it.

The child (`adkvoice.commands.emulator.run_child`) says on its stdout, in one JSON line,
where it listens (`{"env": …}`, the variables that point google-genai at it) or why it
could not start (`{"error": class name, "message": …}`). It stops when its stdin closes:
when `stop` closes it, or when this process ends, however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

from adkvoice import errors

# Runs in the child, on this process's sys.path, so it imports the same adkvoice.
_CHILD_CODE = (
    "import json, sys\n"
    "options = json.loads(sys.argv[1])\n"
    "sys.path[:] = options.pop('path')\n"
    "from adkvoice.commands.emulator import run_child\n"
    "run_child(options)\n"
)
_STOP_TIMEOUT_S = 10.0


class EmulatorProcess:
    """A running (or starting) emulator child; `client_env` waits until it listens."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._env: dict[str, str] | None = None

    @classmethod
    def spawn(
        cls,
        *,
        rules_file: Path | None,
        text_chunk_delay_s: float,
        audio_pacing: float,
        debug: bool,
    ) -> EmulatorProcess | None:
        """Start the child; None when it cannot be started (the caller then starts the
        emulator in process, as without this)."""
        options = {
            "path": sys.path,
            "rules": None if rules_file is None else str(rules_file),
            "text_chunk_delay_s": text_chunk_delay_s,
            "audio_pacing": audio_pacing,
            "debug": debug,
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, json.dumps(options)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,  # stderr is shared: the child logs where we do
            )
        except OSError:
            return None
        return cls(process)

    async def client_env(self) -> dict[str, str] | None:
        """The variables that point google-genai at the running emulator, once it listens.
        None when the child ended without a word (the caller starts one in process);
        the child's own error (a bad rules file, say) is raised as it would be here."""
        if self._env is not None:
            return self._env
        assert self._process.stdout is not None
        line = await asyncio.to_thread(self._process.stdout.readline)
        try:
            reply = json.loads(line) if line else {}
        except ValueError:
            reply = {}
        if isinstance(reply.get("env"), dict):
            self._env = {str(key): str(value) for key, value in reply["env"].items()}
            return self._env
        await self.stop()
        error = getattr(errors, str(reply.get("error")), None)
        if isinstance(error, type) and issubclass(error, errors.AdkVoiceError):
            raise error(str(reply.get("message", "")))
        return None

    async def stop(self) -> None:
        """Stop the emulator and wait until its process has ended."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """`stop`, blocking: for the end of the process, where no event loop runs."""
        process = self._process
        if process.poll() is None and self._env is None:
            # Not listening yet (still importing, likely): end it now, not after its start.
            process.terminate()
        assert process.stdin is not None
        assert process.stdout is not None
        with contextlib.suppress(OSError):
            process.stdin.close()  # the child's signal to stop
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
