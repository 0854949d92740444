"""The HTTP transports a `--url` can name: the URL rules, the event-stream reader and the
/run_sse codec (pure; the channels themselves run in tests/integration)."""

from __future__ import annotations

import json

import pytest

from adkvoice.backends.endpoints import (
    RunSseEndpoint,
    SeedsEndpoint,
    SeedsSseEndpoint,
    endpoint_for,
)
from adkvoice.errors import ConfigError
from adkvoice.events import AgentText, ErrorEvent, ToolCall, TurnComplete
from adkvoice.live_options import LiveOptions
from adkvoice.wire.event_stream import EventStreamDecoder, EventStreamError
from adkvoice.wire.run_sse import RUN_END, RunSseClientCodec, run_request


# -- the event-stream reader ----------------------------------------------------------------
def test_events_split_on_blank_lines_whatever_the_line_ends() -> None:
    decoder = EventStreamDecoder()
    stream = (
        'data: {"a": 1}\n\n: keep-alive\r\n\r\ndata: x\r\ndata:y\r\rid: 7\nevent: m\ndata: z\n\n'
    )
    assert decoder.feed(stream) == ['{"a": 1}', "x\ny", "z"]


def test_events_cut_anywhere_come_out_whole() -> None:
    stream = 'data: {"mime_type": "text/plain", "data": "héllo"}\r\n\r\ndata: two\n\n'
    for cut in range(1, len(stream)):
        decoder = EventStreamDecoder()
        out = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert out == ['{"mime_type": "text/plain", "data": "héllo"}', "two"], cut


def test_an_event_without_data_is_no_event() -> None:
    assert EventStreamDecoder().feed(": comment\n\nevent: ping\n\n") == []


def test_an_endless_event_is_refused() -> None:
    decoder = EventStreamDecoder(max_event_chars=100)
    with pytest.raises(EventStreamError):
        decoder.feed("data: " + "x" * 200)
    decoder = EventStreamDecoder(max_event_chars=100)
    with pytest.raises(EventStreamError):
        decoder.feed(("data: " + "x" * 60 + "\n") * 2)


# -- /run_sse -----------------------------------------------------------------------------
def test_a_typed_turn_is_one_streaming_run_request() -> None:
    body = json.loads(run_request(app_name="a", user_id="u", session_id="s", text="hi"))
    assert body == {
        "app_name": "a",
        "user_id": "u",
        "session_id": "s",
        "new_message": {"role": "user", "parts": [{"text": "hi"}]},
        "streaming": True,
    }


def test_run_events_map_like_run_live_and_the_end_completes_the_answer() -> None:
    codec = RunSseClientCodec(app_name="a", user_id="u", session_id="s")
    partial = (
        '{"author":"agent","partial":true,"content":{"role":"model","parts":[{"text":"It "}]}}'
    )
    call = (
        '{"author":"agent","content":{"role":"model","parts":[{"functionCall":'
        '{"id":"c1","name":"get_current_time","args":{}}}]}}'
    )
    assert codec.decode(partial) == [AgentText(text="It ", partial=True)]
    (tool,) = codec.decode(call)
    assert isinstance(tool, ToolCall)
    assert tool.name == "get_current_time"
    (done,) = codec.decode(RUN_END)
    assert isinstance(done, TurnComplete)
    assert done.interaction == "idle"


def test_a_failed_run_is_an_error_event() -> None:
    codec = RunSseClientCodec(app_name="a", user_id="u", session_id="s")
    (error,) = codec.decode('{"error": "ValueError: no model", "error_details": {}}')
    assert isinstance(error, ErrorEvent)
    assert "ValueError: no model" in error.message
    # An event whose text says "error" is still an event.
    text = '{"author":"agent","content":{"parts":[{"text":"no \\"error\\" here"}]}}'
    assert codec.decode(text) == [AgentText(text='no "error" here', partial=False)]


# -- the URL rules --------------------------------------------------------------------------
def test_http_urls_pick_the_http_transports() -> None:
    sse = endpoint_for("http://h:1/events/abc", modality="AUDIO")
    assert isinstance(sse, SeedsSseEndpoint)
    assert sse.events_url() == "http://h:1/events/abc?is_audio=true"
    runs = endpoint_for("https://h/api/run_sse?app_name=x", modality="TEXT")
    assert isinstance(runs, RunSseEndpoint)
    assert runs.capabilities.audio is False
    forced = endpoint_for("http://h:1/events/abc", modality="TEXT", protocol="seeds-sse")
    assert isinstance(forced, SeedsSseEndpoint)
    assert isinstance(endpoint_for("ws://h:1/ws/abc", modality="TEXT"), SeedsEndpoint)


def test_the_sse_endpoint_posts_to_send_with_the_urls_token_only() -> None:
    sse = SeedsSseEndpoint("http://h:1/pre/events/abc?token=t&x=1", modality="TEXT")
    assert sse._send_url == "http://h:1/pre/send/abc?token=t"


@pytest.mark.parametrize(
    ("url", "kwargs", "words"),
    [
        ("http://h/run_sse?app_name=a", {"modality": "AUDIO"}, "text only"),
        (
            "http://h/run_sse?app_name=a",
            {"modality": "TEXT", "live": LiveOptions(voice="Puck")},
            "no live session options",
        ),
        ("http://h/ws/abc", {"modality": "TEXT", "protocol": "bidi"}, "over a WebSocket"),
        ("ws://h/ws/abc", {"modality": "TEXT", "protocol": "run_sse"}, "over HTTP"),
        ("http://h/x", {"modality": "TEXT", "protocol": "seeds-sse"}, "/events/SESSION_ID"),
    ],
)
def test_http_mistakes_are_one_clear_line(url: str, kwargs: dict, words: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=words):
        endpoint_for(url, **kwargs)


# -- /run_live's resumption ---------------------------------------------------------------
def test_run_live_never_asks_for_transparent_resumption() -> None:
    from adkvoice.backends.endpoints import RunLiveEndpoint

    plain = RunLiveEndpoint("ws://h/run_live?app_name=a", modality="TEXT", token=None)
    assert "enable_session_resumption" not in plain.connect_url()
    assert plain.notices() == []
    asked = RunLiveEndpoint(
        "ws://h/run_live?app_name=a&enable_session_resumption=false&save_live_blob=true",
        modality="TEXT",
        token=None,
    )
    url = asked.connect_url()
    assert "enable_session_resumption=false" in url
    assert "save_live_blob=true" in url
    (notice,) = asked.notices()
    assert "only Vertex AI takes" in notice


def test_a_failure_adk_reported_as_an_event_is_said_once() -> None:
    codec = RunSseClientCodec(app_name="a", user_id="u", session_id="s")
    (error,) = codec.decode('{"author":"agent","errorCode":"E","errorMessage":"peer closed"}')
    assert isinstance(error, ErrorEvent)
    assert codec.decode('{"error": "RemoteProtocolError: peer closed"}') == []
    codec.decode(RUN_END)
    assert len(codec.decode('{"error": "RemoteProtocolError: peer closed"}')) == 1


def test_a_streamed_tool_call_is_taken_once() -> None:
    codec = RunSseClientCodec(app_name="a", user_id="u", session_id="s")
    call = '{"functionCall":{"id":"c1","name":"t","args":{}}}'
    partial = '{"author":"agent","partial":true,"content":{"parts":[' + call + "]}}"
    whole = '{"author":"agent","content":{"parts":[' + call + "]}}"
    assert codec.decode(partial) == []
    assert [type(e) for e in codec.decode(whole)] == [ToolCall]
