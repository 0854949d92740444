"""The emulator's Live API codec: golden frames from real google-genai code, round trips,
and bad input that must raise ProtocolError with a useful message."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google import genai
from google.genai import _common, live, types
from google.genai import _live_converters as live_converters
from hypothesis import given
from hypothesis import strategies as st

from adkvoice.emulator import client_messages as p
from adkvoice.emulator import frames
from adkvoice.emulator.client_encoding import encode_client_message
from adkvoice.errors import ProtocolError

# What google-genai 2.34 sends as `setup` for a fully configured LiveConnectConfig
# (captured from a real connection). Note the snake_case keys nested in
# realtimeInputConfig and historyConfig: genai does not convert those.
GOLDEN_SETUP = (
    '{"setup": {"model": "models/gemini-live-2.5-flash-preview", "generationConfig": '
    '{"responseModalities": ["AUDIO"]}, "systemInstruction": {"parts": [{"text": "Be brief."}], '
    '"role": "user"}, "tools": [{"functionDeclarations": [{"description": "time", "name": '
    '"get_current_time"}]}], "sessionResumption": {}, "inputAudioTranscription": {}, '
    '"outputAudioTranscription": {}, "realtimeInputConfig": {"automatic_activity_detection": '
    '{"disabled": true, "prefix_padding_ms": 60, "silence_duration_ms": 700}}, "historyConfig": '
    '{"initial_history_in_client_content": true}}}'
)


class CaptureWs:
    """Stands in for the WebSocket under a real genai AsyncSession; keeps what it sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, data: str) -> None:
        self.sent.append(data)


@pytest.fixture
def genai_session() -> tuple[live.AsyncSession, CaptureWs]:
    client = genai.Client(api_key="unit-test")
    ws = CaptureWs()
    session = live.AsyncSession(api_client=client._api_client, websocket=ws)  # type: ignore[arg-type]
    return session, ws


def test_golden_setup_decodes() -> None:
    setup = p.decode_client_message(GOLDEN_SETUP)
    assert setup == p.Setup(
        model="models/gemini-live-2.5-flash-preview",
        response_modality="AUDIO",
        system_instruction="Be brief.",
        function_names=("get_current_time",),
        input_transcription=True,
        output_transcription=True,
        activity_detection=p.ActivityDetection(
            disabled=True, silence_duration_ms=700, prefix_padding_ms=60
        ),
        resumption=True,
        resume_handle=None,
        initial_history_in_client_content=True,
    )
    assert isinstance(setup, p.Setup)
    assert setup.model_id == "gemini-live-2.5-flash-preview"


def genai_setup_json(config: types.LiveConnectConfig) -> str:
    """The setup frame google-genai's live.connect builds for `config` (same converters)."""
    client = genai.Client(api_key="unit-test")
    params = types.LiveConnectParameters(
        model="models/gemini-live-2.5-flash-preview", config=config
    )
    request = _common.convert_to_dict(
        live_converters._LiveConnectParameters_to_mldev(
            api_client=client._api_client, from_object=params.model_dump(exclude_none=True)
        )
    )
    del request["config"]
    return json.dumps(request)


@pytest.mark.parametrize(
    ("compression", "expected"),
    [
        (
            types.ContextWindowCompressionConfig(
                trigger_tokens=1000, sliding_window=types.SlidingWindow(target_tokens=300)
            ),
            p.SlidingWindow(1000, 300),
        ),
        (
            types.ContextWindowCompressionConfig(
                trigger_tokens=1000, sliding_window=types.SlidingWindow()
            ),
            p.SlidingWindow(1000, 500),  # documented: target defaults to trigger / 2
        ),
        (
            # documented: trigger defaults to 80 % of the 128k context window
            types.ContextWindowCompressionConfig(sliding_window=types.SlidingWindow()),
            p.SlidingWindow(104_857, 52_428),
        ),
        (types.ContextWindowCompressionConfig(trigger_tokens=1000), None),  # no mechanism
    ],
)
def test_genai_context_window_compression(
    compression: types.ContextWindowCompressionConfig, expected: p.SlidingWindow | None
) -> None:
    raw = genai_setup_json(types.LiveConnectConfig(context_window_compression=compression))
    assert '"contextWindowCompression": {' in raw  # camelCase outside, snake_case inside
    setup = p.decode_client_message(raw)
    assert isinstance(setup, p.Setup)
    assert setup.compression == expected


