"""The REST side of the emulator: `models/{model}:streamGenerateContent?alt=sse` and
`models/{model}:generateContent`, on the same TLS port as the Live WebSocket.

ADK's `Runner.run_async` with `RunConfig(streaming_mode=StreamingMode.SSE)` does not use
the Live WebSocket: google-genai's `aio.models.generate_content_stream` POSTs to
``{GOOGLE_GEMINI_BASE_URL}/v1beta/models/{model}:streamGenerateContent?alt=sse`` (see
`google.genai.models.AsyncModels._generate_content_stream` and
`BaseApiClient._build_request`) and reads the body line by line, taking every
``data: {json}`` line, terminated by a blank line, as one `GenerateContentResponse`
(`HttpResponse._aiter_response_stream`). A 4xx/5xx status with a JSON
``{"error": {...}}`` body becomes `google.genai.errors.APIError`.

One port serves both APIs so `GOOGLE_GEMINI_BASE_URL` covers both. websockets' own
handshake parser only takes `GET` without a body, so its `process_request` hook cannot
answer a POST; instead `SniffingProtocol` (the asyncio protocol of the listening socket)
reads the request line: `GET` goes to a websockets `ServerConnection` (built exactly as
`websockets.asyncio.server.serve` builds one, attached with the documented
`Server.wrap` pattern), anything else is answered here with h11.

Replies follow the same rules file as the Live API. The REST API is stateless: each
request carries the whole conversation in `contents`, so the reply is a pure function of
the request (`plan_reply`): the last user text picks the rule; a rule that calls a
declared function answers with a `functionCall` part; the follow-up request that ends
with the `functionResponse` gets the rule's `say` rendered with `{result}`. Any model
name is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast
from urllib.parse import parse_qs, urlsplit

import h11
from websockets.asyncio.server import Server, ServerConnection
from websockets.extensions.permessage_deflate import enable_server_permessage_deflate
from websockets.server import ServerProtocol

from adkvoice.errors import ProtocolError

from .client_messages import JsonObject
from .context import estimate_tokens
from .faults import Fault, FaultController, seconds_of
from .rules import Rules, TemplateContext, match_groups, render
from .speaking import TEXT_WORDS_PER_CHUNK, word_groups
from .stats import EmulatorStats

log = logging.getLogger(__name__)

PATH_RE = re.compile(
    r"^/+(?P<version>v1alpha|v1beta|v1)/+models/(?P<model>[^/:]+):(?P<method>"
    r"streamGenerateContent|generateContent)/*$"
)
MAX_HEADER_BYTES = 64 * 1024
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "INVALID_ARGUMENT", 500: "INTERNAL"}


# --------------------------------------------------------------------------- request model


@dataclass(frozen=True)
class RestContent:
    role: str
    text: str = ""
    calls: tuple[tuple[str, JsonObject], ...] = ()  # functionCall (name, args)
    responses: tuple[tuple[str, Any], ...] = ()  # functionResponse (name, response)


@dataclass(frozen=True)
class GenerateRequest:
    model: str
    stream: bool
    contents: tuple[RestContent, ...]
    system_instruction: str = ""
    function_names: tuple[str, ...] = ()


def _get(obj: Mapping[str, Any], snake: str) -> Any:
    if snake in obj:
        return obj[snake]
    head, *rest = snake.split("_")
    return obj.get(head + "".join(word.title() for word in rest))


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ProtocolError(f"{where} must be a JSON object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be a JSON array")
    return value


def _texts(content: Mapping[str, Any], where: str) -> str:
    out = []
    for i, part in enumerate(_list(_get(content, "parts"), f"{where}.parts")):
        text = _get(_obj(part, f"{where}.parts[{i}]"), "text")
        if isinstance(text, str) and not _get(part, "thought"):
            out.append(text)
    return "".join(out)


def _content(raw: Any, where: str) -> RestContent:
    content = _obj(raw, where)
    role = _get(content, "role") or "user"
    if not isinstance(role, str):
        raise ProtocolError(f"{where}.role must be a string")
    calls: list[tuple[str, JsonObject]] = []
    responses: list[tuple[str, Any]] = []
    for i, part in enumerate(_list(_get(content, "parts"), f"{where}.parts")):
        part = _obj(part, f"{where}.parts[{i}]")
        if (call := _get(part, "function_call")) is not None:
            call = _obj(call, f"{where}.parts[{i}].functionCall")
            calls.append((str(call.get("name", "")), dict(_obj(call.get("args"), "args"))))
        if (resp := _get(part, "function_response")) is not None:
            resp = _obj(resp, f"{where}.parts[{i}].functionResponse")
            responses.append((str(resp.get("name", "")), resp.get("response")))
    return RestContent(
        role=role, text=_texts(content, where), calls=tuple(calls), responses=tuple(responses)
    )


def decode_generate_request(model: str, stream: bool, body: bytes) -> GenerateRequest:
    """Decode a generateContent request body; raise ProtocolError saying what is wrong."""
    try:
        obj = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("request body must be a JSON object with `contents`")
    contents = tuple(
        _content(raw, f"contents[{i}]")
        for i, raw in enumerate(_list(_get(obj, "contents"), "contents"))
    )
    if not contents:
        raise ProtocolError("contents is empty: send at least one user turn")
    system = _get(obj, "system_instruction")
    names: list[str] = []
    for i, tool in enumerate(_list(_get(obj, "tools"), "tools")):
        for decl in _list(_get(_obj(tool, f"tools[{i}]"), "function_declarations"), "decls"):
            name = _get(_obj(decl, f"tools[{i}].functionDeclarations[]"), "name")
            if isinstance(name, str) and name:
                names.append(name)
    return GenerateRequest(
        model=model,
        stream=stream,
        contents=contents,
        system_instruction=_texts(_obj(system, "systemInstruction"), "systemInstruction")
        if system is not None
        else "",
        function_names=tuple(names),
    )


# ---------------------------------------------------------------------------- reply planning


@dataclass(frozen=True)
class TextReply:
    text: str


@dataclass(frozen=True)
class CallReply:
    name: str
    args: JsonObject


Reply = TextReply | CallReply


def _user_texts(contents: tuple[RestContent, ...]) -> list[str]:
    return [c.text for c in contents if c.role == "user" and c.text and not c.responses]


def plan_reply(request: GenerateRequest, rules: Rules) -> tuple[Reply, str]:
    """What to answer, and the user text that decided it (stateless, by the rules)."""
    users = _user_texts(request.contents)
    text = users[-1] if users else ""
    ctx = TemplateContext(
        text=text,
        previous=users[-2] if len(users) >= 2 else "nothing yet",
        turn=len(users),
        model=request.model,
    )
    rule = rules.match(text)
    ctx = replace(ctx, groups=match_groups(rule, text))
    last = request.contents[-1]
    if last.responses:
        name, result = last.responses[-1]
        ctx = replace(ctx, result=result, has_result=True)
        # One REST reply carries every segment of a multi-turn Live reply.
        say = (
            " ".join(rule.segments)
            if rule.call == name and rule.segments
            else f"The {name} tool returned {{result}}."
        )
        return TextReply(render(say, ctx)), text
    if rule.call is not None:
        if rule.call in request.function_names:
            args = {k: render(v, ctx) if isinstance(v, str) else v for k, v in rule.args.items()}
            return CallReply(rule.call, args), text
        return TextReply(
            f"I would call the {rule.call} tool for that, but this agent does not declare it."
        ), text
    return TextReply(render(" ".join(rule.segments) or rules.fallback, ctx)), text


def _usage(request: GenerateRequest, reply: str) -> JsonObject:
    prompt = estimate_tokens(
        " ".join([request.system_instruction, *(c.text for c in request.contents)])
    )
    response = estimate_tokens(reply)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": response,
        "totalTokenCount": prompt + response,
    }


def response_chunk(
    parts: list[JsonObject],
    *,
    model: str,
    finish: bool = False,
    usage: JsonObject | None = None,
) -> JsonObject:
    """One GenerateContentResponse in Gemini's REST JSON shape."""
    candidate: JsonObject = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    chunk: JsonObject = {"candidates": [candidate], "modelVersion": model}
    if usage is not None:
        chunk["usageMetadata"] = usage
    return chunk


