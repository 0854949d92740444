"""Remote backend pieces that need no server: URLs and the backoff schedule."""

import random

import pytest

from adkvoice.backends.endpoints import RunLiveEndpoint, SeedsEndpoint
from adkvoice.backends.recovery import Backoff
from adkvoice.backends.remote import remote_backend
from adkvoice.errors import ConfigError


def test_backoff_grows_is_jittered_and_bounded() -> None:
    delays = list(
        Backoff(first_s=0.5, factor=2, max_s=4, jitter=0.25, attempts=6).delays(random.Random(7))
    )
    assert len(delays) == 6
    nominal = [0.5, 1, 2, 4, 4, 4]
    for got, want in zip(delays, nominal, strict=True):
        assert want * 0.75 <= got <= want * 1.25
    assert len(set(delays)) == 6  # jitter spreads clients that dropped together


def test_url_picks_the_protocol() -> None:
    assert isinstance(remote_backend("ws://h:1/ws/abc", modality="TEXT").endpoint, SeedsEndpoint)
    live = remote_backend("ws://h:1/run_live?app_name=my_agent", modality="AUDIO").endpoint
    assert isinstance(live, RunLiveEndpoint)
    assert "modalities=AUDIO" in live.connect_url()
    assert "session_id=adkvoice-" in live.connect_url()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://h:1/ws/abc", "ws://, wss://, http:// or https://"),
        ("http://h:1/ws/abc", "an http:// --url must be http://HOST:PORT/events"),
        ("ws://h:1/", "must name a session"),
        ("ws://h:1/run_live", "app_name"),
        ("http://h:1/run_sse", "app_name"),
    ],
)
def test_bad_urls_are_one_clear_line(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        remote_backend(url, modality="TEXT")


def test_seeds_url_gets_is_audio_from_the_modality() -> None:
    assert SeedsEndpoint("ws://h/ws/a", modality="AUDIO").connect_url().endswith("is_audio=true")
    kept = SeedsEndpoint("ws://h/ws/a?is_audio=false&x=1", modality="AUDIO").connect_url()
    assert "is_audio=false" in kept


def test_capabilities_are_known_before_connecting() -> None:
    assert not remote_backend("ws://h:1/ws/abc", modality="AUDIO").capabilities.push_to_talk
    live = remote_backend("ws://h:1/run_live?app_name=a", modality="AUDIO")
    assert not live.capabilities.push_to_talk  # ADK's run_live keeps the model's VAD on
    assert live.capabilities.tool_events


def test_protocol_forces_the_transport() -> None:
    """--protocol: the URL's path no longer decides (a server behind a path prefix)."""
    proxied = remote_backend(
        "wss://h/agents/voice/live?app_name=a", modality="TEXT", protocol="run_live"
    )
    assert isinstance(proxied.endpoint, RunLiveEndpoint)
    plain = remote_backend("ws://h/voice/socket", modality="TEXT", protocol="seeds").endpoint
    assert isinstance(plain, SeedsEndpoint)
    assert plain.subprotocols() is None  # the extension is never offered
    assert plain.codec(None).name == "seeds protocol"
    offered = remote_backend("ws://h/ws/a", modality="TEXT", protocol="adkvoice.v1").endpoint
    assert offered.subprotocols() == ["adkvoice.v1"]
    assert offered.codec("adkvoice.v1").name == "adkvoice.v1"
    with pytest.raises(ConfigError, match=r"does not speak adkvoice\.v1"):
        offered.codec(None)  # the server answered in the sample's protocol
