"""The interface every backend implements (embedded ADK, remote servers, scripted)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from adkvoice.errors import ConfigError
from adkvoice.events import Event


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend's transport can carry. Checked before connecting, so a feature the
    transport lacks is one clear line up front rather than a failure mid-conversation."""

    push_to_talk: bool  # activity start/end signals (the model's voice detection off)
    tool_events: bool  # tool calls and results are seen, not only their effect
    user_transcripts: bool  # what the model heard the user say
    usage: bool = False  # token counts
    audio: bool = True  # speech both ways (else typed turns and text replies only)
    images: bool = False  # still images (camera and screen frames) for the model to see


class Backend(Protocol):
    """A live conversation with one agent.

    `start` connects; `events` yields normalized events until the conversation ends and
    raises an `adkvoice.errors.BackendError` subclass when the connection fails. Every
    backend emits `AnswerComplete` once after the `TurnComplete` that ends an answer.
    All methods are called from the event loop that owns the backend.
    """

    @property
    def description(self) -> str:
        """One line saying what this backend talks to, for the status line."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def start(self) -> None: ...

    async def send_text(self, text: str) -> None: ...

    async def send_audio(self, pcm16k: bytes) -> None:
        """Send 16 kHz 16-bit little-endian mono PCM."""
        ...

    async def send_image(self, data: bytes, mime_type: str) -> None:
        """A still image for the model to see (image/jpeg, image/png or image/webp);
        `ConfigError` where the transport carries none (`Capabilities.images`)."""
        ...

    async def send_activity_start(self) -> None: ...

    async def send_activity_end(self) -> None: ...

    def events(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...


def require_images(backend: Backend) -> None:
    """`ConfigError` (exit code 2) when the backend's transport carries no images (for a
    remote server, known after `start()`: adkvoice.v1 is learnt in the handshake)."""
    if not backend.capabilities.images:
        raise ConfigError(
            f"{backend.description} carries no images: show them over adkvoice.v1 "
            "(adkvoice serve), bidi-demo or /run_live, or to an agent run here"
        )
