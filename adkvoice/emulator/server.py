"""WebSocket connection handling: path check, setup handshake, then feed the session.

Close codes follow Gemini: 1007 for a request it cannot accept ("Request contains an
invalid argument."), 1008 for a model it does not serve (or a path it does not serve),
1011 for internal errors. Close reasons are capped at the 123 bytes WebSocket allows.
A setup the played model refuses (a TEXT setup to an audio-only model, an option the
family does not take) is closed as models.py describes.

A setup whose `sessionResumption.handle` is unknown, superseded or expired (handles.py) is
closed with 1007 right after the setup, before any setupComplete. Gemini does not
document this case; developers report resumption with a handle the service no longer
honours failing with 1007, and 1007 with "Request contains an invalid argument." is how
Gemini refuses a setup it cannot accept. Gemini's reason stops there; the emulator adds a
sentence naming the handle problem.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from adkvoice.errors import ProtocolError
from adkvoice.live_models import INVALID_ARGUMENT, is_live_model, rejection_reason

from . import client_messages as p
from . import frames
from .connection import ConnectionOptions, LiveConnection, TransportClosed
from .faults import FaultController
from .handles import ContextSnapshot, IssuedHandles
from .models import emulated_family, setup_refusal
from .rules import Rules
from .speech import Stt, Tts
from .stats import EmulatorStats
from .vision import ImageRefused

log = logging.getLogger(__name__)

PATH_RE = re.compile(
    r"^/+ws/google\.ai\.generativelanguage\.(v1alpha|v1beta)\.GenerativeService\."
    r"BidiGenerateContent(Constrained)?/*$"
)
EXPECTED_PATH = "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
UNKNOWN_HANDLE = f"{INVALID_ARGUMENT} Unknown or expired session resumption handle."
MAX_REASON_BYTES = 123


def close_reason(text: str) -> str:
    """Trim to the WebSocket limit without splitting a UTF-8 character."""
    data = text.encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[: MAX_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


def api_version(path: str) -> str | None:
    match = PATH_RE.match(urlsplit(path).path)
    return match.group(1) if match else None


@dataclass
class ServerContext:
    """Everything connections share; owned by `Emulator`."""

    rules: Rules
    tts: Tts
    stt: Stt
    faults: FaultController
    stats: EmulatorStats
    handles: IssuedHandles
    options: ConnectionOptions


class WebSocketTransport:
    def __init__(self, ws: ServerConnection) -> None:
        self._ws = ws

    async def send(self, data: str) -> None:
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise TransportClosed from exc

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, close_reason(reason))

    def abort(self) -> None:
        # No close frame, no FIN handshake: what a dead network looks like to the client.
        self._ws.transport.abort()


async def _refuse(ws: ServerConnection, stats: EmulatorStats, code: int, reason: str) -> None:
    stats.rejected_setups += 1
    stats.refusals.append((code, reason))
    log.info("emulator refused a connection: %s %s", code, reason)
    await ws.close(code, close_reason(reason))


async def _handshake(
    ws: ServerConnection, ctx: ServerContext, version: str
) -> LiveConnection | None:
    try:
        first = await ws.recv()
    except ConnectionClosed:
        return None
    try:
        setup = p.decode_client_message(first)
    except ProtocolError as exc:
        ctx.stats.protocol_errors += 1
        await _refuse(ws, ctx.stats, 1007, f"{INVALID_ARGUMENT} {exc}")
        return None
    if not isinstance(setup, p.Setup):
        await _refuse(ws, ctx.stats, 1007, f"{INVALID_ARGUMENT} The first message must be setup.")
        return None
    if not is_live_model(setup.model):
        await _refuse(ws, ctx.stats, 1008, rejection_reason(setup.model, version))
        return None
    refusal = setup_refusal(setup, emulated_family(setup.model))
    if refusal is not None:
        await _refuse(ws, ctx.stats, *refusal)
        return None
    conversation: ContextSnapshot | None = None
    if setup.resume_handle is not None:
        conversation = ctx.handles.restore(setup.resume_handle)
        if conversation is None:
            ctx.stats.rejected_handles += 1
            await _refuse(ws, ctx.stats, 1007, UNKNOWN_HANDLE)
            return None
        ctx.stats.resumed_sessions += 1
    await ws.send(frames.encode(frames.setup_complete()))
    ctx.stats.setups += 1
    ctx.stats.models.append(setup.model)
    ctx.stats.setup_log.append(setup)
    return LiveConnection(
        setup,
        transport=WebSocketTransport(ws),
        rules=ctx.rules,
        tts=ctx.tts,
        stt=ctx.stt,
        faults=ctx.faults,
        stats=ctx.stats,
        handles=ctx.handles,
        options=ctx.options,
        conversation=conversation,
    )


async def handle_connection(ws: ServerConnection, ctx: ServerContext) -> None:
    """Serve one client from handshake to close."""
    ctx.stats.connections += 1
    ctx.stats.active_connections += 1
    try:
        version = api_version(ws.request.path if ws.request else "")
        if version is None:
            path = ws.request.path if ws.request else "?"
            await ws.close(1008, close_reason(f"Unknown path {path}; expected {EXPECTED_PATH}"))
            return
        session = await _handshake(ws, ctx, version)
        if session is None:
            return
        await session.start()
        try:
            await _serve(ws, session, ctx.stats)
        finally:
            await session.shutdown()
    except (ConnectionClosed, TransportClosed):
        pass
    finally:
        ctx.stats.active_connections -= 1


async def _serve(ws: ServerConnection, session: LiveConnection, stats: EmulatorStats) -> None:
    async for raw in ws:
        try:
            msg = p.decode_client_message(raw)
            if isinstance(msg, p.RealtimeInput):
                stats.media_in += msg.other_media
                for image in msg.images:  # decoded off the loop: a large PNG takes a while
                    await asyncio.to_thread(session.record.sight.see, image.data)
            await session.handle(msg)
        except ProtocolError as exc:
            stats.protocol_errors += 1
            stats.refused_images += isinstance(exc, ImageRefused)
            log.info("emulator closing on a bad client frame: %s", exc)
            await ws.close(1007, close_reason(f"{INVALID_ARGUMENT} {exc}"))
            return
