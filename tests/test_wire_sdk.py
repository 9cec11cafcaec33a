"""The official SDKs parse what encode_response builds: text, tool calls, usage and ids agree."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import anthropic
import boto3
import httpx2
import openai
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from google import genai
from google.genai import types

from seamtape.wire import (
    EncodedResponse,
    Step,
    ToolCall,
    Usage,
    decode_request,
    detect,
    encode_error,
    encode_response,
)

BASE = "http://127.0.0.1:9"
CALLS = [
    ToolCall("call_1", "get_weather", {"city": "Zürich", "days": [1, 2], "units": {"temp": "C"}}),
    ToolCall("call_2", "lookup", {}),
]


def step(api: str, model: str, **overrides: object) -> Step:
    fields: dict[str, object] = {
        "provider": api.split(".")[0],
        "api": api,
        "model": model,
        "response_id": "resp_abc123",
        "text": "Let me check the weather — one moment, please. ☀️",
        "tool_calls": CALLS,
        "stop_reason": "tool_use",
        "usage": Usage(input_tokens=120, output_tokens=45, cache_read_tokens=30),
        "created": 1_767_225_600,
    }
    fields.update(overrides)
    return Step(**fields)  # type: ignore[arg-type]


def transport(response: EncodedResponse, seen: list[httpx2.Request]) -> httpx2.Client:
    """An httpx2 client whose every request gets ``response``, sent chunk by chunk."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            response.status, headers=response.headers, stream=_Chunks(response.chunks)
        )

    return httpx2.Client(transport=httpx2.MockTransport(handler))


class _Chunks(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


def assert_api(seen: list[httpx2.Request], api: str, model: str) -> None:
    """The SDK's own request is recognized: the api from its URL, the model from URL or body."""
    (request,) = seen
    assert detect(request.method, str(request.url)) == api
    assert decode_request(api, str(request.url), request.content).model == model


# --- Anthropic ---------------------------------------------------------------------------------


def anthropic_client(response: EncodedResponse, seen: list[httpx2.Request]) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="x", base_url=BASE, http_client=transport(response, seen), max_retries=0
    )


ASK = {"max_tokens": 256, "messages": [{"role": "user", "content": "weather?"}]}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_parses_message(stream: bool) -> None:
    expected = step(
        "anthropic.messages", "sim-claude", response_id="msg_01", usage=Usage(120, 45, 30, 12)
    )
    seen: list[httpx2.Request] = []
    client = anthropic_client(encode_response(expected, stream=stream), seen)
    if stream:
        with client.messages.stream(model="sim-claude", **ASK) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(model="sim-claude", **ASK)
    assert_api(seen, "anthropic.messages", "sim-claude")
    assert message.id == "msg_01"
    assert message.model == "sim-claude"
    assert [b.text for b in message.content if b.type == "text"] == [expected.text]
    assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == [
        (c.id, c.name, c.arguments) for c in CALLS
    ]
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (120, 45)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (30, 12)


def test_anthropic_sdk_raw_stream_text_deltas_join_to_text() -> None:
    expected = step("anthropic.messages", "sim-claude", tool_calls=[], stop_reason="end_turn")
    client = anthropic_client(encode_response(expected, stream=True), [])
    events = list(client.messages.create(model="sim-claude", stream=True, **ASK))
    deltas = [e.delta.text for e in events if e.type == "content_block_delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == expected.text
    assert events[-1].type == "message_stop"


def test_anthropic_sdk_raises_rate_limit_error() -> None:
    client = anthropic_client(encode_error("anthropic.messages", 429, "slow down"), [])
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="sim-claude", **ASK)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


# --- OpenAI ------------------------------------------------------------------------------------


def openai_client(response: EncodedResponse, seen: list[httpx2.Request]) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="x", base_url=f"{BASE}/v1", http_client=transport(response, seen), max_retries=0
    )


MESSAGES = [{"role": "user", "content": "weather?"}]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_parses_chat_completion(stream: bool) -> None:
    expected = step("openai.chat", "sim-gpt", response_id="chatcmpl-1")
    seen: list[httpx2.Request] = []
    client = openai_client(encode_response(expected, stream=stream), seen)
    if stream:
        with client.chat.completions.stream(model="sim-gpt", messages=MESSAGES) as events:
            completion = events.get_final_completion()
    else:
        completion = client.chat.completions.create(model="sim-gpt", messages=MESSAGES)
    assert_api(seen, "openai.chat", "sim-gpt")
    assert (completion.id, completion.model, completion.created) == (
        "chatcmpl-1",
        "sim-gpt",
        expected.created,
    )
    choice = completion.choices[0]
    assert choice.message.content == expected.text
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls
    ] == [(c.id, c.name, c.arguments) for c in CALLS]
    assert choice.finish_reason == "tool_calls"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (150, 45, 195)
    assert usage.prompt_tokens_details.cached_tokens == 30


