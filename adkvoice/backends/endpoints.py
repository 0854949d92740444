"""Where a `--url` points and how to talk there: the URL rules, the handshake, the codec.

An endpoint knows one kind of server and opens its `channels.Channel`; `RemoteBackend`
manages the connection for all.
- `SeedsEndpoint`: `adkvoice serve` or any server speaking the ADK streaming sample's
  `/ws/{session_id}` protocol; it offers the adkvoice.v1 extension and uses it when the
  server selects it (binary audio, richer events).
- `RunLiveEndpoint`: `adk api_server` / `adk web` at `/run_live?app_name=…`; the session
  is created over REST first.
- `BidiDemoEndpoint`: ADK's bidi-demo sample at `/ws/USER_ID/SESSION_ID`.
- `SeedsSseEndpoint`: the sample's SSE version at `http://…/events/SESSION_ID`.
- `RunSseEndpoint`: `adk api_server`'s `/run_sse`, a text run per typed turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from websockets.typing import Subprotocol

from adkvoice.backends.base import Capabilities
from adkvoice.backends.channels import Channel, open_event_stream, open_run_sse, open_websocket
from adkvoice.config import ProtocolChoice
from adkvoice.errors import BackendError, ConfigError, ConnectionLostError
from adkvoice.events import Modality
from adkvoice.live_options import LiveOptions, to_query
from adkvoice.redaction import redact
from adkvoice.store.sessions import new_session_id
from adkvoice.wire import adkvoice_v1, bidi_demo, run_live, run_sse, seeds
from adkvoice.wire.base import ClientCodec


def with_query(url: str, **params: str) -> str:
    """`url` with `params` added unless already present."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for key, value in params.items():
        query.setdefault(key, value)
    return urlunsplit(parts._replace(query=urlencode(query)))


Headers = tuple[tuple[str, str], ...]  # extra request headers (`--header`), in order


def auth_headers(token: str | None, headers: Headers = ()) -> dict[str, str]:
    """What a remote server is sent to let us in: `--header`s, and the token as a bearer
    `Authorization` unless a `--header` already sets one."""
    sent = dict(headers)
    if token and not any(name.lower() == "authorization" for name in sent):
        sent["Authorization"] = f"Bearer {token}"
    return sent


class Endpoint(Protocol):
    url: str  # as the user gave it; shown through `redact` (it may hold a password)

    @property
    def capabilities(self) -> Capabilities:
        """What the transport carries; where the handshake decides (adkvoice.v1 or the
        seeds' protocol), what the last connection's codec carries."""
        ...

    async def prepare(self) -> None:
        """Work before each connection attempt (creating the session over REST)."""
        ...

    async def open(self, headers: dict[str, str]) -> Channel:
        """A connection to the server, sending `headers` (`auth_headers`)."""
        ...

    def codec(self, subprotocol: str | None) -> ClientCodec:
        """The codec for a connection whose handshake chose `subprotocol`."""
        ...

    def description(self, codec: ClientCodec) -> str: ...

    def speak_instead_of_text(self) -> bool:
        """The server's model refused text replies: ask for speech from now on and take
        its transcript as the text reply. False where the transport cannot (the server
        then handles it, as `adkvoice serve` does)."""
        ...

    def notices(self) -> list[str]:
        """What the user should know up front about this transport (one line each)."""
        ...


def server_agent_query(
    live: LiveOptions | None, *, server: str, proactive: str, affective: str
) -> dict[str, str]:
    """A server that builds its agent's RunConfig itself takes only proactive audio and
    affective dialog, as query parameters named `proactive` and `affective`; asking it
    for any other session option is one clear line."""
    live = live or LiveOptions()
    if replace(live, proactive=False, affective=False).asked:
        raise ConfigError(
            f"{server} takes only --proactive and --affective of the session options; "
            "the server's agent sets its voice, language and detection"
        )
    wanted = ((proactive, live.proactive), (affective, live.affective))
    return {name: "true" for name, asked in wanted if asked}


