"""The one owner of the event loop: logging, signals, the terminal and exit codes.

Every command (`adkvoice.commands`) runs through `run_main`. Shutdown order inside a
command: stop reading input, close the backend (its live connection), stop the emulator;
then `run_main` restores the terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

from adkvoice.config import register_env_secrets
from adkvoice.redaction import redact_log_handlers

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def configure_logging(debug: bool) -> None:
    """Quiet third-party chatter unless --debug; ADK's experimental warnings are noise
    to a user of the CLI. What is logged is redacted: at debug, google-genai, websockets
    and httpx log request headers, API key and tokens included."""
    register_env_secrets(os.environ)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")
        redact_log_handlers()
        return
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    redact_log_handlers()
    # ADK logs failures with tracebacks; adkvoice reports them itself in one line.
    for name in ("google_adk", "google", "websockets", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"google\..*")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydantic\..*")


def hold_collector() -> None:
    """No cyclic garbage collection while a command starts: what it allocates then
    (modules, classes, pydantic schemas: ADK and google-genai) lives as long as the
    process, yet with the default thresholds piped chat walked it all three times before
    its first reply (about 160 ms) and found nothing to free. `release_collector` ends it."""
    gc.disable()


def release_collector() -> None:
    """The command is up: freeze what is alive (the collector never walks it again) and
    collect what comes after as usual. Idempotent."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def run_main(
    main: Callable[[], Coroutine[Any, Any, int]],
    *,
    own_signals: bool = True,
    interrupted_exit: int = EXIT_INTERRUPTED,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run `main()` on a new loop (asyncio's, or `loop_factory()`'s) and return its exit
    code. SIGINT and SIGTERM cancel it so `finally` blocks run (`own_signals=False`:
    `main` installs its own handlers, as the server does). The terminal's settings are
    restored however it ends."""
    import termios

    saved_tty = None
    if sys.stdin.isatty():
        with contextlib.suppress(termios.error):
            saved_tty = termios.tcgetattr(sys.stdin.fileno())
    exit_code = 0

    async def runner() -> int:
        nonlocal exit_code
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            nonlocal exit_code
            exit_code = EXIT_TERMINATED
            task.cancel()

        if own_signals:
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGTERM, terminate)
        result = await main()
        # SIGTERM may land while cleanup runs after main's own exit: it still counts.
        return EXIT_TERMINATED if exit_code == EXIT_TERMINATED else result

    try:
        with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
            exit_code = loop_runner.run(runner())
    except KeyboardInterrupt:
        exit_code = interrupted_exit
    except asyncio.CancelledError:
        exit_code = exit_code or EXIT_TERMINATED
    finally:
        if saved_tty is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved_tty)
    return exit_code
