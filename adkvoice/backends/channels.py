"""What carries frames between the remote backend and a server: a WebSocket, or HTTP.

`RemoteBackend` sees one shape for every transport: `frames()` until the channel closes
(then `close_code` and `close_reason` say how), `send(frame)`, which raises
`ChannelClosed` once the channel is gone (the backend then holds what it sends until it
reconnects) and `ChannelRefused` when the server refused that one message, and `close()`.

- `WebSocketChannel`: one WebSocket (the seeds' protocol, adkvoice.v1, bidi-demo,
  `/run_live`).
- `EventStreamChannel`: the seeds' SSE version: the `GET /events/ID` event stream is the
  way down (each event's data is one frame), and each frame up is a `POST /send/ID`.
- `RunSseChannel`: ADK's `/run_sse`: each frame up is a run (a POST), and the events of
  its answer stream come down, followed by `wire.run_sse.RUN_END`.

Opening refuses in the same words for every channel: bad credentials are a
`ConfigError`, a server that answers but will not take the connection a `BackendError`,
one that cannot be reached a `ConnectionLostError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from adkvoice.errors import BackendError, ConfigError, ConnectionLostError
from adkvoice.redaction import redact
from adkvoice.tasks import cancel_and_wait
from adkvoice.wire.base import Frame, parse_json
from adkvoice.wire.event_stream import EventStreamDecoder, EventStreamError
from adkvoice.wire.run_sse import RUN_END, run_failure

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 10.0
MAX_FRAME_BYTES = 8 * 1024 * 1024
# A closed HTTP stream has no close code; it is treated as a dropped connection.
ABNORMAL_CLOSE = 1006


class ChannelClosed(Exception):
    """The channel is gone: what was being sent did not reach the server."""


class ChannelRefused(Exception):
    """The server refused this one message (too long, too fast); the channel stays open.
    `str(exc)` says why, for the user."""


class Channel(Protocol):
    subprotocol: str | None  # what the WebSocket handshake chose; None elsewhere
    close_code: int | None
    close_reason: str

    def frames(self) -> AsyncIterator[Frame]:
        """Every frame from the server, until the channel closes."""
        ...

    async def send(self, frame: Frame) -> None: ...

    async def close(self) -> None: ...


def _refused(url: str, status: int, what: str) -> Exception:
    if status in (401, 403):
        return ConfigError(
            f"{redact(url)} refused the credentials (HTTP {status}): check --token or --header"
        )
    return BackendError(f"{redact(url)} refused the {what} (HTTP {status})")


# -- WebSocket ------------------------------------------------------------------------------
class WebSocketChannel:
    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.subprotocol: str | None = ws.subprotocol
        self.close_code: int | None = None
        self.close_reason = ""

    async def frames(self) -> AsyncIterator[Frame]:
        try:
            async for frame in self._ws:
                yield frame
        except ConnectionClosed:
            pass
        self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason or ""

    async def send(self, frame: Frame) -> None:
        try:
            await self._ws.send(frame)
        except ConnectionClosed:
            raise ChannelClosed from None

    async def close(self) -> None:
        with contextlib.suppress(ConnectionClosed, OSError, TimeoutError):
            await asyncio.wait_for(self._ws.close(), timeout=2)


async def open_websocket(
    url: str,
    connect_url: str,
    *,
    subprotocols: list[Subprotocol] | None,
    headers: dict[str, str],
) -> WebSocketChannel:
    """A WebSocket to `connect_url` (`url` is what the user gave, for messages)."""
    try:
        ws = await connect(
            connect_url,
            subprotocols=subprotocols,
            additional_headers=headers,
            open_timeout=OPEN_TIMEOUT_S,
            max_size=MAX_FRAME_BYTES,
        )
    except InvalidStatus as exc:
        raise _refused(url, exc.response.status_code, "WebSocket") from None
    except InvalidHandshake as exc:
        raise BackendError(f"{redact(url)} is not a WebSocket endpoint: {exc}") from None
    except OSError as exc:
        raise ConnectionLostError(f"cannot reach {redact(url)}: {exc.strerror or exc}") from None
    except TimeoutError:
        raise ConnectionLostError(f"cannot reach {redact(url)}: timed out") from None
    return WebSocketChannel(ws)


# -- HTTP -----------------------------------------------------------------------------------
def _http_client(headers: dict[str, str]) -> httpx.AsyncClient:
    import httpx

    # No read timeout: an event stream may rightly stay silent between turns (the sample's
    # server sends no keep-alives).
    timeout = httpx.Timeout(OPEN_TIMEOUT_S, read=None)
    return httpx.AsyncClient(headers=headers, timeout=timeout)


def _unreachable(url: str, exc: Exception) -> ConnectionLostError:
    return ConnectionLostError(f"cannot reach {redact(url)}: {redact(str(exc)) or type(exc)}")


async def _events_of(response: httpx.Response) -> AsyncIterator[str]:
    """The data of each event in a streamed `text/event-stream` response."""
    decoder = EventStreamDecoder()
    async for text in response.aiter_text():
        for data in decoder.feed(text):
            yield data


def _refusal(answer: httpx.Response) -> str | None:
    """Why the server refused a POST; None if it took it. The sample's server answers
    every POST with 200, errors included (`{"error": "Session not found"}`)."""
    if answer.status_code < 400 and b'"error"' not in answer.content:
        return None
    error = _error_of(answer.content, answer.status_code)
    if answer.status_code < 400 and error.startswith("HTTP "):
        return None  # "error" was in the body, but not as its error
    return error


def _error_of(response_body: bytes, status: int) -> str:
    """The `{"error": …}` or `{"detail": …}` a server answered with, else the status."""
    with contextlib.suppress(Exception):
        obj = parse_json(response_body, "response")
        if isinstance(obj, dict):
            for key in ("error", "detail"):
                if isinstance(obj.get(key), str):
                    return str(obj[key])
    return f"HTTP {status}"


class EventStreamChannel:
    """`GET /events/ID` down, `POST /send/ID` up (see `wire.seeds`: the same messages)."""

    subprotocol: str | None = None

    def __init__(
        self, url: str, client: httpx.AsyncClient, stream: httpx.Response, send_url: str
    ) -> None:
        self._url = url
        self._client = client
        self._stream = stream
        self._send_url = send_url
        self._order = asyncio.Lock()  # POSTs go one at a time, so they arrive in order
        self._closed = False
        self.close_code: int | None = None
        self.close_reason = ""

    async def frames(self) -> AsyncIterator[Frame]:
        import httpx

        try:
            async for data in _events_of(self._stream):
                yield data
            self.close_code, self.close_reason = ABNORMAL_CLOSE, "the event stream ended"
        except (httpx.HTTPError, EventStreamError) as exc:
            self.close_code, self.close_reason = ABNORMAL_CLOSE, redact(str(exc))
        finally:
            self._closed = True
            await self._stream.aclose()

    async def send(self, frame: Frame) -> None:
        import httpx

        if self._closed:
            raise ChannelClosed
        async with self._order:
            try:
                answer = await self._client.post(
                    self._send_url,
                    content=frame,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                log.debug("POST %s failed: %s", redact(self._send_url), exc)
                raise ChannelClosed from None
        error = _refusal(answer)
        if error is None:
            return
        if answer.status_code in (404, 503) or error == "Session not found":
            # The stream this id fed is gone (or the server is going): reconnect.
            raise ChannelClosed
        if answer.status_code in (401, 403):
            raise _refused(self._url, answer.status_code, "message")
        raise ChannelRefused(f"the server refused a message: {error}")

    async def close(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            await self._stream.aclose()
        await self._client.aclose()


async def open_event_stream(
    url: str, events_url: str, send_url: str, *, headers: dict[str, str]
) -> EventStreamChannel:
    """Open the `GET events_url` stream; frames up go to `send_url`."""
    import httpx

    client = _http_client(headers)
    try:
        request = client.build_request("GET", events_url, headers={"Accept": "text/event-stream"})
        stream = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise _unreachable(url, exc) from None
    kind = stream.headers.get("content-type", "")
    if stream.status_code >= 400 or not kind.startswith("text/event-stream"):
        body = await stream.aread()
        await stream.aclose()
        await client.aclose()
        if stream.status_code >= 400:
            error = _error_of(body, stream.status_code)
            if stream.status_code in (401, 403):
                raise _refused(url, stream.status_code, "event stream")
            raise BackendError(f"{redact(url)} refused the event stream: {error}")
        raise BackendError(f"{redact(url)} is not an event stream (it answered {kind!r})")
    return EventStreamChannel(url, client, stream, send_url)


class RunSseChannel:
    """`POST /run_sse` per frame up; each run's events come down, then `RUN_END`.

    Runs go one at a time, as a conversation's turns do. A run the server refuses or
    fails is reported (its error, then `RUN_END`) and the next turn goes on. The channel
    closes (1006) only when the server cannot be reached or has lost the session, so the
    backend reconnects, which creates the session again, and repeats the turn.
    """

    subprotocol: str | None = None

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._client = client
        self._down: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._runs: asyncio.Queue[Frame] = asyncio.Queue()
        self._runner = asyncio.create_task(self._run_each(), name="run-sse")
        self.close_code: int | None = None
        self.close_reason = ""

    async def frames(self) -> AsyncIterator[Frame]:
        while (frame := await self._down.get()) is not None:
            yield frame

    async def send(self, frame: Frame) -> None:
        if self._runner.done():
            raise ChannelClosed
        self._runs.put_nowait(frame)

    async def _run_each(self) -> None:
        while True:
            lost = await self._run(await self._runs.get())
            if lost is not None:
                self.close_code, self.close_reason = ABNORMAL_CLOSE, lost
                self._down.put_nowait(None)
                return
            self._down.put_nowait(RUN_END)

    async def _run(self, body: Frame) -> str | None:
        """Stream one run's events down; why the channel is lost, or None."""
        import httpx

        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        try:
            async with self._client.stream("POST", self._url, content=body, headers=headers) as r:
                if r.status_code >= 400:
                    error = _error_of(await r.aread(), r.status_code)
                    if r.status_code == 404 and error.startswith("Session not found"):
                        return "the server no longer has the session"
                    if r.status_code in (401, 403):
                        error = "the server refused the credentials: check --token or --header"
                    self._down.put_nowait(run_failure(f"HTTP {r.status_code}: {error}"))
                    return None
                async for data in _events_of(r):
                    self._down.put_nowait(data)
        except httpx.TransportError as exc:
            return redact(str(exc)) or type(exc).__name__
        except EventStreamError as exc:
            self._down.put_nowait(run_failure(str(exc)))
        return None

    async def close(self) -> None:
        await cancel_and_wait(self._runner)
        self._down.put_nowait(None)
        if self.close_code is None:
            self.close_code, self.close_reason = 1000, "closed by the client"
        await self._client.aclose()


async def open_run_sse(url: str, *, headers: dict[str, str]) -> RunSseChannel:
    """A channel for runs POSTed to `url` (the session already exists)."""
    return RunSseChannel(url, _http_client(headers))
