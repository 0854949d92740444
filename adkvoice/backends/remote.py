"""The remote backend: an agent hosted elsewhere, reached over a WebSocket or HTTP.

One connection manager for every endpoint (`endpoints`), channel (`channels`) and codec
(`adkvoice.wire`). The
turn state is the embedded backend's (`recovery.TurnLedger`): after an unexpected drop the
manager reconnects with backoff and jitter to the same session id, says so with notices,
holds what the user sends meanwhile (`SendHold`), and sends the turn in flight again only
if the server does not answer it by itself. Of images only the newest is kept, and it is
shown again after every reconnect: the server's new model connection may not have it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from adkvoice.backends.base import Capabilities, require_images
from adkvoice.backends.channels import Channel, ChannelClosed, ChannelRefused
from adkvoice.backends.endpoints import (
    Endpoint,
    Headers,
    auth_headers,
    endpoint_for,
)
from adkvoice.backends.outbox import Outbox
from adkvoice.backends.recovery import (
    MAX_HELD_AUDIO_BYTES,
    AwaitServer,
    Backoff,
    GiveUp,
    SendHold,
    TurnLedger,
    dropped_audio_notice,
)
from adkvoice.config import ProtocolChoice
from adkvoice.errors import BackendError, ConfigError, ConnectionLostError, ProtocolError
from adkvoice.events import (
    AnswerComplete,
    ErrorEvent,
    Event,
    Interrupted,
    Modality,
    TurnComplete,
)
from adkvoice.live_models import mentions_text_refusal
from adkvoice.live_options import LiveOptions
from adkvoice.redaction import redact
from adkvoice.tasks import cancel_and_wait
from adkvoice.wire.base import ClientCodec, Frame, Hello
from adkvoice.wire.close_codes import describe_close

log = logging.getLogger(__name__)

# After a reconnect the server may answer the turn in flight by itself (an ADK server
# replays the stored history, which ends with it); it is sent again only if the server
# has said nothing for this long (an adkvoice.v1 hello settles it at once).
RESEND_AFTER_S = 3.0
# Close codes after which reconnecting cannot help.
_FINAL_CLOSE_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})
# A server that accepts the connection and drops it at once, before sending anything,
# this many times in a row, is not going to start the agent (a bidi-demo server whose
# model refuses the modality it asks for does this): stop instead of reconnecting forever.
MAX_QUICK_DROPS = 3
QUICK_DROP_S = 5.0


@dataclass(eq=False, slots=True)
class Outgoing:
    """Something the user sends, encoded only when it goes out (the codec is chosen per
    connection). Compared by identity: the ledger tracks the typed turn's own item."""

    kind: Literal["text", "audio", "image", "activity_start", "activity_end"]
    text: str = ""
    pcm: bytes = b""
    image: bytes = b""
    mime_type: str = ""