def test_minimal_setup_defaults_to_audio() -> None:
    setup = p.decode_client_message('{"setup": {"model": "models/gemini-2.0-flash-live-001"}}')
    assert setup == p.Setup(model="models/gemini-2.0-flash-live-001")


async def test_genai_client_content(genai_session: tuple[live.AsyncSession, CaptureWs]) -> None:
    session, ws = genai_session
    await session.send_client_content(
        turns=[
            types.Content(role="user", parts=[types.Part(text="hi")]),
            types.Content(role="model", parts=[types.Part(text="Hello!")]),
            types.Content(role="user", parts=[types.Part(text="what "), types.Part(text="time")]),
        ],
        turn_complete=True,
    )
    assert p.decode_client_message(ws.sent[-1]) == p.ClientContent(
        turns=(p.Turn("user", "hi"), p.Turn("model", "Hello!"), p.Turn("user", "what time")),
        turn_complete=True,
    )


async def test_genai_deprecated_send_content_is_snake_case() -> None:
    """ADK sends 2.x text through genai's deprecated `send`, which emits snake_case keys."""
    client = genai.Client(api_key="unit-test")
    session = live.AsyncSession(api_client=client._api_client, websocket=CaptureWs())  # type: ignore[arg-type]
    frame = session._parse_client_message(
        types.LiveClientContent(
            turns=[types.Content(role="user", parts=[types.Part(text="hello")])],
            turn_complete=True,
        )
    )
    raw = json.dumps(frame)
    assert '"turn_complete"' in raw
    assert p.decode_client_message(raw) == p.ClientContent((p.Turn("user", "hello"),), True)


