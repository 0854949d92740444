"""The wire codecs: golden messages from the seeds, round trips, and bad input."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adkvoice import events as ev
from adkvoice.errors import ProtocolError
from adkvoice.wire import seeds
from adkvoice.wire.adkvoice_v1 import (
    decode_client_frame,
    decode_server_frame,
    encode_client_audio,
    encode_client_end,
    encode_client_image,
    encode_client_text,
    encode_error,
    encode_extended,
    encode_hello,
)
from adkvoice.wire.base import AudioInput, EndInput, FrameError, Hello, ImageInput, TextInput
from adkvoice.wire.chat_sse import (
    SSE_DONE,
    SseDone,
    SseError,
    decode_sse_data,
    encode_sse_error,
    encode_sse_text,
)
from adkvoice.wire.seeds import SeedEncoder

PCM = b"\x01\x00\xff\x7f\x00\x80\x10\x20"
PCM_B64 = base64.b64encode(PCM).decode("ascii")

# ------------------------------------------------------------------- golden: the seeds

# What the seeds' app.js sends (JSON.stringify: no spaces).
SEED_CLIENT_TEXT = '{"mime_type":"text/plain","data":"What time is it now?"}'
SEED_CLIENT_AUDIO = '{"mime_type":"audio/pcm","data":"' + PCM_B64 + '"}'
# What the seeds' main.py sends (json.dumps with its defaults).
SEED_SERVER_TEXT = '{"mime_type": "text/plain", "data": "It is "}'
SEED_SERVER_AUDIO = '{"mime_type": "audio/pcm", "data": "' + PCM_B64 + '"}'
SEED_TURN_COMPLETE = '{"turn_complete": true, "interrupted": null}'
SEED_INTERRUPTED = '{"turn_complete": null, "interrupted": true}'
# Seed 001 (SSE tutorial): yield f"data: {json.dumps({'text': chunk})}\n\n", then [DONE].
SSE_CHUNK = 'data: {"text": "Neural networks are"}\n\n'


def test_seed_client_messages_decode() -> None:
    assert decode_client_frame(SEED_CLIENT_TEXT, extended=False) == TextInput(
        "What time is it now?"
    )
    assert decode_client_frame(SEED_CLIENT_AUDIO, extended=False) == AudioInput(PCM)
    # The same messages are accepted on an extended connection.
    assert decode_client_frame(SEED_CLIENT_AUDIO, extended=True) == AudioInput(PCM)


def test_seed_server_frames_encode_byte_for_byte() -> None:
    enc = SeedEncoder()
    assert enc.encode(ev.AgentText(text="It is ", partial=True)) == [SEED_SERVER_TEXT]
    assert enc.encode(ev.AgentAudio(pcm=PCM)) == [SEED_SERVER_AUDIO]
    assert enc.encode(ev.TurnComplete()) == [SEED_TURN_COMPLETE]
    assert enc.encode(ev.Interrupted()) == [SEED_INTERRUPTED]
    assert encode_sse_text("Neural networks are") == SSE_CHUNK
    assert SSE_DONE == "data: [DONE]\n\n"


def test_seed_server_frames_decode() -> None:
    def decode(frame: str, is_audio: bool = False) -> list[object]:
        return list(decode_server_frame(frame, extended=False, is_audio=is_audio))

    assert decode(SEED_SERVER_TEXT) == [ev.AgentText(text="It is ", partial=True)]
    assert decode(SEED_SERVER_TEXT, is_audio=True) == [
        ev.Transcript(speaker="agent", text="It is ", finished=False)
    ]
    assert decode(SEED_SERVER_AUDIO) == [ev.AgentAudio(pcm=PCM, sample_rate=24_000)]
    assert decode(SEED_TURN_COMPLETE) == [ev.TurnComplete()]
    assert decode(SEED_INTERRUPTED) == [ev.Interrupted()]
    # Either flag may be false rather than null; both set gives both, in display order.
    assert decode('{"turn_complete": true, "interrupted": false}') == [ev.TurnComplete()]
    assert decode('{"turn_complete": true, "interrupted": true}') == [
        ev.Interrupted(),
        ev.TurnComplete(),
    ]
    assert decode('{"turn_complete": false, "interrupted": null}') == []


def test_seed_encoder_sends_what_the_sample_sends() -> None:
    enc = SeedEncoder()
    # Partial text goes out; the aggregated final text after it does not.
    assert enc.encode(ev.AgentText(text="Hel", partial=True)) != []
    assert enc.encode(ev.AgentText(text="Hello", partial=False)) == []
    # A final text with no deltas before it still reaches the client.
    assert enc.encode(ev.AgentText(text="Whole", partial=False)) == [
        '{"mime_type": "text/plain", "data": "Whole"}'
    ]
    # Agent transcripts are unmarked text/plain; user transcripts are not sent.
    assert enc.encode(ev.Transcript(speaker="agent", text="Hi ", finished=False)) == [
        '{"mime_type": "text/plain", "data": "Hi "}'
    ]
    assert enc.encode(ev.Transcript(speaker="agent", text="Hi there", finished=True)) == []
    assert enc.encode(ev.Transcript(speaker="user", text="hello", finished=True)) == []
    for quiet in (
        ev.ToolCall(call_id="1", name="t", args={}),
        ev.ToolResult(call_id="1", name="t", response={}, duration_s=None),
        ev.Usage(prompt_tokens=1, response_tokens=2, total_tokens=3),
        ev.Notice(message="n"),
        ev.ErrorEvent(message="e"),
        ev.ResumptionHandle(handle="h", resumable=True),
        ev.UserText(text="u"),
    ):
        assert enc.encode(quiet) == []


def test_seed_encoder_sends_one_turn_complete_per_answer_of_several_turns() -> None:
    """Gemini 3.8 answers in several turns; a seeds client, which knows no interaction
    status, gets the answer's text spaced as one message and one turn_complete."""
    encoder = SeedEncoder()
    sent = [
        frame
        for event in (
            ev.Transcript(speaker="agent", text="Let me look.", finished=False),
            ev.Transcript(speaker="agent", text="Let me look.", finished=True),
            ev.TurnComplete(interaction="in_progress"),
            ev.Transcript(speaker="agent", text="Found it.", finished=False),
            ev.TurnComplete(interaction="idle"),
            ev.Transcript(speaker="agent", text="Next.", finished=False),
            ev.TurnComplete(),
        )
        for frame in encoder.encode(event)
    ]
    assert sent == [
        seeds.text_frame("Let me look."),
        seeds.text_frame(" Found it."),
        seeds.TURN_COMPLETE,
        seeds.text_frame("Next."),
        seeds.TURN_COMPLETE,
    ]