def reply_chunks(request: GenerateRequest, reply: Reply) -> list[JsonObject]:
    """The response objects of a reply: text in word groups (one object when not streamed)."""
    if isinstance(reply, CallReply):
        part: JsonObject = {"functionCall": {"name": reply.name, "args": reply.args}}
        return [
            response_chunk(
                [part], model=request.model, finish=True, usage=_usage(request, reply.name)
            )
        ]
    groups = word_groups(reply.text, TEXT_WORDS_PER_CHUNK) or [reply.text]
    if not request.stream:
        groups = [reply.text]
    last = len(groups) - 1
    return [
        response_chunk(
            [{"text": group}],
            model=request.model,
            finish=i == last,
            usage=_usage(request, reply.text) if i == last else None,
        )
        for i, group in enumerate(groups)
    ]


def sse_event(obj: JsonObject) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n\r\n"


def error_body(code: int, message: str) -> bytes:
    status = _STATUS.get(code, "UNKNOWN")
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


# ------------------------------------------------------------------------------ connection


@dataclass
class RestOptions:
    rules: Rules
    faults: FaultController
    stats: EmulatorStats
    text_chunk_delay_s: float = 0.0
    think_time_s: float = 0.0
    max_body_bytes: int = 16 * 1024 * 1024
    open_timeout_s: float = 10.0  # a connection must send its request line this fast
    live: set[RestHandler] = field(default_factory=set)  # answering now; stop() aborts them
    sniffing: set[SniffingProtocol] = field(default_factory=set)  # no request line yet