class SeedsEndpoint:
    """`ws://HOST/ws/SESSION_ID`: the seeds' protocol, or adkvoice.v1 if offered back.
    `protocol` "seeds" never offers the extension; "adkvoice.v1" requires it. Images
    travel over adkvoice.v1 only: until a handshake has chosen it (or `protocol` requires
    it), the capabilities say no images."""

    _SEEDS = Capabilities(push_to_talk=False, tool_events=False, user_transcripts=False)
    _V1 = replace(_SEEDS, images=True)

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        live: LiveOptions | None = None,
        protocol: ProtocolChoice = "auto",
    ) -> None:
        self.url = url
        self._protocol = protocol
        self._is_audio = modality == "AUDIO"
        self._extended = protocol == "adkvoice.v1"  # what the last handshake chose
        # adkvoice serve takes the session options as query parameters; the ADK sample
        # ignores what it does not know.
        self._live_query = to_query(live or LiveOptions())

    def connect_url(self) -> str:
        return with_query(
            self.url, is_audio="true" if self._is_audio else "false", **self._live_query
        )

    def subprotocols(self) -> list[Subprotocol] | None:
        if self._protocol == "seeds":
            return None
        return [Subprotocol(adkvoice_v1.SUBPROTOCOL)]

    async def open(self, headers: dict[str, str]) -> Channel:
        return await open_websocket(
            self.url, self.connect_url(), subprotocols=self.subprotocols(), headers=headers
        )

    async def prepare(self) -> None:
        return None

    @property
    def capabilities(self) -> Capabilities:
        return self._V1 if self._extended else self._SEEDS

    def codec(self, subprotocol: str | None) -> ClientCodec:
        self._extended = subprotocol == adkvoice_v1.SUBPROTOCOL
        if self._extended:
            return adkvoice_v1.V1ClientCodec(is_audio=self._is_audio)
        if self._protocol == "adkvoice.v1":
            raise ConfigError(
                f"{redact(self.url)} does not speak adkvoice.v1 (it answered in the ADK "
                "sample's protocol): drop --protocol, or use --protocol seeds"
            )
        return seeds.SeedsClientCodec(is_audio=self._is_audio)

    def description(self, codec: ClientCodec) -> str:
        return f"{redact(self.url)} · {codec.name}"

    def speak_instead_of_text(self) -> bool:
        return False

    def notices(self) -> list[str]:
        return []


class RunLiveEndpoint:
    """`ws://HOST/run_live?app_name=…&user_id=…&session_id=…` (`adk api_server`, `adk web`)."""

    # ADK's /run_live builds its own RunConfig with the model's voice detection on, and no
    # query parameter turns it off: the model refuses activity signals then (1007).
    capabilities = Capabilities(
        push_to_talk=False, tool_events=True, user_transcripts=True, usage=True, images=True
    )

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        token: str | None,
        headers: Headers = (),
        live: LiveOptions | None = None,
    ) -> None:
        self._session = AdkApiSession.from_url(url, "run_live", auth_headers(token, headers))
        self._live_query = server_agent_query(
            live,
            server="ADK's /run_live",
            proactive="proactive_audio",
            affective="enable_affective_dialog",
        )
        self.url = url
        self.session_id = self._session.session_id
        self._modality = modality
        self._speech_as_text = False
        self._resumption_asked = "enable_session_resumption" in parse_qs(urlsplit(url).query)

    def connect_url(self) -> str:
        # Never enable_session_resumption: ADK turns either value into
        # `SessionResumptionConfig(transparent=…)`, and google-genai refuses any
        # `transparent` on the Gemini API (only Vertex AI takes it). Parameters in the URL
        # (save_live_blob, explicit_vad_signal, a resumption the user asks for) pass through.
        return with_query(
            self.url,
            user_id=self._session.user,
            session_id=self.session_id,
            modalities=self._modality,
            **self._live_query,
        )

    def subprotocols(self) -> list[Subprotocol] | None:
        return None

    async def open(self, headers: dict[str, str]) -> Channel:
        return await open_websocket(
            self.url, self.connect_url(), subprotocols=None, headers=headers
        )

    def codec(self, subprotocol: str | None) -> ClientCodec:
        return run_live.RunLiveClientCodec(speech_as_text=self._speech_as_text)

    def description(self, codec: ClientCodec) -> str:
        return f"{redact(self.url)} · {codec.name} · session {self.session_id}"

    def speak_instead_of_text(self) -> bool:
        if self._modality != "TEXT" or self._speech_as_text:
            return False
        self._modality = "AUDIO"
        self._speech_as_text = True
        return True

    def notices(self) -> list[str]:
        if not self._resumption_asked:
            return []
        return [
            "enable_session_resumption (true or false) sets transparent resumption, which "
            "only Vertex AI takes: a server on the Gemini API ends the session (close 1011)"
        ]

    async def prepare(self) -> None:
        await self._session.ensure()


