"""Where a `--url` points and how to talk there: the URL rules, the handshake, the codec.

An endpoint knows one kind of server; `RemoteBackend` manages the connection for all.
- `SeedsEndpoint`: `adkvoice serve` or any server speaking the ADK streaming sample's
  `/ws/{session_id}` protocol; it offers the adkvoice.v1 extension and uses it when the
  server selects it (binary audio, richer events).
- `RunLiveEndpoint`: `adk api_server` / `adk web` at `/run_live?app_name=…`; the session
  is created over REST first.
- `BidiDemoEndpoint`: ADK's bidi-demo sample at `/ws/USER_ID/SESSION_ID`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from websockets.typing import Subprotocol

from adkvoice.backends.base import Capabilities
from adkvoice.errors import BackendError, ConfigError, ConnectionLostError
from adkvoice.events import Modality
from adkvoice.live_options import LiveOptions, to_query
from adkvoice.redaction import redact
from adkvoice.store.sessions import new_session_id
from adkvoice.wire import adkvoice_v1, bidi_demo, run_live, seeds
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
    capabilities: Capabilities

    def connect_url(self) -> str: ...

    def subprotocols(self) -> list[Subprotocol] | None: ...

    async def prepare(self) -> None:
        """Work before each connection attempt (creating the session over REST)."""
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


# `--protocol`: which transport a `--url` speaks; "auto" follows from the URL.
ProtocolChoice = Literal["auto", "seeds", "adkvoice.v1", "run_live", "bidi"]


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
    `protocol` "seeds" never offers the extension; "adkvoice.v1" requires it."""

    capabilities = Capabilities(push_to_talk=False, tool_events=False, user_transcripts=False)

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

    async def prepare(self) -> None:
        return None

    def codec(self, subprotocol: str | None) -> ClientCodec:
        if subprotocol == adkvoice_v1.SUBPROTOCOL:
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
        push_to_talk=False, tool_events=True, user_transcripts=True, usage=True
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
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        if not query.get("app_name"):
            raise ConfigError(
                "--url …/run_live needs ?app_name=<agent folder name> (user_id and "
                "session_id are optional)"
            )
        self._live_query = server_agent_query(
            live,
            server="ADK's /run_live",
            proactive="proactive_audio",
            affective="enable_affective_dialog",
        )
        self.url = url
        self._modality = modality
        self._speech_as_text = False
        self._token = token
        self._headers = headers
        self._app = query["app_name"]
        self._user = query.get("user_id") or "user"
        self.session_id = query.get("session_id") or new_session_id()

    def connect_url(self) -> str:
        return with_query(
            self.url,
            user_id=self._user,
            session_id=self.session_id,
            modalities=self._modality,
            **self._live_query,
        )

    def subprotocols(self) -> list[Subprotocol] | None:
        return None

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
        return []

    def _rest_base(self) -> str:
        parts = urlsplit(self.url)
        scheme = "https" if parts.scheme == "wss" else "http"
        return f"{scheme}://{parts.netloc}"

    async def prepare(self) -> None:
        """`adk api_server` needs the session to exist: create it unless it does."""
        import httpx

        base = self._rest_base()
        path = f"/apps/{self._app}/users/{self._user}/sessions"
        try:
            async with httpx.AsyncClient(
                base_url=base, headers=auth_headers(self._token, self._headers), timeout=10
            ) as http:
                found = await http.get(f"{path}/{self.session_id}")
                if found.status_code == 200:
                    return
                created = await http.post(path, json={"session_id": self.session_id})
        except httpx.HTTPError as exc:
            raise ConnectionLostError(f"cannot reach {base}: {exc}") from None
        if created.status_code == 404:
            raise ConfigError(f"{base} has no agent named {self._app!r} (check app_name)")
        if created.status_code >= 400:
            raise BackendError(
                f"{base} refused to create session {self.session_id} (HTTP {created.status_code})"
            )


# bidi-demo's route is /ws/{user_id}/{session_id}; a proxy may put a prefix before it.
_BIDI_PATH = re.compile(r"/ws/([^/]+)/([^/]+)/?$")
_LAST_TWO = re.compile(r"/([^/]+)/([^/]+)/?$")


class BidiDemoEndpoint:
    """`ws://HOST/ws/USER_ID/SESSION_ID` (ADK's bidi-demo sample, see `wire.bidi_demo`)."""

    # The demo's protocol has no activity signals; it sends every ADK Event (tool calls,
    # transcripts when its model speaks, usage).
    capabilities = Capabilities(
        push_to_talk=False, tool_events=True, user_transcripts=True, usage=True
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


def endpoint_for(
    url: str,
    *,
    modality: Modality,
    token: str | None = None,
    headers: Headers = (),
    live: LiveOptions | None = None,
    protocol: ProtocolChoice = "auto",
) -> Endpoint:
    """The endpoint a `--url` names: `/run_live` means ADK's api_server, `/ws/USER/SESSION`
    bidi-demo, `/ws/ID` the seeds' protocol."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        # Quoted back without its password (ws://user:password@host is allowed).
        raise ConfigError(f"--url must start with ws:// or wss://, not {redact(url)!r}")
    run_live = protocol == "run_live" or (
        protocol == "auto" and parts.path.rstrip("/").endswith("/run_live")
    )
    if run_live:
        return RunLiveEndpoint(url, modality=modality, token=token, headers=headers, live=live)
    if protocol == "bidi" or (protocol == "auto" and _BIDI_PATH.search(parts.path)):
        return BidiDemoEndpoint(url, modality=modality, live=live, any_path=protocol == "bidi")
    if protocol == "auto" and "/ws/" not in parts.path:
        raise ConfigError(
            "--url must name a session: ws://HOST:PORT/ws/SESSION_ID (adkvoice serve), "
            "ws://HOST:PORT/ws/USER_ID/SESSION_ID (ADK's bidi-demo) or "
            "ws://HOST:PORT/run_live?app_name=AGENT (adk api_server)"
        )
    return SeedsEndpoint(url, modality=modality, live=live, protocol=protocol)
