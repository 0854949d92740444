"""One error tree for everything a user can cause or meet.

Every error carries a one-line, actionable message and the process exit code the CLI
uses for it, so `cli.py` can end any failure with one clear line.
"""

from __future__ import annotations


class AdkVoiceError(Exception):
    """Base of all adkvoice errors: `str(err)` is the one line shown to the user."""

    exit_code: int = 1


class ConfigError(AdkVoiceError):
    """A bad flag, environment variable or missing credentials."""

    exit_code = 2


class AgentLoadError(AdkVoiceError):
    """The agent path does not exist or does not expose an agent."""

    exit_code = 3


class AudioDeviceError(AdkVoiceError):
    """No usable audio device, or the device refused the stream."""

    exit_code = 4


class BackendError(AdkVoiceError):
    """The model or the remote server failed; `retryable` says whether a retry may help."""

    exit_code = 5

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ConnectionLostError(BackendError):
    """The connection to the model or server dropped mid-conversation."""

    exit_code = 6

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ModelRejectedError(BackendError):
    """The model name is unknown or does not support the Live API."""

    exit_code = 7


class TurnTimeoutError(AdkVoiceError):
    """A turn did not complete within `--timeout`."""

    exit_code = 8


class EmulatorError(AdkVoiceError):
    """The Live API emulator could not start (for example its port is busy)."""

    exit_code = 9


class ProtocolError(AdkVoiceError):
    """A peer sent a frame that does not decode; the message says what was wrong."""

    exit_code = 10


class StoreError(BackendError):
    """The conversation store (`--sessions`) cannot be opened or written: a read-only or
    full disk, a directory without write permission, a path under a regular file."""

    exit_code = 11
