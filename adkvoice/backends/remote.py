"""Remote backends: an agent hosted elsewhere, reached over WebSocket.

Two wire formats, one connection manager:
- `SeedsRemote`: `adkvoice serve` or any server speaking the ADK streaming sample's
  `/ws/{session_id}` protocol; it offers the `adkvoice.v1` extension and uses it when the
  server selects it (binary audio, richer events).
- `RunLiveRemote`: `adk api_server` / `adk web` at `/run_live?app_name=…`; the session is
  created over REST first, frames are ADK `LiveRequest` / `Event` JSON.

After an unexpected drop the manager reconnects with exponential backoff and jitter to
the same session id, says so with notices, and sends the turn that was in flight again
if no reply to it had arrived.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from adkvoice.backends.recovery import MAX_HELD_AUDIO_BYTES, Backoff
from adkvoice.conversation.turns import is_agent_output
from adkvoice.errors import BackendError, ConfigError, ConnectionLostError, ProtocolError
from adkvoice.events import (
    ErrorEvent,
    Event,
    Interrupted,
    Notice,
    ToolCall,
    TurnComplete,
)
from adkvoice.store.sessions import new_session_id
from adkvoice.tasks import cancel_and_wait
from adkvoice.wire import serve_protocol as protocol
from adkvoice.wire.close_codes import describe_close

log = logging.getLogger(__name__)

Modality = Literal["TEXT", "AUDIO"]
Frame = str | bytes
# After a reconnect the server may answer the turn in flight by itself (an ADK server
# replays the stored history, which ends with it); it is sent again only if the server
# has said nothing for this long.
RESEND_AFTER_S = 3.0
# A turn still unanswered after this many reconnects is given up (most likely it is what
# breaks the connection).
MAX_TURN_RECONNECTS = 3
# Close codes after which reconnecting cannot help.
_FINAL_CLOSE_CODES = frozenset({1000, 1002, 1003, 1007, 1008, 1009, 1010})


def _with_query(url: str, **params: str) -> str:
    """`url` with `params` added unless already present."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key, value in params.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