def test_segment_text_shows_new_text_once() -> None:
    deltas = ev.SegmentText()
    assert deltas.feed("a", final=False) == "a"
    assert deltas.feed("", final=False) is None
    assert deltas.feed("ab", final=True) is None
    assert deltas.feed("whole", final=True) == "whole"
    assert deltas.feed("", final=True) is None


# ----------------------------------------------------------------------- extension


def test_extension_client_frames() -> None:
    assert decode_client_frame(PCM, extended=True) == AudioInput(PCM)
    assert decode_client_frame(bytearray(PCM), extended=True) == AudioInput(PCM)
    assert decode_client_frame('{"type": "text", "text": "hi"}', extended=True) == TextInput("hi")
    assert decode_client_frame(encode_client_end(), extended=True) == EndInput()
    typed_audio = json.dumps({"type": "audio", "data": PCM_B64})
    assert decode_client_frame(typed_audio, extended=True) == AudioInput(PCM)
    image = encode_client_image(b"\xff\xd8jpeg", "image/jpeg")
    assert image == '{"type": "image", "mime_type": "image/jpeg", "data": "/9hqcGVn"}'
    assert decode_client_frame(image, extended=True) == ImageInput(b"\xff\xd8jpeg", "image/jpeg")


def test_urlsafe_base64_and_rate_parameter() -> None:
    pcm = b"\xfb\xff\xfe\xff"
    frame = json.dumps(
        {"mime_type": "audio/pcm;rate=16000", "data": base64.urlsafe_b64encode(pcm).decode()}
    )
    assert decode_client_frame(frame, extended=False) == AudioInput(pcm)