def http_base(url: str) -> str:
    """`scheme://host:port` of `url`, over HTTP(S) (a ws:// URL's REST side)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme in ("wss", "https") else "http"
    return f"{scheme}://{parts.netloc}"


@dataclass(frozen=True)
class AdkApiSession:
    """The session an `adk api_server` URL names (`?app_name=…&user_id=…&session_id=…`;
    the user defaults to "user", a missing session id is made up), on the server at
    `base`, reached with `headers`."""

    base: str
    app: str
    user: str
    session_id: str
    headers: dict[str, str]

    @classmethod
    def from_url(cls, url: str, route: str, headers: dict[str, str]) -> AdkApiSession:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        if not query.get("app_name"):
            raise ConfigError(
                f"--url …/{route} needs ?app_name=<agent folder name> (user_id and "
                "session_id are optional)"
            )
        return cls(
            base=http_base(url),
            app=query["app_name"],
            user=query.get("user_id") or "user",
            session_id=query.get("session_id") or new_session_id(),
            headers=headers,
        )

    async def ensure(self) -> None:
        """`adk api_server` runs only sessions that exist: create this one unless it does."""
        import httpx

        path = f"/apps/{self.app}/users/{self.user}/sessions"
        shown = redact(self.base)
        try:
            async with httpx.AsyncClient(
                base_url=self.base, headers=self.headers, timeout=10
            ) as http:
                found = await http.get(f"{path}/{self.session_id}")
                if found.status_code == 200:
                    return
                created = await http.post(path, json={"session_id": self.session_id})
        except httpx.HTTPError as exc:
            raise ConnectionLostError(f"cannot reach {shown}: {exc}") from None
        if created.status_code in (401, 403):
            raise ConfigError(
                f"{shown} refused the credentials (HTTP {created.status_code}): check "
                "--token or --header"
            )
        if created.status_code == 404:
            raise ConfigError(f"{shown} has no agent named {self.app!r} (check app_name)")
        if created.status_code >= 400:
            raise BackendError(
                f"{shown} refused to create session {self.session_id} (HTTP {created.status_code})"
            )


# bidi-demo's route is /ws/{user_id}/{session_id}; a proxy may put a prefix before it.
_BIDI_PATH = re.compile(r"/ws/([^/]+)/([^/]+)/?$")
_LAST_TWO = re.compile(r"/([^/]+)/([^/]+)/?$")


class BidiDemoEndpoint:
    """`ws://HOST/ws/USER_ID/SESSION_ID` (ADK's bidi-demo sample, see `wire.bidi_demo`)."""

    # The demo's protocol has no activity signals; it sends every ADK Event (tool calls,
    # transcripts when its model speaks, usage) and takes images.
    capabilities = Capabilities(
        push_to_talk=False, tool_events=True, user_transcripts=True, usage=True, images=True
    )

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        live: LiveOptions | None = None,
        any_path: bool = False,
    ) -> None:
        path = urlsplit(url).path
        match = (_LAST_TWO if any_path else _BIDI_PATH).search(path)
        if match is None:
            raise ConfigError(
                f"bidi-demo needs a URL ending in /ws/USER_ID/SESSION_ID, not {redact(url)!r}"
            )
        self._live_query = server_agent_query(
            live, server="bidi-demo", proactive="proactivity", affective="affective_dialog"
        )
        self.url = url
        self.user_id, self.session_id = match.group(1), match.group(2)
        # The server picks the modality from its model's name; a text client takes the
        # transcript as the reply if the server speaks (a text server sends none).
        self._text = modality == "TEXT"

    def connect_url(self) -> str:
        return with_query(self.url, **self._live_query)

    def subprotocols(self) -> list[Subprotocol] | None:
        return None

    async def open(self, headers: dict[str, str]) -> Channel:
        return await open_websocket(
            self.url, self.connect_url(), subprotocols=None, headers=headers
        )

    async def prepare(self) -> None:
        return None  # the server creates the session on connect

    def codec(self, subprotocol: str | None) -> ClientCodec:
        return bidi_demo.BidiDemoClientCodec(speech_as_text=self._text)

    def description(self, codec: ClientCodec) -> str:
        return (
            f"{redact(self.url)} · {codec.name} · user {self.user_id} · session {self.session_id}"
        )

    def speak_instead_of_text(self) -> bool:
        return False  # the server, not the client, picks the modality

    def notices(self) -> list[str]:
        if not self._text:
            return []
        return [
            "bidi-demo picks the reply modality by its model: a native-audio model answers in "
            "audio only, and its transcript is shown as the text reply"
        ]