@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_parses_response(stream: bool) -> None:
    expected = step("openai.responses", "sim-gpt")
    seen: list[httpx2.Request] = []
    client = openai_client(encode_response(expected, stream=stream), seen)
    if stream:
        with client.responses.stream(model="sim-gpt", input="weather?") as events:
            response = events.get_final_response()
    else:
        response = client.responses.create(model="sim-gpt", input="weather?")
    assert_api(seen, "openai.responses", "sim-gpt")
    assert (response.id, response.model, response.status) == ("resp_abc123", "sim-gpt", "completed")
    assert response.output_text == expected.text
    calls = [o for o in response.output if o.type == "function_call"]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        (c.id, c.name, c.arguments) for c in CALLS
    ]
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (150, 45, 195)
    assert usage.input_tokens_details.cached_tokens == 30


def test_openai_sdk_stream_of_response_events_is_typed() -> None:
    expected = step("openai.responses", "sim-gpt", tool_calls=[], stop_reason="max_tokens")
    client = openai_client(encode_response(expected, stream=True), [])
    events = list(client.responses.create(model="sim-gpt", input="weather?", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta") == expected.text
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, openai.RateLimitError),
        (400, openai.BadRequestError),
        (500, openai.InternalServerError),
    ],
)
def test_openai_sdk_raises_status_error(status: int, error: type[openai.APIStatusError]) -> None:
    client = openai_client(encode_error("openai.chat", status, "nope"), [])
    with pytest.raises(error) as caught:
        client.chat.completions.create(model="sim-gpt", messages=MESSAGES)
    assert caught.value.message == f"Error code: {status} - nope"
    assert caught.value.body["message"] == "nope"


# --- Gemini ------------------------------------------------------------------------------------


def gemini_client(response: EncodedResponse, seen: list[httpx2.Request]) -> genai.Client:
    options = types.HttpOptions(base_url=BASE, httpx_client=transport(response, seen))
    return genai.Client(api_key="x", http_options=options)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_sdk_parses_generate_content(stream: bool) -> None:
    expected = step("gemini.generate", "sim-gemini", response_id="gem-1")
    seen: list[httpx2.Request] = []
    client = gemini_client(encode_response(expected, stream=stream), seen)
    if stream:
        chunks = list(
            client.models.generate_content_stream(model="sim-gemini", contents="weather?")
        )
        assert len(chunks) > 1
        text = "".join(c.text or "" for c in chunks)
        calls = [fc for c in chunks for fc in c.function_calls or []]
        last = chunks[-1]
    else:
        last = client.models.generate_content(model="sim-gemini", contents="weather?")
        text, calls = last.text, last.function_calls
    assert_api(seen, "gemini.generate", "sim-gemini")
    assert text == expected.text
    assert [(c.id, c.name, c.args) for c in calls] == [(c.id, c.name, c.arguments) for c in CALLS]
    assert (last.response_id, last.model_version) == ("gem-1", "sim-gemini")
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    usage = last.usage_metadata
    assert (
        usage.prompt_token_count,
        usage.candidates_token_count,
        usage.cached_content_token_count,
    ) == (150, 45, 30)


def test_gemini_sdk_raises_client_error() -> None:
    client = gemini_client(encode_error("gemini.generate", 429, "quota"), [])
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(model="sim-gemini", contents="weather?")
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        429,
        "RESOURCE_EXHAUSTED",
        "quota",
    )


# --- Bedrock -----------------------------------------------------------------------------------