def test_extension_golden_frames() -> None:
    assert encode_extended(ev.AgentText(text="It is", partial=True)) == [
        '{"type": "agent_text", "text": "It is", "partial": true}'
    ]
    assert encode_extended(ev.Transcript(speaker="user", text="hi", finished=True)) == [
        '{"type": "transcript", "speaker": "user", "text": "hi", "finished": true}'
    ]
    assert encode_extended(ev.AgentAudio(pcm=PCM)) == [PCM]
    assert encode_extended(ev.TurnComplete()) == ['{"type": "turn_complete"}']
    assert encode_extended(ev.Interrupted()) == ['{"type": "interrupted"}']
    assert encode_error("invalid_json", "bad") == (
        '{"type": "error", "code": "invalid_json", "message": "bad", "retryable": false}'
    )
    assert encode_extended(ev.UserText(text="x")) == []
    assert encode_extended(ev.ResumptionHandle(handle="h", resumable=True)) == []


json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_objects = st.dictionaries(
    st.text(max_size=10),
    st.recursive(
        json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=5,
    ),
    max_size=4,
)
ints = st.none() | st.integers(0, 10**9)
sent_events = st.one_of(
    st.builds(ev.AgentText, text=st.text(), partial=st.booleans()),
    st.builds(
        ev.Transcript,
        speaker=st.sampled_from(["user", "agent"]),
        text=st.text(),
        finished=st.booleans(),
    ),
    st.builds(
        ev.AgentAudio,
        pcm=st.binary(max_size=64).map(lambda b: b[: len(b) // 2 * 2]),
        sample_rate=st.sampled_from([24_000, 16_000, 48_000]),
    ),
    st.builds(
        ev.ToolCall, call_id=st.text(), name=st.text(), args=json_objects, background=st.booleans()
    ),
    st.builds(
        ev.ToolResult,
        call_id=st.text(),
        name=st.text(),
        response=json_objects,
        duration_s=st.none() | st.integers(0, 10**6).map(lambda n: n / 10_000),
        scheduling=st.sampled_from([None, "WHEN_IDLE", "INTERRUPT", "SILENT"]),
    ),
    st.builds(ev.TurnComplete, interaction=st.sampled_from([None, "in_progress", "idle"])),
    st.just(ev.Interrupted()),
    st.builds(ev.Usage, prompt_tokens=ints, response_tokens=ints, total_tokens=ints),
    st.builds(ev.Notice, message=st.text(), level=st.sampled_from(["info", "warning"])),
    st.builds(ev.ErrorEvent, message=st.text(), retryable=st.booleans()),
)


@given(sent_events)
def test_extension_round_trip(event: ev.Event) -> None:
    frames = encode_extended(event)
    assert len(frames) == 1
    decoded = decode_server_frame(frames[0], extended=True, is_audio=True)
    assert decoded == [event]


@given(
    st.one_of(
        st.builds(ev.AgentText, text=st.text(min_size=1), partial=st.just(True)),
        st.builds(ev.AgentAudio, pcm=st.binary(min_size=2, max_size=64).map(lambda b: b[:2])),
        st.just(ev.TurnComplete()),
        st.just(ev.Interrupted()),
    )
)
def test_seed_round_trip(event: ev.Event) -> None:
    frames = SeedEncoder().encode(event)
    decoded = [e for f in frames for e in decode_server_frame(f, extended=False, is_audio=False)]
    assert decoded == [event]


texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1).filter(str.strip)


@given(texts, st.booleans())
def test_client_text_round_trip(text: str, extended: bool) -> None:
    frame = encode_client_text(text, extended=extended)
    assert decode_client_frame(frame, extended=extended) == TextInput(text)


@given(st.binary(max_size=512).map(lambda b: b[: len(b) // 2 * 2]), st.booleans())
def test_client_audio_round_trip(pcm: bytes, extended: bool) -> None:
    frame = encode_client_audio(pcm, extended=extended)
    assert isinstance(frame, bytes) == extended
    assert decode_client_frame(frame, extended=extended) == AudioInput(pcm)


def test_hello_round_trip() -> None:
    hello = Hello(
        session_id="abc",
        modality="AUDIO",
        resumed=True,
        limits={"max_frame_bytes": 10, "audio_rate_slack": 1.25},
        agent="assistant",
    )
    assert decode_server_frame(encode_hello(hello), extended=True, is_audio=True) == [hello]


@given(st.text())
def test_sse_round_trip(text: str) -> None:
    line = encode_sse_text(text)
    assert line.startswith("data: ")
    assert line.endswith("\n\n")
    assert "\n" not in line[:-2]  # one data line per event, whatever the text holds
    assert decode_sse_data(line[6:-2]) == text


def test_sse_done_and_error() -> None:
    assert decode_sse_data("[DONE]") == SseDone()
    assert decode_sse_data(encode_sse_error("oops")[6:-2]) == SseError("oops")
    with pytest.raises(FrameError):
        decode_sse_data("{}")
    with pytest.raises(FrameError):
        decode_sse_data("nope")


# ----------------------------------------------------------------------- bad input

BAD_CLIENT = [
    ("{nope", False, "invalid_json", "not valid JSON"),
    ("[1]", False, "invalid_message", "JSON object"),
    ('"text"', False, "invalid_message", "JSON object"),
    ("{}", False, "invalid_message", "mime_type is missing"),
    ('{"mime_type": 3, "data": "x"}', False, "invalid_message", "mime_type"),
    ('{"mime_type": "text/plain"}', False, "invalid_message", "'data'"),
    ('{"mime_type": "text/plain", "data": null}', False, "invalid_message", "string"),
    ('{"mime_type": "text/plain", "data": " \\n"}', False, "empty_text", "empty"),
    ('{"mime_type": "text/plain", "data": "\\udc80"}', False, "invalid_message", "Unicode"),
    ('{"mime_type": "video/mp4", "data": "AAAA"}', False, "unsupported_mime_type", "text/plain"),
    ('{"mime_type": "audio/pcm", "data": "***"}', False, "invalid_base64", "base64"),
    ('{"mime_type": "audio/pcm", "data": 12}', False, "invalid_message", "base64 string"),
    ('{"mime_type": "audio/pcm", "data": "AA=="}', False, "invalid_audio", "even number"),
    ('{"mime_type": "audio/pcm;rate=44100", "data": "AAAA"}', False, "invalid_audio", "16 kHz"),
    (b"\x00\x01", False, "binary_not_enabled", "adkvoice.v1"),
    ('{"type": "text", "text": "x"}', False, "extension_not_enabled", "adkvoice.v1"),
    ('{"type": "dance"}', True, "unknown_type", "text, audio, image or end"),
    ('{"type": 7}', True, "unknown_type", "expected"),
    ('{"type": "text"}', True, "invalid_message", "string"),
    ('{"type": "audio", "data": "!"}', True, "invalid_base64", "base64"),
    (b"\x00", True, "invalid_audio", "even number"),
    ("[" * 100_000, True, "invalid_json", "JSON"),
]


@pytest.mark.parametrize(("frame", "extended", "code", "hint"), BAD_CLIENT)
def test_bad_client_frames(frame: str | bytes, extended: bool, code: str, hint: str) -> None:
    with pytest.raises(FrameError) as raised:
        decode_client_frame(frame, extended=extended)
    assert raised.value.code == code
    assert hint in str(raised.value)
    assert isinstance(raised.value, ProtocolError)


BAD_SERVER = [
    ("nope", True),
    ("[]", True),
    ('{"type": "mystery"}', True),
    ('{"type": "agent_text", "text": 5, "partial": true}', True),
    ('{"type": "agent_text", "text": "x", "partial": 1}', True),
    ('{"type": "transcript", "speaker": "ghost", "text": "", "finished": true}', True),
    ('{"type": "hello", "modality": "VIDEO"}', True),
    ('{"type": "usage", "prompt_tokens": "1"}', True),
    ('{"type": "tool_result", "id": "1", "name": "t", "response": {}, "duration_s": "x"}', True),
    ('{"type": "notice", "message": "m", "level": "loud"}', True),
    ('{"type": "turn_complete", "interaction_status": "busy"}', True),
    (
        '{"type": "tool_result", "id": "1", "name": "t", "response": {}, "scheduling": "LATER"}',
        True,
    ),
    ('{"mime_type": "text/plain", "data": 1}', False),
    ('{"mime_type": "audio/pcm", "data": "%%"}', False),
    ('{"turn_complete": "yes"}', False),
    ('{"something": "else"}', False),
    (b"\x00\x01", False),
    (b"\x00", True),
]


@pytest.mark.parametrize(("frame", "extended"), BAD_SERVER)
def test_bad_server_frames(frame: str | bytes, extended: bool) -> None:
    with pytest.raises(FrameError):
        decode_server_frame(frame, extended=extended, is_audio=False)
