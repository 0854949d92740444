"""Images over the transports that carry them: each codec's image message (golden, and
read back by the server's decoder), what each endpoint's capabilities say, and how the
remote backend sends, refuses and holds images."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adkvoice.backends.base import Capabilities
from adkvoice.backends.channels import Channel, ChannelClosed
from adkvoice.backends.embedded import EmbeddedBackend
from adkvoice.backends.endpoints import (
    BidiDemoEndpoint,
    RunLiveEndpoint,
    RunSseEndpoint,
    SeedsEndpoint,
    SeedsSseEndpoint,
)
from adkvoice.backends.recovery import Backoff
from adkvoice.backends.remote import RemoteBackend
from adkvoice.errors import ConfigError
from adkvoice.server.options import ServeOptions
from adkvoice.wire import adkvoice_v1, bidi_demo, run_live, run_sse, seeds
from adkvoice.wire.base import IMAGE_TYPES, Frame, FrameError, ImageInput

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\x00\x01"
JPEG_B64 = base64.b64encode(JPEG).decode("ascii")

images = st.binary(min_size=1, max_size=256)
mimes = st.sampled_from(IMAGE_TYPES)


# ------------------------------------------------------------------------------ codecs


def test_adkvoice_v1_image_golden() -> None:
    codec = adkvoice_v1.V1ClientCodec(is_audio=False)
    frame = codec.encode_image(JPEG, "image/jpeg")
    assert frame == '{"type": "image", "mime_type": "image/jpeg", "data": "' + JPEG_B64 + '"}'
    decoded = adkvoice_v1.decode_client_frame(frame, extended=True)
    assert decoded == ImageInput(data=JPEG, mime_type="image/jpeg")
    # A browser's JSON.stringify (no spaces); mime_type defaults to JPEG.
    browser = '{"type":"image","data":"' + JPEG_B64 + '"}'
    assert adkvoice_v1.decode_client_frame(browser, extended=True) == ImageInput(JPEG, "image/jpeg")


def test_bidi_demo_image_golden() -> None:
    frame = bidi_demo.BidiDemoClientCodec().encode_image(JPEG, "image/png")
    assert frame == '{"type": "image", "data": "' + JPEG_B64 + '", "mimeType": "image/png"}'
    assert bidi_demo.decode_client_frame(frame) == ImageInput(JPEG, "image/png")


def test_run_live_image_is_an_adk_live_request_blob() -> None:
    from google.adk.agents.live_request_queue import LiveRequest

    frame = run_live.RunLiveClientCodec().encode_image(JPEG, "image/jpeg")
    assert frame == '{"blob": {"mime_type": "image/jpeg", "data": "' + JPEG_B64 + '"}}'
    assert isinstance(frame, str)
    request = LiveRequest.model_validate_json(frame)  # what ADK's /run_live does with it
    assert request.blob is not None
    assert request.blob.data == JPEG
    assert request.blob.mime_type == "image/jpeg"
    assert request.content is None


def test_transports_without_images_encode_none() -> None:
    assert seeds.SeedsClientCodec(is_audio=True).encode_image(JPEG, "image/jpeg") is None
    codec = run_sse.RunSseClientCodec(app_name="a", user_id="u", session_id="s")
    assert codec.encode_image(JPEG, "image/jpeg") is None


@given(images, mimes)
def test_image_round_trips(data: bytes, mime: str) -> None:
    v1 = adkvoice_v1.V1ClientCodec(is_audio=True).encode_image(data, mime)
    assert v1 is not None
    assert adkvoice_v1.decode_client_frame(v1, extended=True) == ImageInput(data, mime)
    bidi = bidi_demo.BidiDemoClientCodec().encode_image(data, mime)
    assert bidi is not None
    assert bidi_demo.decode_client_frame(bidi) == ImageInput(data, mime)


BAD_IMAGES = [
    ('{"type": "image", "mime_type": "image/gif", "data": "AAAA"}', True, "unsupported_mime_type"),
    ('{"type": "image", "mime_type": 3, "data": "AAAA"}', True, "unsupported_mime_type"),
    ('{"type": "image", "data": ""}', True, "invalid_message"),
    ('{"type": "image", "data": "***"}', True, "invalid_base64"),
    ('{"type": "image"}', True, "invalid_message"),
    # Not on a seeds connection: it names the subprotocol that carries images.
    (
        '{"type": "image", "mime_type": "image/jpeg", "data": "AAAA"}',
        False,
        "extension_not_enabled",
    ),
    ('{"mime_type": "image/jpeg", "data": "AAAA"}', False, "unsupported_mime_type"),
]


@pytest.mark.parametrize(("frame", "extended", "code"), BAD_IMAGES)
def test_bad_image_frames(frame: str, extended: bool, code: str) -> None:
    with pytest.raises(FrameError) as raised:
        adkvoice_v1.decode_client_frame(frame, extended=extended)
    assert raised.value.code == code


def test_the_hello_announces_the_image_limits() -> None:
    limits = ServeOptions(max_image_bytes=1000, images_per_s=0.5, image_burst=3).limits()
    assert (limits["max_image_bytes"], limits["images_per_s"], limits["image_burst"]) == (
        1000,
        0.5,
        3,
    )


# ------------------------------------------------------------------------ capabilities


def test_capabilities_say_which_transports_carry_images() -> None:
    assert EmbeddedBackend.capabilities.images
    assert RunLiveEndpoint(
        "ws://h/run_live?app_name=a", modality="TEXT", token=None
    ).capabilities.images
    assert BidiDemoEndpoint("ws://h/ws/u/s", modality="TEXT").capabilities.images
    assert not SeedsSseEndpoint("http://h/events/s", modality="TEXT").capabilities.images
    runs = RunSseEndpoint("http://h/run_sse?app_name=a", modality="TEXT", token=None)
    assert not runs.capabilities.images
    assert (
        Capabilities(push_to_talk=False, tool_events=False, user_transcripts=False).images is False
    )


def test_seeds_endpoint_carries_images_once_the_handshake_chose_adkvoice_v1() -> None:
    auto = SeedsEndpoint("ws://h/ws/s", modality="TEXT")
    assert not auto.capabilities.images  # not known before connecting
    auto.codec(adkvoice_v1.SUBPROTOCOL)
    assert auto.capabilities.images
    auto.codec(None)  # a reconnect that landed on a seeds server
    assert not auto.capabilities.images
    assert SeedsEndpoint("ws://h/ws/s", modality="TEXT", protocol="adkvoice.v1").capabilities.images
    assert not SeedsEndpoint("ws://h/ws/s", modality="TEXT", protocol="seeds").capabilities.images


# ------------------------------------------------------------------------- the backend


class FakeChannel:
    """A channel that records what is sent, until `drop()`."""

    def __init__(self, subprotocol: str | None) -> None:
        self.subprotocol = subprotocol
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent: list[Frame] = []
        self._dropped = asyncio.Event()

    async def frames(self) -> AsyncIterator[Frame]:
        await self._dropped.wait()
        self.close_code = 1006
        return
        yield  # an async generator

    async def send(self, frame: Frame) -> None:
        if self._dropped.is_set():
            raise ChannelClosed("gone")
        self.sent.append(frame)

    def drop(self) -> None:
        self._dropped.set()

    async def close(self) -> None:
        self._dropped.set()


class FakeEndpoint(SeedsEndpoint):
    """Opens the fake channels in `channels`, the second only once `allow` is set."""

    def __init__(self, subprotocol: str | None) -> None:
        super().__init__("ws://h/ws/s", modality="TEXT")
        self.channels = [FakeChannel(subprotocol), FakeChannel(subprotocol)]
        self.opened = 0
        self.allow = asyncio.Event()

    async def open(self, headers: dict[str, str]) -> Channel:
        if self.opened:
            await self.allow.wait()
        self.opened += 1
        return self.channels[self.opened - 1]


def image_frames(channel: FakeChannel) -> list[bytes]:
    out = []
    for frame in channel.sent:
        if isinstance(frame, str) and '"image"' in frame:
            out.append(base64.b64decode(json.loads(frame)["data"]))
    return out


async def test_remote_backend_sends_images_over_adkvoice_v1() -> None:
    endpoint = FakeEndpoint(adkvoice_v1.SUBPROTOCOL)
    backend = RemoteBackend(endpoint, backoff=Backoff(first_s=0.01, max_s=0.01, attempts=3))
    await backend.start()
    try:
        assert backend.capabilities.images
        await backend.send_image(b"first", "image/jpeg")
        assert image_frames(endpoint.channels[0]) == [b"first"]
        # Disconnected: only the newest image is kept, and sent after the reconnect (after
        # what else was held).
        endpoint.channels[0].drop()
        for picture in (b"older", b"old", b"newest"):
            await backend.send_image(picture, "image/jpeg")
        await backend.send_text("and this?")
        endpoint.allow.set()
        async with asyncio.timeout(5):
            while len(endpoint.channels[1].sent) < 2:  # noqa: ASYNC110 - a fake's list
                await asyncio.sleep(0.01)
        assert image_frames(endpoint.channels[1]) == [b"newest"]
        assert '"and this?"' in str(endpoint.channels[1].sent[0])
    finally:
        await backend.close()


async def test_the_last_image_is_shown_again_after_a_reconnect() -> None:
    """The server's new model connection may not have the picture: it is sent again."""
    endpoint = FakeEndpoint(adkvoice_v1.SUBPROTOCOL)
    backend = RemoteBackend(endpoint, backoff=Backoff(first_s=0.01, max_s=0.01, attempts=3))
    await backend.start()
    try:
        await backend.send_image(b"shown", "image/png")
        endpoint.channels[0].drop()
        endpoint.allow.set()
        async with asyncio.timeout(5):
            while not endpoint.channels[1].sent:  # noqa: ASYNC110 - a fake's list
                await asyncio.sleep(0.01)
        assert image_frames(endpoint.channels[1]) == [b"shown"]
        assert '"image/png"' in str(endpoint.channels[1].sent[0])
    finally:
        await backend.close()


async def test_remote_backend_refuses_images_where_the_transport_has_none() -> None:
    endpoint = FakeEndpoint(None)  # a seeds server: no subprotocol
    backend = RemoteBackend(endpoint)
    await backend.start()
    try:
        assert not backend.capabilities.images
        with pytest.raises(ConfigError, match="carries no images"):
            await backend.send_image(JPEG, "image/jpeg")
        assert endpoint.channels[0].sent == []
    finally:
        await backend.close()