class _Raw:
    """The urllib3-like body botocore reads: ``stream()`` for event streams, ``read()`` else."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def stream(self, *args: object, **kwargs: object) -> Iterator[bytes]:
        yield from self.chunks

    def read(self, amt: int | None = None) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data

    def close(self) -> None:
        pass


def bedrock_client(
    response: EncodedResponse, on_request: Callable[[object], None] | None = None
) -> object:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        endpoint_url=BASE,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),  # an error is final
    )

    def send(request: object, **kwargs: object) -> AWSResponse:
        if on_request is not None:
            on_request(request)
        return AWSResponse(BASE, response.status, dict(response.headers), _Raw(response.chunks))

    client.meta.events.register("before-send.bedrock-runtime.*", send)
    return client


MODEL = "anthropic.sim-claude-v1"
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.sim-claude-v1:0"


def check_request(api: str, model: str) -> Callable[[object], None]:
    def check(request: object) -> None:
        url, body = request.url, request.body  # type: ignore[attr-defined]
        assert detect(request.method, url) == api  # type: ignore[attr-defined]
        assert (
            decode_request(api, url, body if isinstance(body, bytes) else body.encode()).model
            == model
        )

    return check


INVOKE_BODY = json.dumps(
    {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": MESSAGES}
)


@pytest.mark.parametrize("model", [MODEL, PROFILE])
def test_botocore_parses_invoke_model(model: str) -> None:
    expected = step("bedrock.invoke", model, response_id="msg_bdrk_1")
    client = bedrock_client(
        encode_response(expected, stream=False), check_request("bedrock.invoke", model)
    )
    result = client.invoke_model(modelId=model, body=INVOKE_BODY)  # type: ignore[attr-defined]
    message = json.loads(result["body"].read())
    assert result["contentType"] == "application/json"
    assert message["id"] == "msg_bdrk_1"
    assert [b["text"] for b in message["content"] if b["type"] == "text"] == [expected.text]
    assert [b["input"] for b in message["content"] if b["type"] == "tool_use"] == [
        c.arguments for c in CALLS
    ]


def test_botocore_parses_invoke_model_stream() -> None:
    expected = step("bedrock.invoke", MODEL)
    client = bedrock_client(
        encode_response(expected, stream=True), check_request("bedrock.invoke", MODEL)
    )
    result = client.invoke_model_with_response_stream(modelId=MODEL, body=INVOKE_BODY)  # type: ignore[attr-defined]
    events = [json.loads(e["chunk"]["bytes"]) for e in result["body"]]
    assert result["contentType"] == "application/json"
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    text = "".join(
        e["delta"]["text"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )
    assert text == expected.text
    assert events[-2]["usage"]["output_tokens"] == 45
    assert events[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 120


@pytest.mark.parametrize("stream", [False, True])
def test_botocore_parses_converse(stream: bool) -> None:
    expected = step("bedrock.converse", MODEL, response_id="req-1", usage=Usage(120, 45, 30, 12))
    api = "bedrock.converse"
    client = bedrock_client(encode_response(expected, stream=stream), check_request(api, MODEL))
    messages = [{"role": "user", "content": [{"text": "weather?"}]}]
    if stream:
        result = client.converse_stream(modelId=MODEL, messages=messages)  # type: ignore[attr-defined]
        events = list(result["stream"])
        text = "".join(
            e["contentBlockDelta"]["delta"].get("text", "")
            for e in events
            if "contentBlockDelta" in e
        )
        starts = [
            e["contentBlockStart"]["start"]["toolUse"] for e in events if "contentBlockStart" in e
        ]
        inputs: dict[int, str] = {}
        for e in events:
            if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]:
                index = e["contentBlockDelta"]["contentBlockIndex"]
                inputs[index] = (
                    inputs.get(index, "") + e["contentBlockDelta"]["delta"]["toolUse"]["input"]
                )
        calls = [
            (s["toolUseId"], s["name"], json.loads(i))
            for s, i in zip(starts, inputs.values(), strict=True)
        ]
        stop = next(e["messageStop"]["stopReason"] for e in events if "messageStop" in e)
        usage = events[-1]["metadata"]["usage"]
    else:
        result = client.converse(modelId=MODEL, messages=messages)  # type: ignore[attr-defined]
        content = result["output"]["message"]["content"]
        text = "".join(b["text"] for b in content if "text" in b)
        calls = [
            (b["toolUse"]["toolUseId"], b["toolUse"]["name"], b["toolUse"]["input"])
            for b in content
            if "toolUse" in b
        ]
        stop, usage = result["stopReason"], result["usage"]
        assert result["ResponseMetadata"]["RequestId"] == "req-1"
    assert text == expected.text
    assert calls == [(c.id, c.name, c.arguments) for c in CALLS]
    assert stop == "tool_use"
    assert (
        usage["inputTokens"],
        usage["outputTokens"],
        usage["cacheReadInputTokens"],
        usage["cacheWriteInputTokens"],
    ) == (120, 45, 30, 12)


def test_botocore_raises_throttling_exception() -> None:
    client = bedrock_client(encode_error("bedrock.converse", 429, "too many requests"))
    with pytest.raises(client.exceptions.ThrottlingException) as caught:  # type: ignore[attr-defined]
        client.converse(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])  # type: ignore[attr-defined]
    assert caught.value.response["Error"] == {
        "Code": "ThrottlingException",
        "Message": "too many requests",
    }
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