async def test_genai_realtime_audio_is_urlsafe(
    genai_session: tuple[live.AsyncSession, CaptureWs],
) -> None:
    session, ws = genai_session
    pcm = bytes([0xFB, 0xFF, 0xFE, 0x3E]) * 50  # bytes whose base64 needs - and _
    await session.send_realtime_input(audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000"))
    assert "-" in ws.sent[-1] or "_" in ws.sent[-1]
    msg = p.decode_client_message(ws.sent[-1])
    assert msg == p.RealtimeInput(audio=(p.AudioChunk(pcm, 16000),))
    await session.send_realtime_input(media=types.Blob(data=pcm, mime_type="audio/pcm"))
    msg = p.decode_client_message(ws.sent[-1])
    assert msg == p.RealtimeInput(audio=(p.AudioChunk(pcm, 16000),), used_media_chunks=True)


async def test_genai_realtime_signals(genai_session: tuple[live.AsyncSession, CaptureWs]) -> None:
    session, ws = genai_session
    await session.send_realtime_input(activity_start=types.ActivityStart())
    await session.send_realtime_input(activity_end=types.ActivityEnd())
    await session.send_realtime_input(audio_stream_end=True)
    await session.send_realtime_input(text="hello")
    decoded = [p.decode_client_message(raw) for raw in ws.sent]
    assert decoded == [
        p.RealtimeInput(activity_start=True),
        p.RealtimeInput(activity_end=True),
        p.RealtimeInput(audio_stream_end=True),
        p.RealtimeInput(text="hello"),
    ]


async def test_genai_tool_response(genai_session: tuple[live.AsyncSession, CaptureWs]) -> None:
    session, ws = genai_session
    await session.send_tool_response(
        function_responses=[
            types.FunctionResponse(id="c1", name="get_current_time", response={"time": "10:42"})
        ]
    )
    assert p.decode_client_message(ws.sent[-1]) == p.ToolResponse(
        (p.FunctionResponse("c1", "get_current_time", {"time": "10:42"}),)
    )


async def test_genai_context_update(genai_session: tuple[live.AsyncSession, CaptureWs]) -> None:
    session, ws = genai_session
    await session.send_context_update(system_instruction="Now be verbose.", tools=[])
    assert p.decode_client_message(ws.sent[-1]) == p.ContextUpdate("Now be verbose.", ())


ROUND_TRIP: list[p.ClientMessage] = [
    p.Setup(model="models/x-live", response_modality="TEXT"),
    p.Setup(
        model="models/gemini-3.1-flash-live-preview",
        system_instruction="sys",
        function_names=("a", "b"),
        input_transcription=True,
        output_transcription=True,
        activity_detection=p.ActivityDetection(True, 300, 20),
        resumption=True,
        resume_handle="h1",
        initial_history_in_client_content=True,
        compression=p.SlidingWindow(2000, 700),
    ),
    p.ClientContent((p.Turn("user", "a"), p.Turn("model", "b")), turn_complete=False),
    p.RealtimeInput(audio=(p.AudioChunk(b"\x01\x00\x02\x00", 24000),)),
    p.RealtimeInput(audio=(p.AudioChunk(b"\x01\x00", 16000),), used_media_chunks=True),
    p.RealtimeInput(text="t", activity_start=True, activity_end=True, audio_stream_end=True),
    p.ToolResponse((p.FunctionResponse("i", "n", {"r": [1, 2]}),)),
    p.ContextUpdate(None, ("f",)),
]


@pytest.mark.parametrize("msg", ROUND_TRIP, ids=lambda m: type(m).__name__)
def test_client_round_trip(msg: p.ClientMessage) -> None:
    assert p.decode_client_message(encode_client_message(msg)) == msg


@given(
    texts=st.lists(st.text(max_size=40), max_size=5),
    pcm=st.binary(max_size=400).map(lambda b: b[: len(b) - len(b) % 2]),
)
def test_round_trip_property(texts: list[str], pcm: bytes) -> None:
    content = p.ClientContent(tuple(p.Turn("user", t) for t in texts), turn_complete=True)
    assert p.decode_client_message(encode_client_message(content)) == content
    audio = p.RealtimeInput(audio=(p.AudioChunk(pcm, 16000),))
    assert p.decode_client_message(encode_client_message(audio)) == audio


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"bogus": {}}', "unknown client message field 'bogus'"),
        ('{"setup": {"model": "m"}, "client_content": {}}', "exactly one"),
        ("{}", "exactly one"),
        ('{"setup": {}}', "setup.model is missing"),
        (
            '{"setup": {"model": "m", "generationConfig": {"responseModalities": ["IMAGE"]}}}',
            "TEXT or AUDIO",
        ),
        ('{"setup": {"model": "m", "tools": [{"functionDeclarations": [{}]}]}}', "has no name"),
        (
            '{"setup": {"model": "m", "realtimeInputConfig": '
            '{"automaticActivityDetection": {"disabled": "yes"}}}}',
            "true or false",
        ),
        (
            '{"setup": {"model": "m", "sessionResumption": {"handle": 5}}}',
            "handle must be a string",
        ),
        (
            '{"setup": {"model": "m", "contextWindowCompression": '
            '{"triggerTokens": -5, "slidingWindow": {}}}}',
            "triggerTokens must not be negative",
        ),
        (
            '{"setup": {"model": "m", "contextWindowCompression": '
            '{"slidingWindow": {"targetTokens": "many"}}}}',
            "targetTokens must be an integer",
        ),
        ('{"client_content": {"turns": {"role": "user"}}}', "must be a JSON array"),
        (
            '{"realtime_input": {"audio": {"mimeType": "audio/pcm", "data": "@@@"}}}',
            "not valid base64",
        ),
        (
            '{"realtime_input": {"audio": {"mimeType": "audio/pcm", "data": "AAAA"}}}',
            "even number of bytes",
        ),
        ('{"realtime_input": {"audio": {"data": "AAAA"}}}', "mimeType is missing"),
        (
            '{"realtime_input": {"audio": {"mimeType": "image/jpeg", "data": "AAAB"}}}',
            "must be audio/pcm",
        ),
        ('{"realtime_input": {"text": 5}}', "text must be a string"),
        ('{"tool_response": {"functionResponses": []}}', "is empty"),
        (
            '{"tool_response": {"functionResponses": [{"id": "1", "response": {}}]}}',
            ".name is missing",
        ),
    ],
)
def test_bad_frames_raise(raw: str, fragment: str) -> None:
    with pytest.raises(ProtocolError, match=None) as info:
        p.decode_client_message(raw)
    assert fragment in str(info.value)


def test_decode_b64_accepts_both_alphabets_and_missing_padding() -> None:
    data = bytes(range(256))
    assert p.decode_b64(base64.b64encode(data).decode(), "x") == data
    assert p.decode_b64(base64.urlsafe_b64encode(data).decode().rstrip("="), "x") == data


def test_audio_rate() -> None:
    assert p.audio_rate("audio/pcm;rate=24000") == 24000
    assert p.audio_rate("audio/pcm") == 16000
    assert p.audio_rate("image/jpeg") is None