# The SSE sample's routes are /events/{id} and /send/{id}; a proxy may put a prefix before.
_EVENTS_PATH = re.compile(r"^(.*)/events/([^/]+)/?$")


class SeedsSseEndpoint:
    """`http://HOST/events/SESSION_ID`: the seeds' SSE version (`adkvoice serve`, or the
    sample itself): an event stream of the seeds' messages, and a POST to `/send/ID` for
    each message up. `is_audio` is asked for as on the WebSocket."""

    capabilities = Capabilities(push_to_talk=False, tool_events=False, user_transcripts=False)

    def __init__(self, url: str, *, modality: Modality, live: LiveOptions | None = None) -> None:
        parts = urlsplit(url)
        match = _EVENTS_PATH.match(parts.path)
        if match is None:
            raise ConfigError(
                f"the SSE sample's stream is at /events/SESSION_ID, not {redact(url)!r}"
            )
        self.url = url
        self.session_id = match.group(2)
        self._is_audio = modality == "AUDIO"
        self._live_query = to_query(live or LiveOptions())
        send_path = f"{match.group(1)}/send/{self.session_id}"
        # The token, if the URL carries one, goes to both routes (a page cannot send headers).
        token = parse_qs(parts.query).get("token")
        query = urlencode({"token": token[-1]}) if token else ""
        self._send_url = urlunsplit(parts._replace(path=send_path, query=query))

    def events_url(self) -> str:
        return with_query(
            self.url, is_audio="true" if self._is_audio else "false", **self._live_query
        )

    async def prepare(self) -> None:
        return None

    async def open(self, headers: dict[str, str]) -> Channel:
        return await open_event_stream(self.url, self.events_url(), self._send_url, headers=headers)

    def codec(self, subprotocol: str | None) -> ClientCodec:
        return seeds.SeedsClientCodec(is_audio=self._is_audio)

    def description(self, codec: ClientCodec) -> str:
        return f"{redact(self.url)} · ADK streaming sample over SSE"

    def speak_instead_of_text(self) -> bool:
        return False

    def notices(self) -> list[str]:
        return []