class _Abort(Exception):
    """A fault dropped the connection mid-reply."""


class RestHandler:
    """Answers one HTTP request on a transport, then closes it (`Connection: close`)."""

    def __init__(self, transport: asyncio.Transport, options: RestOptions) -> None:
        self._transport = transport
        self._options = options
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._task: asyncio.Task[None] | None = None

    def feed(self, data: bytes) -> None:
        if self._task is not None:
            return  # one request per connection; anything pipelined is ignored
        self._h11.receive_data(data)
        try:
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.Request):
                    self._request = event
                elif isinstance(event, h11.Data):
                    self._body += event.data
                    if len(self._body) > self._options.max_body_bytes:
                        self._start(self._fail(413, "request body too large"))
                        return
                elif isinstance(event, h11.EndOfMessage):
                    self._start(self._answer())
                    return
                else:
                    return
        except h11.RemoteProtocolError as exc:
            self._start(self._fail(400, f"malformed HTTP request: {exc}"))

    def _start(self, coro: Any) -> None:
        self._options.live.add(self)
        self._task = asyncio.get_running_loop().create_task(self._guard(coro))

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except (_Abort, ConnectionError):
            self._transport.abort()
        except asyncio.CancelledError:
            self._transport.abort()
            raise
        except Exception:
            log.exception("emulator REST handler failed")
            self._transport.abort()
        finally:
            self._options.live.discard(self)

    def connection_lost(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._options.live.discard(self)

    def abort(self) -> None:
        self._transport.abort()

    # Writing -----------------------------------------------------------------------------
    def _write(self, event: Any) -> None:
        data = self._h11.send(event)
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def _respond(self, status: int, content_type: str, body: bytes | None = None) -> None:
        headers = [("content-type", content_type), ("connection", "close")]
        if body is not None:
            headers.append(("content-length", str(len(body))))
        self._write(h11.Response(status_code=status, headers=headers))
        if body is not None:
            self._write(h11.Data(data=body))
            self._finish()

    def _finish(self) -> None:
        self._write(h11.EndOfMessage())
        self._transport.close()

    async def _fail(self, status: int, message: str) -> None:
        self._options.stats.rest_errors += 1
        try:
            self._respond(status, "application/json; charset=UTF-8", error_body(status, message))
        except h11.LocalProtocolError:
            self._transport.abort()

    # Answering ---------------------------------------------------------------------------
    async def _answer(self) -> None:
        assert self._request is not None
        opts = self._options
        opts.stats.rest_requests += 1
        target = self._request.target.decode("latin-1")
        parts = urlsplit(target)
        match = PATH_RE.match(parts.path)
        if match is None:
            await self._fail(
                404,
                f"Unknown path {parts.path}; the emulator serves "
                "/v1beta/models/MODEL:streamGenerateContent?alt=sse and :generateContent",
            )
            return
        if self._request.method != b"POST":
            await self._fail(405, f"{match.group('method')} takes POST")
            return
        stream = match.group("method") == "streamGenerateContent"
        sse = parse_qs(parts.query).get("alt") == ["sse"]
        try:
            request = decode_generate_request(match.group("model"), stream, bytes(self._body))
        except ProtocolError as exc:
            await self._fail(400, str(exc))
            return
        reply, text = plan_reply(request, opts.rules)
        if not request.contents[-1].responses:  # a tool follow-up answers the same turn
            opts.stats.user_texts.append(text)
        if isinstance(reply, CallReply):
            opts.stats.rest_tool_calls += 1
            opts.stats.tool_calls_by_name[reply.name] += 1
        faults = opts.faults.take_for_turn()
        rule = opts.rules.match(text)
        if rule.fault is not None and not request.contents[-1].responses:
            faults.append(Fault.from_rule(rule))
        delay = opts.think_time_s + seconds_of(faults, "delay")
        if delay > 0:
            await asyncio.sleep(delay)
        kinds = {f.kind for f in faults}
        if "close-1011" in kinds:
            opts.stats.faults_fired.append("close-1011")
            await self._fail(500, "Internal error encountered.")
            return
        chunks = reply_chunks(request, reply)
        if not stream:
            self._respond(200, "application/json; charset=UTF-8", json.dumps(chunks[0]).encode())
            return
        self._respond(200, "text/event-stream" if sse else "application/json")
        if "malformed" in kinds:
            opts.stats.faults_fired.append("malformed")
            self._write(h11.Data(data=b'data: {"candidates": [\r\n\r\n'))
        slow_s = seconds_of(faults, "slow")
        if slow_s:
            opts.stats.faults_fired.append("slow")
        for i, chunk in enumerate(chunks):
            if slow_s:
                await asyncio.sleep(slow_s)
            self._write(h11.Data(data=sse_event(chunk)))
            if i == 0 and "drop" in kinds:
                opts.stats.faults_fired.append("drop")
                raise _Abort
            if opts.text_chunk_delay_s:
                await asyncio.sleep(opts.text_chunk_delay_s)
        self._finish()


@dataclass
class WebSocketFactory:
    """Builds the websockets connection for a `GET`, as `websockets.asyncio.server.serve`
    does with its default arguments."""

    server: Server
    max_size: int

    def __call__(self) -> ServerConnection:
        protocol = ServerProtocol(
            extensions=enable_server_permessage_deflate(None), max_size=self.max_size
        )
        return ServerConnection(protocol, self.server)


class SniffingProtocol(asyncio.Protocol):
    """Reads the request line, then hands the connection to websockets or to REST."""

    def __init__(self, websocket: Callable[[], ServerConnection], rest: RestOptions) -> None:
        self._websocket = websocket
        self._rest_options = rest
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._mode: Literal["sniff", "rest"] = "sniff"
        self._rest: RestHandler | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not an asyncio.Transport instance on every loop (uvloop's).
        self._transport = cast(asyncio.Transport, transport)
        self._rest_options.sniffing.add(self)
        # As websockets' open_timeout would: a silent connection does not stay forever.
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._rest_options.open_timeout_s, self.abort)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _decided(self) -> None:
        self._rest_options.sniffing.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        if self._mode == "rest":
            assert self._rest is not None
            self._rest.feed(data)
            return
        self._buffer += data
        head = bytes(self._buffer[:4])
        if len(head) < 4 and b"GET ".startswith(head):
            return  # not enough to tell yet
        buffered, self._buffer = bytes(self._buffer), bytearray()
        self._decided()
        if head == b"GET ":
            connection = self._websocket()
            self._transport.set_protocol(connection)
            connection.connection_made(self._transport)
            connection.data_received(buffered)
            return
        self._mode = "rest"
        self._rest = RestHandler(self._transport, self._rest_options)
        self._rest.feed(buffered)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._decided()
        if self._rest is not None:
            self._rest.connection_lost()


def abort_all(options: RestOptions) -> None:
    """End REST replies in flight and connections that never sent a request line."""
    for handler in list(options.live):
        with contextlib.suppress(Exception):
            handler.abort()
    for protocol in list(options.sniffing):
        with contextlib.suppress(Exception):
            protocol.abort()
