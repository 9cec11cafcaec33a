"""decode(encode_response(step)) gives back the response fields, for every api, JSON and stream."""

from __future__ import annotations

import copy
import json

import pytest

from seamtape.wire import (
    APIS,
    Step,
    ToolCall,
    Usage,
    cost,
    decode,
    encode_response,
    eventstream,
    sse,
)

# one request per api: the URL and body an SDK sends, asking for a stream or not
MODELS = {
    "anthropic.messages": "sim-claude",
    "openai.chat": "sim-gpt",
    "openai.responses": "sim-gpt",
    "gemini.generate": "sim-gemini",
    "bedrock.invoke": "anthropic.sim-claude-v1",
    "bedrock.converse": "anthropic.sim-claude-v1",
}


def request(api: str, stream: bool) -> tuple[str, bytes]:
    host = "http://127.0.0.1:8765"
    model = MODELS[api]
    if api == "anthropic.messages":
        body = {
            "model": model,
            "max_tokens": 9,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        }
        return f"{host}/v1/messages", json.dumps(body).encode()
    if api == "openai.chat":
        return f"{host}/v1/chat/completions", json.dumps(
            {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        ).encode()
    if api == "openai.responses":
        return f"{host}/v1/responses", json.dumps(
            {"model": model, "input": "hi", "stream": stream}
        ).encode()
    if api == "gemini.generate":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{host}/v1beta/models/{model}:{method}", json.dumps(
            {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        ).encode()
    operation = {
        "bedrock.invoke": ("invoke", "invoke-with-response-stream"),
        "bedrock.converse": ("converse", "converse-stream"),
    }[api][stream]
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    return f"{host}/model/{model.replace(':', '%3A')}/{operation}", json.dumps(body).encode()


def roundtrip(step: Step, stream: bool) -> Step:
    url, body = request(step.api, stream)
    encoded = encode_response(step, stream=stream)
    return decode(
        "POST",
        url,
        [("content-type", "application/json")],
        body,
        encoded.status,
        encoded.headers,
        encoded.body,
    )


def response_fields(step: Step) -> dict[str, object]:
    return {
        "model": step.model,
        "text": step.text,
        "tool_calls": step.tool_calls,
        "stop_reason": step.stop_reason,
        "usage": step.usage,
        "response_id": step.response_id,
        "created": step.created,
    }


def make(api: str, **fields: object) -> Step:
    base: dict[str, object] = {
        "provider": api.split(".")[0],
        "api": api,
        "model": MODELS[api],
        "response_id": "r-42",
    }
    if api.startswith("openai."):
        base["created"] = 1_767_225_600  # only OpenAI stamps a time on its responses
    base.update(fields)
    return Step(**base)  # type: ignore[arg-type]


CACHE_WRITES = {"anthropic.messages", "bedrock.invoke", "bedrock.converse"}
CASES = {
    "text": {
        "text": "Hello, world! A few words to stream in pieces.",
        "stop_reason": "end_turn",
        "usage": Usage(11, 7),
    },
    "tools": {
        "text": "Checking.",
        "tool_calls": [
            ToolCall(
                "call_a", "search", {"q": "ünïcödé ✓", "n": 3, "nested": {"list": [1, None, True]}}
            ),
            ToolCall("call_b", "noop", {}),
        ],
        "stop_reason": "tool_use",
        "usage": Usage(100, 20, cache_read_tokens=50),
    },
    "tool only": {
        "tool_calls": [ToolCall("call_c", "f", {"x": "y" * 80})],
        "stop_reason": "tool_use",
        "usage": Usage(5, 5),
    },
    "max tokens": {"text": "cut off mid", "stop_reason": "max_tokens", "usage": Usage(3, 4)},
    "empty": {"stop_reason": "end_turn"},
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("api", APIS)
def test_response_fields_roundtrip(api: str, case: str, stream: bool) -> None:
    step = make(api, **copy.deepcopy(CASES[case]))
    if api in CACHE_WRITES and case == "tools":
        step.usage.cache_write_tokens = 9  # only Anthropic-style usage reports cache writes
    back = roundtrip(step, stream)
    assert response_fields(back) == response_fields(step)
    assert back.status == 200 and back.stream is stream
    assert back.cost_usd is not None and back.cost_usd == pytest.approx(cost(step))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", APIS)
def test_malformed_tool_arguments_survive_verbatim(api: str, stream: bool) -> None:
    # a model can emit arguments that are not JSON; a fork can inject them on purpose
    call = ToolCall("call_x", "f", {}, raw_arguments='{"city": "Par')
    back = roundtrip(make(api, tool_calls=[call], stop_reason="tool_use"), stream)
    assert back.tool_calls == [call]


@pytest.mark.parametrize("api", APIS)
def test_stream_chunks_are_single_frames(api: str) -> None:
    encoded = encode_response(make(api, **copy.deepcopy(CASES["tools"])), stream=True)
    assert len(encoded.chunks) > 1
    if api.startswith("bedrock."):
        assert dict(encoded.headers)["content-type"] == "application/vnd.amazon.eventstream"
        assert all(len(eventstream.parse(chunk)) == 1 for chunk in encoded.chunks)
    else:
        assert dict(encoded.headers)["content-type"].startswith("text/event-stream")
        assert all(len(sse.parse(chunk)) == 1 for chunk in encoded.chunks)


@pytest.mark.parametrize("api", APIS)
def test_json_response_is_one_json_chunk(api: str) -> None:
    encoded = encode_response(make(api, **copy.deepcopy(CASES["text"])), stream=False)
    assert encoded.status == 200
    assert dict(encoded.headers)["content-type"] == "application/json"
    assert len(encoded.chunks) == 1 and isinstance(json.loads(encoded.body), dict)


def test_encoding_is_deterministic() -> None:
    for api in APIS:
        step = make(api, **copy.deepcopy(CASES["tools"]))
        assert encode_response(step, stream=True) == encode_response(step, stream=True)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("api", APIS)
def test_error_step_encodes_as_the_provider_error(api: str, stream: bool) -> None:
    step = make(api, stop_reason="error", text="overloaded, try later", status=503)
    encoded = encode_response(step, stream=stream)
    assert encoded.status == 503
    back = roundtrip(step, stream)
    assert (back.stop_reason, back.text, back.status) == ("error", "overloaded, try later", 503)
