"""Provider errors decode to an error step; broken bytes raise CodecError saying what and where."""

from __future__ import annotations

import json

import pytest

from seamtape.wire import (
    APIS,
    CodecError,
    Step,
    ToolCall,
    Usage,
    decode,
    encode_error,
    encode_response,
)
from test_wire_roundtrip import MODELS, request

JSON = [("content-type", "application/json")]


def step(api: str) -> Step:
    return Step(
        provider=api.split(".")[0],
        api=api,
        model=MODELS[api],
        response_id="r1",
        text="Some text to stream.",
        tool_calls=[ToolCall("c1", "f", {"a": 1})],
        stop_reason="tool_use",
        usage=Usage(10, 5),
    )


def decode_bytes(
    api: str, stream: bool, status: int, headers: list[tuple[str, str]], body: bytes
) -> Step:
    url, request_body = request(api, stream)
    return decode("POST", url, [], request_body, status, headers, body)


@pytest.mark.parametrize(
    ("api", "error_type"),
    [
        ("anthropic.messages", "rate_limit_error"),
        ("openai.chat", "rate_limit_exceeded"),
        ("openai.responses", "rate_limit_exceeded"),
        ("gemini.generate", "RESOURCE_EXHAUSTED"),
        ("bedrock.invoke", "ThrottlingException"),
        ("bedrock.converse", "ThrottlingException"),
    ],
)
def test_provider_error_decodes_to_an_error_step(api: str, error_type: str) -> None:
    encoded = encode_error(api, 429, "Too many requests, slow down.")
    assert encoded.status == 429
    back = decode_bytes(api, True, encoded.status, encoded.headers, encoded.body)
    assert (back.stop_reason, back.text, back.error_type, back.status) == (
        "error",
        "Too many requests, slow down.",
        error_type,
        429,
    )
    assert back.tool_calls == [] and back.usage == Usage()
    assert back.model == MODELS[api] and back.cost_usd == 0.0


def test_error_bodies_have_each_providers_shape() -> None:
    assert json.loads(encode_error("anthropic.messages", 529, "busy").body) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert json.loads(encode_error("openai.chat", 429, "slow").body) == {
        "error": {
            "message": "slow",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert json.loads(encode_error("gemini.generate", 400, "bad").body) == {
        "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}
    }
    bedrock = encode_error("bedrock.invoke", 429, "slow")
    assert json.loads(bedrock.body) == {"message": "slow"}
    assert (
        "x-amzn-ErrorType",
        "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
    ) in bedrock.headers


def test_encode_error_needs_an_error_status() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        encode_error("openai.chat", 200, "fine")


def test_a_non_json_error_body_keeps_its_text() -> None:
    back = decode_bytes(
        "openai.chat", False, 502, [("content-type", "text/html")], b"<html>Bad Gateway</html>\n"
    )
    assert (back.stop_reason, back.text, back.status) == ("error", "<html>Bad Gateway</html>", 502)


@pytest.mark.parametrize("api", APIS)
def test_malformed_response_json_is_a_codec_error(api: str) -> None:
    with pytest.raises(CodecError, match=rf"^{api}: response body is not valid JSON: Expecting"):
        decode_bytes(api, False, 200, JSON, b'{"id": "x", "content": [')


@pytest.mark.parametrize("api", APIS)
def test_malformed_request_json_is_a_codec_error(api: str) -> None:
    url, _ = request(api, False)
    with pytest.raises(CodecError, match=rf"^{api}: request body is not valid JSON"):
        decode("POST", url, [], b"{not json", 200, JSON, b"{}")


@pytest.mark.parametrize("api", ["anthropic.messages", "bedrock.invoke"])
def test_json_that_is_not_a_message_is_a_codec_error(api: str) -> None:
    url, body = request(api, False)
    with pytest.raises(
        CodecError, match=rf'^{api}: response body is not a message: it has no "content"'
    ):
        decode("POST", url, [], body, 200, JSON, b'{"n": 1, "echo": {}}')


def test_a_wrong_shape_names_the_missing_field() -> None:
    url, body = request("openai.chat", False)
    with pytest.raises(
        CodecError, match=r"^openai\.chat: malformed response: missing field 'choices'"
    ):
        decode("POST", url, [], body, 200, JSON, b'{"id": "x"}')


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ("anthropic.messages", r"stream ended before message_stop \(after \d+ events\)"),
        ("openai.chat", r"stream ended before data: \[DONE\] \(after \d+ events\)"),
        ("openai.responses", r"stream ended before response\.completed \(after \d+ events\)"),
        ("gemini.generate", r"stream ended before a chunk with finishReason \(after \d+ chunks\)"),
        ("bedrock.invoke", r"stream ended before message_stop \(after \d+ events\)"),
        ("bedrock.converse", r"stream ended before messageStop \(after \d+ events\)"),
    ],
)
def test_a_stream_cut_at_a_frame_boundary_is_a_codec_error(api: str, message: str) -> None:
    encoded = encode_response(step(api), stream=True)
    truncated = b"".join(encoded.chunks[:-2] if api == "bedrock.converse" else encoded.chunks[:-1])
    with pytest.raises(CodecError, match=rf"^{api}: {message}$"):
        decode_bytes(api, True, 200, encoded.headers, truncated)


@pytest.mark.parametrize("api", ["bedrock.invoke", "bedrock.converse"])
def test_an_event_stream_cut_mid_message_is_a_codec_error(api: str) -> None:
    encoded = encode_response(step(api), stream=True)
    with pytest.raises(
        CodecError, match=rf"^{api}: event-stream message \d+ at byte \d+: truncated message"
    ):
        decode_bytes(api, True, 200, encoded.headers, encoded.body[:-5])


def test_a_stream_without_message_start_is_a_codec_error() -> None:
    body = b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    with pytest.raises(
        CodecError, match="stream began with 'content_block_start', not message_start"
    ):
        decode_bytes("anthropic.messages", True, 200, [("content-type", "text/event-stream")], body)


def test_an_unknown_url_is_a_codec_error() -> None:
    with pytest.raises(CodecError, match=r"no wire codec for POST http://h/v1/embeddings"):
        decode("POST", "http://h/v1/embeddings", [], b"{}", 200, JSON, b"{}")


def test_an_unknown_api_cannot_be_encoded() -> None:
    with pytest.raises(CodecError, match=r"unknown api 'mistral\.chat'"):
        encode_response(Step(provider="mistral", api="mistral.chat"), stream=False)
    with pytest.raises(CodecError, match=r"unknown api 'mistral\.chat'"):
        encode_error("mistral.chat", 500, "x")


def test_codec_error_is_a_value_error() -> None:
    assert issubclass(CodecError, ValueError)
