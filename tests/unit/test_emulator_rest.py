"""The emulator's REST reply planning and response shapes (pure, no sockets)."""

from __future__ import annotations

import json

import pytest

from adkvoice.emulator import default_rules
from adkvoice.emulator.rest import (
    CallReply,
    TextReply,
    decode_generate_request,
    plan_reply,
    reply_chunks,
    sse_event,
)
from adkvoice.errors import ProtocolError


def request(contents: list[dict[str, object]], *, stream: bool = True, tools: bool = True) -> bytes:
    body: dict[str, object] = {"contents": contents}
    if tools:
        body["tools"] = [{"functionDeclarations": [{"name": "get_current_time"}]}]
    body["systemInstruction"] = {"parts": [{"text": "Be brief."}]}
    return json.dumps(body).encode()


def user(text: str) -> dict[str, object]:
    return {"role": "user", "parts": [{"text": text}]}


def test_echo_and_previous() -> None:
    req = decode_generate_request(
        "m",
        True,
        request(
            [
                user("my name is Ada"),
                {"role": "model", "parts": [{"text": "ok"}]},
                user("what did I say?"),
            ]
        ),
    )
    assert req.system_instruction == "Be brief."
    assert req.function_names == ("get_current_time",)
    reply, text = plan_reply(req, default_rules())
    assert text == "what did I say?"
    assert reply == TextReply("Before that you said: my name is Ada")


def test_tool_call_then_answer() -> None:
    question = user("what time is it?")
    req = decode_generate_request("m", True, request([question]))
    reply, _ = plan_reply(req, default_rules())
    assert reply == CallReply("get_current_time", {})
    follow_up = [
        question,
        {"role": "model", "parts": [{"functionCall": {"name": "get_current_time", "args": {}}}]},
        {
            "role": "user",
            "parts": [
                {"function_response": {"name": "get_current_time", "response": {"time": "9:15"}}}
            ],
        },
    ]
    reply, _ = plan_reply(decode_generate_request("m", True, request(follow_up)), default_rules())
    assert reply == TextReply("It is 9:15.")


def test_undeclared_tool_is_explained() -> None:
    req = decode_generate_request("m", True, request([user("what time is it?")], tools=False))
    reply, _ = plan_reply(req, default_rules())
    assert isinstance(reply, TextReply)
    assert "does not declare it" in reply.text


def test_chunks_have_gemini_shape() -> None:
    req = decode_generate_request("gemini-x", True, request([user("one two three four five")]))
    reply, _ = plan_reply(req, default_rules())
    chunks = reply_chunks(req, reply)
    assert len(chunks) > 1
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == (
        "You said: one two three four five"
    )
    assert all(c["modelVersion"] == "gemini-x" for c in chunks)
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    usage = chunks[-1]["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    whole = reply_chunks(decode_generate_request("m", False, request([user("hi")])), reply)
    assert len(whole) == 1
    event = sse_event(chunks[0])
    assert event.startswith(b"data: {")
    assert event.endswith(b"}\r\n\r\n")


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"contents": []}', "empty"),
        (b'{"contents": {}}', "array"),
        (b'{"contents": [5]}', "JSON object"),
        (b'{"contents": [{"role": 1, "parts": []}]}', "role"),
    ],
)
def test_bad_requests(body: bytes, hint: str) -> None:
    with pytest.raises(ProtocolError, match=hint):
        decode_generate_request("m", True, body)