class RemoteBackend:
    """A conversation with the agent behind `endpoint`, across reconnects."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        token: str | None = None,
        headers: Headers = (),
        backoff: Backoff | None = None,
        resend_after_s: float = RESEND_AFTER_S,
    ) -> None:
        self.endpoint = endpoint
        self._token = token
        self._headers = headers
        self._backoff = backoff or Backoff()
        self._resend_after_s = resend_after_s
        self._channel: Channel | None = None
        self._codec: ClientCodec | None = None
        self._outbox = Outbox()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._ledger = TurnLedger()
        self._hold: SendHold[Outgoing] = SendHold(MAX_HELD_AUDIO_BYTES)
        # The newest image the user showed: the only one kept while disconnected (older
        # pictures would only cost tokens), and shown again after a reconnect (a new model
        # connection, or a new session on a server that keeps none, may not have it).
        self._picture: Outgoing | None = None
        self._resend_task: asyncio.Task[None] | None = None
        self._refusals: set[str] = set()  # what the server refused, each said once

    @property
    def capabilities(self) -> Capabilities:
        return self.endpoint.capabilities

    @property
    def description(self) -> str:
        assert self._codec is not None, "not connected"
        return self.endpoint.description(self._codec)

    # -- connection ---------------------------------------------------------------------
    async def _open(self) -> Channel:
        await self.endpoint.prepare()
        channel = await self.endpoint.open(auth_headers(self._token, self._headers))
        self._codec = self.endpoint.codec(channel.subprotocol)
        self._ledger.tools_unseen(not self._codec.tool_events)
        return channel

    async def start(self) -> None:
        self._channel = await self._open()
        self._ledger.connected()
        self._task = asyncio.create_task(self._pump(), name="remote-pump")

    async def _pump(self) -> None:
        quick_drops = 0
        try:
            while True:
                assert self._channel is not None
                opened_at = time.monotonic()
                closed = self._channel
                code, reason, heard = await self._receive_until_closed(closed)
                if self._closing:
                    return
                # What the closed connection still holds (an HTTP channel's client and its
                # kept-alive sockets) goes now, not when it is collected.
                await closed.close()
                quick = not heard and time.monotonic() - opened_at < QUICK_DROP_S
                quick_drops = quick_drops + 1 if quick else 0
                if quick_drops >= MAX_QUICK_DROPS:
                    why = describe_close(code if code is not None else 1006, reason)
                    raise BackendError(
                        f"{redact(self.endpoint.url)} dropped {quick_drops} connections in a "
                        f"row before sending anything ({why}): its agent does not start. "
                        "Check the server's log (a bidi-demo server does this when its model "
                        "refuses the reply modality it asks for)"
                    )
                if mentions_text_refusal(reason) and self.endpoint.speak_instead_of_text():
                    # ADK's api_server passes the model's refusal on (close 1011).
                    self._outbox.notice(
                        "the server's model answers in audio only: reconnecting for speech "
                        "and showing its transcript as the text reply",
                        level="info",
                    )
                    self._channel = await self._open()
                    await self._after_reconnect()
                    continue
                if code in _FINAL_CLOSE_CODES:
                    raise BackendError(
                        f"the server ended the session: {describe_close(code, reason)}"
                    )
                self._channel = None
                self._ledger.disconnected(failed=True)
                self._channel = await self._reconnect(code, reason)
                await self._after_reconnect()
        except asyncio.CancelledError:
            raise
        except BackendError as exc:
            self._outbox.failure = exc
        except ProtocolError as exc:
            self._outbox.failure = BackendError(
                f"the server sent a frame this client cannot read: {exc}"
            )
        finally:
            self._outbox.end()

    async def _receive_until_closed(self, channel: Channel) -> tuple[int | None, str, bool]:
        """The close code and reason, and whether anything was received before it."""
        assert self._codec is not None
        heard = False
        async for frame in channel.frames():
            heard = True
            for item in self._codec.decode(frame):
                if isinstance(item, Hello):
                    self._server_knows_the_turn(item.awaiting_reply)
                else:
                    self._deliver(item)
        return channel.close_code, channel.close_reason, heard

    def _deliver(self, event: Event) -> None:
        answered = self._ledger.observe(event)
        self._outbox.put(event)
        if answered:
            self._outbox.put(AnswerComplete())

    async def _reconnect(self, code: int | None, reason: str) -> Channel:
        why = describe_close(code if code is not None else 1006, reason)
        self._outbox.notice(f"connection lost ({why}); reconnecting")
        last: BaseException | None = None
        for attempt, delay in enumerate(self._backoff.delays(), start=1):
            await asyncio.sleep(delay)
            try:
                channel = await self._open()
            except (ConnectionLostError, BackendError) as exc:
                last = exc
                log.debug("reconnect attempt %d failed: %s", attempt, exc)
                continue
            self._outbox.notice("reconnected; the conversation continues", level="info")
            return channel
        raise ConnectionLostError(
            f"lost the connection to {self.endpoint.url} and could not reconnect "
            f"({self._backoff.attempts} attempts): {last}"
        )

    async def _after_reconnect(self) -> None:
        outcome = self._ledger.connected(history_ends_with_user=None)
        if isinstance(outcome, GiveUp):
            self._outbox.put(
                ErrorEvent(
                    message=f"no complete reply in {outcome.failures} attempts; your last "
                    "message was given up",
                    retryable=True,
                )
            )
            self._outbox.put(TurnComplete())
            self._outbox.put(AnswerComplete())
        elif isinstance(outcome, AwaitServer):
            if outcome.had_output:
                # The part already shown will not be finished; a whole answer follows.
                self._outbox.put(Interrupted(source="connection"))
            self._resend_task = asyncio.create_task(self._resend_if_silent(self._resend_after_s))
        dropped = self._hold.dropped_bytes
        for item in self._hold.take():
            await self._send_now(item)
        if self._picture is not None:
            await self._send_now(self._picture)
        if dropped:
            self._outbox.notice(dropped_audio_notice(dropped, reconnecting=True))

    async def _resend_if_silent(self, after_s: float) -> None:
        """Send the turn in flight again unless the server starts answering it first."""
        turn = self._ledger.pending
        await asyncio.sleep(after_s)
        if turn is None or self._ledger.pending is not turn or turn.output_seen:
            return
        self._outbox.notice("sending your last message again", level="info")
        item = Outgoing("text", text=turn.text)
        self._ledger.resent(item)
        await self._send(item)

    def _server_knows_the_turn(self, awaiting_reply: bool) -> None:
        """The server said (adkvoice.v1 hello) whether it is answering the turn in flight:
        no need to guess by waiting."""
        task = self._resend_task
        if task is None or task.done():
            return
        task.cancel()
        if not awaiting_reply:
            self._resend_task = asyncio.create_task(self._resend_if_silent(0))

    # -- sending ------------------------------------------------------------------------
    def _encode(self, item: Outgoing) -> Frame | None:
        codec = self._codec
        assert codec is not None
        if item.kind == "text":
            return codec.encode_text(item.text)
        if item.kind == "audio":
            return codec.encode_audio(item.pcm)
        if item.kind == "image":
            # None if a reconnect landed on a server without images: the frame is dropped.
            return codec.encode_image(item.image, item.mime_type)
        return codec.encode_activity(item.kind == "activity_start")

    async def _send_now(self, item: Outgoing) -> bool:
        """Send on the current connection; False if there is none (or it just closed)."""
        channel = self._channel
        if channel is None:
            return False
        frame = self._encode(item)
        if frame is None:
            return True
        try:
            await channel.send(frame)
        except ChannelClosed:
            return False
        except ChannelRefused as exc:
            # Dropped by the server (a rate or size limit): said once, the rest goes on.
            if str(exc) not in self._refusals:
                self._refusals.add(str(exc))
                self._outbox.notice(str(exc))
            return True
        self._ledger.taken(item)
        return True

    async def _send(self, item: Outgoing) -> None:
        """Send now, or hold the item for after the reconnect."""
        self._outbox.raise_if_failed()
        if item.kind == "image":
            self._picture = item
            await self._send_now(item)  # if disconnected, sent after the reconnect
            return
        held = not await self._send_now(item)
        if held and self._hold.add(item, audio_bytes=len(item.pcm)):
            log.debug("send hold full: dropping the oldest audio")

    async def send_text(self, text: str) -> None:
        item = Outgoing("text", text=text)
        self._ledger.sent(text, item)
        await self._send(item)

    async def send_audio(self, pcm16k: bytes) -> None:
        if not self.capabilities.audio:
            raise ConfigError(f"{self.description} carries no audio: type instead")
        await self._send(Outgoing("audio", pcm=pcm16k))

    async def send_image(self, data: bytes, mime_type: str) -> None:
        require_images(self)
        await self._send(Outgoing("image", image=data, mime_type=mime_type))

    def _require_push_to_talk(self) -> None:
        if not self.capabilities.push_to_talk:
            raise ConfigError(
                f"push-to-talk is not available over {self.description}: its protocol has "
                "no activity signals"
            )

    async def send_activity_start(self) -> None:
        self._require_push_to_talk()
        await self._send(Outgoing("activity_start"))

    async def send_activity_end(self) -> None:
        self._require_push_to_talk()
        await self._send(Outgoing("activity_end"))

    def events(self) -> AsyncIterator[Event]:
        return self._outbox.events()

    async def close(self) -> None:
        self._closing = True
        channel, codec = self._channel, self._codec
        if channel is not None and codec is not None:
            goodbye = codec.encode_goodbye()
            if goodbye is not None:
                with contextlib.suppress(ChannelClosed, ChannelRefused, OSError):
                    await asyncio.wait_for(channel.send(goodbye), timeout=2)
            await channel.close()
        if self._resend_task is not None and not self._resend_task.done():
            await cancel_and_wait(self._resend_task)
        if self._task is not None and not self._task.done():
            await cancel_and_wait(self._task)


def remote_backend(
    url: str,
    *,
    modality: Modality,
    token: str | None = None,
    headers: Headers = (),
    live: LiveOptions | None = None,
    protocol: ProtocolChoice = "auto",
) -> RemoteBackend:
    """The backend for a `--url` (see `endpoints.endpoint_for` for the URL rules)."""
    endpoint = endpoint_for(
        url, modality=modality, token=token, headers=headers, live=live, protocol=protocol
    )
    return RemoteBackend(endpoint, token=token, headers=headers)