def _genai_parse(frame: dict[str, Any]) -> types.LiveServerMessage:
    """Parse a server frame exactly as google-genai's AsyncSession._receive does."""
    raw = json.loads(frames.encode(frame))
    return types.LiveServerMessage._from_response(
        response=live_converters._LiveServerMessage_from_mldev(raw), kwargs={}
    )


def test_server_frames_parse_in_genai() -> None:
    assert _genai_parse(frames.setup_complete()).setup_complete is not None
    msg = _genai_parse(frames.model_text("Hi "))
    assert msg.text == "Hi "
    pcm = bytes(range(256)) * 4
    msg = _genai_parse(frames.model_audio(pcm, "Hello"))
    assert msg.data == pcm
    assert msg.server_content is not None
    assert msg.server_content.output_transcription == types.Transcription(text="Hello")
    part = msg.server_content.model_turn.parts[0]  # type: ignore[union-attr,index]
    assert part.inline_data.mime_type == "audio/pcm;rate=24000"  # type: ignore[union-attr]
    msg = _genai_parse(frames.turn_complete(frames.Usage(10, 5)))
    assert msg.server_content
    assert msg.server_content.turn_complete
    assert msg.usage_metadata == types.UsageMetadata(
        prompt_token_count=10, response_token_count=5, total_token_count=15
    )
    msg = _genai_parse(frames.tool_call([frames.FunctionCall("c1", "f", {"a": 1})]))
    assert msg.tool_call
    assert msg.tool_call.function_calls == [types.FunctionCall(id="c1", name="f", args={"a": 1})]
    msg = _genai_parse(frames.tool_call_cancellation(["c1"]))
    assert msg.tool_call_cancellation
    assert msg.tool_call_cancellation.ids == ["c1"]
    assert _genai_parse(frames.go_away(1.5)).go_away == types.LiveServerGoAway(time_left="1.5s")
    update = _genai_parse(frames.resumption_update("h", resumable=True)).session_resumption_update
    assert update == types.LiveServerSessionResumptionUpdate(new_handle="h", resumable=True)
    update = _genai_parse(frames.resumption_update(None, resumable=False)).session_resumption_update
    assert update is not None
    assert update.new_handle is None
    assert update.resumable is False
    content = _genai_parse(frames.interrupted()).server_content
    assert content
    assert content.interrupted
    content = _genai_parse(frames.input_transcription("hi", finished=True)).server_content
    assert content
    assert content.input_transcription == types.Transcription(text="hi", finished=True)
    content = _genai_parse(frames.output_transcription(None, finished=True)).server_content
    assert content
    assert content.output_transcription == types.Transcription(finished=True)
    content = _genai_parse(frames.generation_complete()).server_content
    assert content
    assert content.generation_complete


def test_golden_server_frames() -> None:
    assert frames.encode(frames.setup_complete()) == '{"setupComplete":{}}'
    assert frames.encode(frames.turn_complete(frames.Usage(3, 4))) == (
        '{"serverContent":{"turnComplete":true},"usageMetadata":'
        '{"promptTokenCount":3,"responseTokenCount":4,"totalTokenCount":7}}'
    )
    assert frames.encode(frames.go_away(10)) == '{"goAway":{"timeLeft":"10s"}}'
    assert frames.encode(frames.model_audio(b"\xff\xfe")) == (
        '{"serverContent":{"modelTurn":{"role":"model","parts":[{"inlineData":'
        '{"mimeType":"audio/pcm;rate=24000","data":"//4="}}]}}}'
    )


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (1, "1s"), (0.25, "0.25s"), (-3, "0s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert frames.format_duration(seconds) == text


def test_client_content_keeps_a_tool_result_turn() -> None:
    raw = json.dumps(
        {
            "clientContent": {
                "turns": [
                    {"role": "user", "parts": [{"text": "what time is it?"}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "clock", "args": {}}}]},
                    {
                        "role": "user",
                        "parts": [
                            {"functionResponse": {"name": "clock", "response": {"time": "9:00"}}}
                        ],
                    },
                ],
                "turnComplete": True,
            }
        }
    )
    content = p.decode_client_message(raw)
    assert isinstance(content, p.ClientContent)
    assert [t.tool_result for t in content.turns] == [None, None, {"time": "9:00"}]
    assert content.turns[0].text == "what time is it?"