class _RemoteBase:
    """Connection management shared by both wire formats."""

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        token: str | None = None,
        backoff: Backoff | None = None,
        resend_after_s: float = RESEND_AFTER_S,
    ) -> None:
        self._url = url
        self._modality = modality
        self._token = token
        self._backoff = backoff or Backoff()
        self._resend_after_s = resend_after_s
        self._ws: ClientConnection | None = None
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._failure: BackendError | None = None
        self._closing = False
        self._connected = asyncio.Event()
        # Frames to send once reconnected, each marked whether it is audio.
        self._pending_sends: deque[tuple[Frame, bool]] = deque()
        self._buffered_audio = 0
        self._dropped_audio_notice = False
        self._turn_text: str | None = None  # the typed turn awaiting its reply
        self._turn_sent = False  # it went out on a connection (else it is still pending)
        self._turn_answered = False  # part of an answer arrived on the current connection
        self._turn_reconnects = 0  # reconnects while it was in flight
        self._heard_since_reconnect = False
        self._resend_task: asyncio.Task[None] | None = None

    # -- subclass hooks -----------------------------------------------------------------
    def _connect_url(self) -> str:
        return self._url

    def _subprotocols(self) -> list[Subprotocol] | None:
        return None

    async def _before_connect(self) -> None:
        """Work before each connection attempt (creating the session over REST)."""

    def _on_connected(self, ws: ClientConnection) -> None:
        """Inspect the handshake (the subprotocol the server chose)."""

    def _decode(self, frame: Frame) -> list[Event]:
        raise NotImplementedError

    def _encode_text(self, text: str) -> Frame:
        raise NotImplementedError

    def _encode_audio(self, pcm: bytes) -> Frame:
        raise NotImplementedError

    # -- connection ---------------------------------------------------------------------
    @property
    def is_audio(self) -> bool:
        return self._modality == "AUDIO"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _open(self) -> ClientConnection:
        await self._before_connect()
        url = self._connect_url()
        try:
            ws = await connect(
                url,
                subprotocols=self._subprotocols(),
                additional_headers=self._headers(),
                open_timeout=10,
                max_size=8 * 1024 * 1024,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ConfigError(
                    f"{self._url} refused the token (HTTP {status}): check --token"
                ) from None
            raise BackendError(f"{self._url} refused the WebSocket (HTTP {status})") from None
        except InvalidHandshake as exc:
            raise BackendError(f"{self._url} is not a WebSocket endpoint: {exc}") from None
        except OSError as exc:
            raise ConnectionLostError(f"cannot reach {self._url}: {exc.strerror or exc}") from None
        except TimeoutError:
            raise ConnectionLostError(f"cannot reach {self._url}: timed out") from None
        self._on_connected(ws)
        return ws

    async def start(self) -> None:
        self._ws = await self._open()
        self._connected.set()
        self._task = asyncio.create_task(self._pump(), name="remote-pump")

    async def _pump(self) -> None:
        try:
            while True:
                assert self._ws is not None
                code, reason = await self._receive_until_closed(self._ws)
                if self._closing:
                    return
                if code in _FINAL_CLOSE_CODES:
                    raise BackendError(
                        f"the server ended the session: {describe_close(code, reason)}"
                    )
                self._connected.clear()
                self._ws = await self._reconnect(code, reason)
                self._connected.set()
                await self._after_reconnect()
        except asyncio.CancelledError:
            raise
        except BackendError as exc:
            self._failure = exc
        except ProtocolError as exc:
            self._failure = BackendError(f"the server sent a frame this client cannot read: {exc}")
        finally:
            self._events.put_nowait(None)

    async def _receive_until_closed(self, ws: ClientConnection) -> tuple[int | None, str]:
        try:
            async for frame in ws:
                for event in self._decode(frame):
                    self._note_turn_progress(event)
                    self._events.put_nowait(event)
        except ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason or ""

    async def _reconnect(self, code: int | None, reason: str) -> ClientConnection:
        why = describe_close(code if code is not None else 1006, reason)
        self._events.put_nowait(
            Notice(message=f"connection lost ({why}); reconnecting", level="warning")
        )
        last: BaseException | None = None
        for attempt, delay in enumerate(self._backoff.delays(), start=1):
            await asyncio.sleep(delay)
            try:
                ws = await self._open()
            except (ConnectionLostError, BackendError) as exc:
                last = exc
                log.debug("reconnect attempt %d failed: %s", attempt, exc)
                continue
            self._events.put_nowait(Notice(message="reconnected; the conversation continues"))
            return ws
        raise ConnectionLostError(
            f"lost the connection to {self._url} and could not reconnect "
            f"({self._backoff.attempts} attempts): {last}"
        )

    async def _after_reconnect(self) -> None:
        assert self._ws is not None
        self._heard_since_reconnect = False
        text = self._turn_text
        if text is not None and self._turn_sent:
            self._turn_reconnects += 1
            if self._turn_answered:
                # The part already shown will not be finished; a whole answer follows.
                self._events.put_nowait(Interrupted())
                self._turn_answered = False
            if self._turn_reconnects > MAX_TURN_RECONNECTS:
                self._events.put_nowait(
                    ErrorEvent(
                        message=f"no complete reply after {MAX_TURN_RECONNECTS} reconnects; "
                        "your last message was given up",
                        retryable=True,
                    )
                )
                self._events.put_nowait(TurnComplete())
                self._turn_text = None
            else:
                self._resend_task = asyncio.create_task(self._resend_if_silent(text))
        while self._pending_sends:
            await self._ws.send(self._pending_sends.popleft()[0])
        self._turn_sent = self._turn_text is not None
        self._buffered_audio = 0

    async def _resend_if_silent(self, text: str, *, after_s: float | None = None) -> None:
        """Send the turn in flight again unless the server starts answering it first."""
        await asyncio.sleep(self._resend_after_s if after_s is None else after_s)
        if self._heard_since_reconnect or self._turn_text != text or self._ws is None:
            return
        self._events.put_nowait(Notice(message="sending your last message again"))
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(self._encode_text(text))

    def _server_knows_the_turn(self, awaiting_reply: bool) -> None:
        """The server said (adkvoice.v1 hello) whether it is answering the turn in flight:
        no need to guess by waiting."""
        task = self._resend_task
        if task is None or task.done() or self._turn_text is None:
            return
        task.cancel()
        if not awaiting_reply:
            self._resend_task = asyncio.create_task(
                self._resend_if_silent(self._turn_text, after_s=0)
            )

    def _note_turn_progress(self, event: Event) -> None:
        if is_agent_output(event) or isinstance(event, ToolCall):
            self._turn_answered = True
            self._heard_since_reconnect = True
        if isinstance(event, TurnComplete):
            self._turn_text = None

    # -- sending ------------------------------------------------------------------------
    async def _send(self, frame: Frame, *, is_audio: bool = False) -> bool:
        """Send now, or keep the frame for after the reconnect; True if it went out."""
        if self._failure is not None:
            raise self._failure
        if self._connected.is_set() and self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(frame)
                return True
        # Disconnected: keep text, and a bounded amount of audio, for after the reconnect.
        if is_audio:
            self._buffered_audio += len(frame)
            while self._buffered_audio > MAX_HELD_AUDIO_BYTES and self._drop_oldest_audio():
                if not self._dropped_audio_notice:
                    self._dropped_audio_notice = True
                    self._events.put_nowait(
                        Notice(
                            message="microphone audio dropped while reconnecting", level="warning"
                        )
                    )
        self._pending_sends.append((frame, is_audio))
        return False

    def _drop_oldest_audio(self) -> bool:
        for index, (frame, audio) in enumerate(self._pending_sends):
            if audio:
                del self._pending_sends[index]
                self._buffered_audio -= len(frame)
                return True
        return False

    async def send_text(self, text: str) -> None:
        self._turn_text = text
        self._turn_answered = False
        self._turn_reconnects = 0
        self._turn_sent = False
        # A text kept for after the reconnect is sent then; only a sent one is repeated.
        self._turn_sent = await self._send(self._encode_text(text))

    async def send_audio(self, pcm16k: bytes) -> None:
        await self._send(self._encode_audio(pcm16k), is_audio=True)

    async def send_activity_start(self) -> None:
        raise BackendError("push-to-talk is not available over this server's protocol")

    async def send_activity_end(self) -> None:
        raise BackendError("push-to-talk is not available over this server's protocol")

    async def events(self) -> AsyncIterator[Event]:
        while True:
            item = await self._events.get()
            if item is None:
                self._events.put_nowait(None)
                if self._failure is not None:
                    raise self._failure
                return
            yield item

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await self._goodbye(self._ws)
                await asyncio.wait_for(self._ws.close(), timeout=2)
        if self._resend_task is not None and not self._resend_task.done():
            await cancel_and_wait(self._resend_task)
        if self._task is not None and not self._task.done():
            await cancel_and_wait(self._task)

    async def _goodbye(self, ws: ClientConnection) -> None:
        """Tell the server we are leaving, if the protocol has a way."""


class SeedsRemote(_RemoteBase):
    """`adkvoice serve` or a server speaking the ADK streaming sample's `/ws` protocol."""

    _extended = False  # set from the handshake: the server chose adkvoice.v1

    @property
    def description(self) -> str:
        wire = "adkvoice.v1" if self._extended else "seeds protocol"
        return f"{self._url} · {wire}"

    def _connect_url(self) -> str:
        return _with_query(self._url, is_audio="true" if self.is_audio else "false")

    def _subprotocols(self) -> list[Subprotocol] | None:
        return [Subprotocol(protocol.SUBPROTOCOL)]

    def _on_connected(self, ws: ClientConnection) -> None:
        self._extended = ws.subprotocol == protocol.SUBPROTOCOL

    def _decode(self, frame: Frame) -> list[Event]:
        items = protocol.decode_server_frame(frame, extended=self._extended, is_audio=self.is_audio)
        out: list[Event] = []
        for item in items:
            if isinstance(item, protocol.Hello):
                if item.resumed:
                    log.debug("session %s continues", item.session_id)
                self._server_knows_the_turn(item.awaiting_reply)
                continue
            out.append(item)
        return out

    def _encode_text(self, text: str) -> Frame:
        return protocol.encode_client_text(text, extended=self._extended)

    def _encode_audio(self, pcm: bytes) -> Frame:
        return protocol.encode_client_audio(pcm, extended=self._extended)

    async def _goodbye(self, ws: ClientConnection) -> None:
        if self._extended:
            await ws.send(protocol.encode_client_end())


class RunLiveRemote(_RemoteBase):
    """`adk api_server` / `adk web` at `ws://host/run_live?app_name=…&user_id=…&session_id=…`."""

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        token: str | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(url, modality=modality, token=token, backoff=backoff)
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        if not query.get("app_name"):
            raise ConfigError(
                "--url …/run_live needs ?app_name=<agent folder name> (user_id and "
                "session_id are optional)"
            )
        self._app = query["app_name"]
        self._user = query.get("user_id") or "user"
        self._session = query.get("session_id") or new_session_id()
        from adkvoice.wire.adk_events import AdkEventMapper

        self._mapper = AdkEventMapper()

    @property
    def description(self) -> str:
        return f"{self._url} · adk run_live · session {self._session}"

    def _connect_url(self) -> str:
        return _with_query(
            self._url,
            user_id=self._user,
            session_id=self._session,
            modalities=self._modality,
        )

    def _rest_base(self) -> str:
        parts = urlsplit(self._url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return f"{scheme}://{parts.netloc}"

    async def _before_connect(self) -> None:
        """`adk api_server` needs the session to exist: create it unless it does."""
        import httpx

        base = self._rest_base()
        path = f"/apps/{self._app}/users/{self._user}/sessions"
        try:
            async with httpx.AsyncClient(
                base_url=base, headers=self._headers(), timeout=10
            ) as http:
                found = await http.get(f"{path}/{self._session}")
                if found.status_code == 200:
                    return
                created = await http.post(path, json={"session_id": self._session})
        except httpx.HTTPError as exc:
            raise ConnectionLostError(f"cannot reach {base}: {exc}") from None
        if created.status_code == 404:
            raise ConfigError(f"{base} has no agent named {self._app!r} (check app_name)")
        if created.status_code >= 400:
            raise BackendError(
                f"{base} refused to create session {self._session} (HTTP {created.status_code})"
            )

    def _decode(self, frame: Frame) -> list[Event]:
        from google.adk.events.event import Event as AdkEvent
        from pydantic import ValidationError

        if isinstance(frame, bytes):
            raise ProtocolError("adk run_live sends JSON text frames, not binary")
        try:
            adk_event = AdkEvent.model_validate_json(frame)
        except ValidationError as exc:
            raise ProtocolError(f"not an ADK Event: {exc.errors()[0]['msg']}") from None
        return self._mapper.map(adk_event)

    def _encode_text(self, text: str) -> Frame:
        import json

        request: dict[str, Any] = {"content": {"role": "user", "parts": [{"text": text}]}}
        return json.dumps(request)

    def _encode_audio(self, pcm: bytes) -> Frame:
        import json

        blob = {"mime_type": "audio/pcm;rate=16000", "data": base64.b64encode(pcm).decode()}
        return json.dumps({"blob": blob})

    async def send_activity_start(self) -> None:
        await self._send('{"activity_start": {}}')

    async def send_activity_end(self) -> None:
        await self._send('{"activity_end": {}}')

    async def _goodbye(self, ws: ClientConnection) -> None:
        await ws.send('{"close": true}')


def remote_backend(
    url: str, *, modality: Modality, token: str | None = None
) -> SeedsRemote | RunLiveRemote:
    """The backend for a `--url`: `/run_live` means ADK's api_server, anything else the
    seeds' `/ws/{session_id}` protocol."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ConfigError(f"--url must start with ws:// or wss://, not {url!r}")
    if parts.path.rstrip("/").endswith("/run_live"):
        return RunLiveRemote(url, modality=modality, token=token)
    if "/ws/" not in parts.path:
        raise ConfigError(
            "--url must name a session: ws://HOST:PORT/ws/SESSION_ID (adkvoice serve) or "
            "ws://HOST:PORT/run_live?app_name=AGENT (adk api_server)"
        )
    return SeedsRemote(url, modality=modality, token=token)