class RunSseEndpoint:
    """`http://HOST/run_sse?app_name=…` (`adk api_server`, `adk web`): one POST per typed
    turn, its answer streamed back (see `wire.run_sse`). Text only."""

    capabilities = Capabilities(
        push_to_talk=False, tool_events=True, user_transcripts=False, usage=True, audio=False
    )

    def __init__(
        self,
        url: str,
        *,
        modality: Modality,
        token: str | None,
        headers: Headers = (),
        live: LiveOptions | None = None,
    ) -> None:
        self._session = AdkApiSession.from_url(url, "run_sse", auth_headers(token, headers))
        if modality != "TEXT":
            raise ConfigError(
                "ADK's /run_sse answers typed turns in text only: use `adkvoice chat --text`, "
                "or …/run_live for speech"
            )
        if live is not None and live.asked:
            raise ConfigError(
                "ADK's /run_sse takes no live session options (voice, language, detection, "
                "proactive, affective): drop them, or use …/run_live"
            )
        self.url = url
        self.session_id = self._session.session_id
        self._run_url = urlunsplit(urlsplit(url)._replace(query=""))

    async def prepare(self) -> None:
        await self._session.ensure()

    async def open(self, headers: dict[str, str]) -> Channel:
        return await open_run_sse(self._run_url, headers=headers)

    def codec(self, subprotocol: str | None) -> ClientCodec:
        return run_sse.RunSseClientCodec(
            app_name=self._session.app, user_id=self._session.user, session_id=self.session_id
        )

    def description(self, codec: ClientCodec) -> str:
        return f"{redact(self.url)} · {codec.name} · session {self.session_id}"

    def speak_instead_of_text(self) -> bool:
        return False

    def notices(self) -> list[str]:
        return []


_HTTP_URL_FORMS = (
    "http://HOST:PORT/events/SESSION_ID (the ADK streaming sample's SSE version, or "
    "adkvoice serve) or http://HOST:PORT/run_sse?app_name=AGENT (adk api_server, text only)"
)
_URL_FORMS = (
    "ws://HOST:PORT/ws/SESSION_ID (adkvoice serve, the ADK streaming sample), "
    "ws://HOST:PORT/ws/USER_ID/SESSION_ID (ADK's bidi-demo), "
    f"ws://HOST:PORT/run_live?app_name=AGENT (adk api_server), {_HTTP_URL_FORMS}"
)
_OVER_HTTP = ("seeds-sse", "run_sse")


def endpoint_for(
    url: str,
    *,
    modality: Modality,
    token: str | None = None,
    headers: Headers = (),
    live: LiveOptions | None = None,
    protocol: ProtocolChoice = "auto",
) -> Endpoint:
    """The endpoint a `--url` names (`_URL_FORMS`); `protocol` forces one."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if parts.scheme in ("http", "https"):
        if protocol not in ("auto", *_OVER_HTTP):
            raise ConfigError(
                f"--protocol {protocol} is spoken over a WebSocket: give a ws:// or wss:// --url"
            )
        if protocol == "run_sse" or (protocol == "auto" and path.endswith("/run_sse")):
            return RunSseEndpoint(url, modality=modality, token=token, headers=headers, live=live)
        if protocol == "seeds-sse" or _EVENTS_PATH.match(parts.path):
            return SeedsSseEndpoint(url, modality=modality, live=live)
        raise ConfigError(f"an http:// --url must be {_HTTP_URL_FORMS}, not {redact(url)!r}")
    if parts.scheme not in ("ws", "wss"):
        # Quoted back without its password (ws://user:password@host is allowed).
        raise ConfigError(
            f"--url must start with ws://, wss://, http:// or https://, not {redact(url)!r}"
        )
    if protocol in _OVER_HTTP:
        raise ConfigError(
            f"--protocol {protocol} is spoken over HTTP: give an http:// or https:// --url"
        )
    if protocol == "run_live" or (protocol == "auto" and path.endswith("/run_live")):
        return RunLiveEndpoint(url, modality=modality, token=token, headers=headers, live=live)
    if protocol == "bidi" or (protocol == "auto" and _BIDI_PATH.search(parts.path)):
        return BidiDemoEndpoint(url, modality=modality, live=live, any_path=protocol == "bidi")
    if protocol == "auto" and "/ws/" not in parts.path:
        raise ConfigError(f"--url must name a session: {_URL_FORMS}")
    return SeedsEndpoint(url, modality=modality, live=live, protocol=protocol)
