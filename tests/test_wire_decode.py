"""Decoding provider bytes written as the providers send them (not built by our encoders)."""

from __future__ import annotations

import base64
import json

import pytest

from seamtape.wire import Step, ToolCall, Usage, decode, eventstream

SSE = [("content-type", "text/event-stream; charset=utf-8")]
JSON = [("content-type", "application/json; charset=UTF-8")]
EVENTS = [("content-type", "application/vnd.amazon.eventstream"), ("x-amzn-RequestId", "8d4c1b9e")]


def sse(*events: tuple[str | None, object]) -> bytes:
    out = b""
    for name, data in events:
        line = data if isinstance(data, str) else json.dumps(data)
        out += (f"event: {name}\n" if name else "").encode() + f"data: {line}\n\n".encode()
    return out


def anthropic(body: bytes, headers: list[tuple[str, str]] = SSE) -> Step:
    request = json.dumps(
        {"model": "claude-haiku-4-5", "max_tokens": 9, "stream": True, "messages": []}
    ).encode()
    return decode("POST", "https://api.anthropic.com/v1/messages", [], request, 200, headers, body)


def test_anthropic_stream_with_ping_and_split_tool_json() -> None:
    body = sse(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-haiku-4-5-20251001",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 472,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 100,
                        "output_tokens": 2,
                    },
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Okay"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": ", checking."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {
                    "type": "input_json_delta",
                    "partial_json": 'ncisco, CA", "unit": "fahrenheit"}',
                },
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    )
    step = anthropic(body)
    assert step.text == "Okay, checking."
    assert step.tool_calls == [
        ToolCall("toolu_01", "get_weather", {"location": "San Francisco, CA", "unit": "fahrenheit"})
    ]
    assert (step.stop_reason, step.response_id, step.model) == (
        "tool_use",
        "msg_01",
        "claude-haiku-4-5-20251001",
    )
    # message_delta gave only output_tokens: the input counts of message_start stand
    assert step.usage == Usage(472, 89, cache_read_tokens=100)
    assert step.cost_usd == pytest.approx((472 * 1.0 + 89 * 5.0 + 100 * 0.1) / 1e6)


def test_anthropic_error_event_mid_stream() -> None:
    body = sse(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_02",
                    "model": "claude-haiku-4-5",
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        ),
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    )
    step = anthropic(body)
    assert (step.stop_reason, step.error_type, step.text, step.status) == (
        "error",
        "overloaded_error",
        "Overloaded",
        200,
    )


def chat(body: bytes) -> Step:
    request = json.dumps(
        {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    return decode("POST", "https://api.openai.com/v1/chat/completions", [], request, 200, SSE, body)


def test_openai_chat_stream_reassembles_parallel_tool_calls() -> None:
    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {
            "id": "chatcmpl-9",
            "object": "chat.completion.chunk",
            "created": 1727000000,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_1",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            "usage": None,
        }

    body = sse(
        (
            None,
            chunk(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_A",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ],
                }
            ),
        ),
        (None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]})),
        (
            None,
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "call_B",
                            "type": "function",
                            "function": {"name": "time", "arguments": ""},
                        }
                    ]
                }
            ),
        ),
        (None, chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]})),
        (None, chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})),
        (None, chunk({}, "tool_calls")),
        (
            None,
            {
                "id": "chatcmpl-9",
                "object": "chat.completion.chunk",
                "created": 1727000000,
                "model": "gpt-4o-2024-08-06",
                "choices": [],
                "usage": {
                    "prompt_tokens": 80,
                    "completion_tokens": 30,
                    "total_tokens": 110,
                    "prompt_tokens_details": {"cached_tokens": 64},
                },
            },
        ),
        (None, "[DONE]"),
    )
    step = chat(body)
    assert step.tool_calls == [
        ToolCall("call_A", "weather", {"city": "Oslo"}),
        ToolCall("call_B", "time", {}),
    ]
    assert (step.text, step.stop_reason, step.response_id, step.created) == (
        "",
        "tool_use",
        "chatcmpl-9",
        1727000000,
    )
    assert step.usage == Usage(input_tokens=16, output_tokens=30, cache_read_tokens=64)
    assert step.model == "gpt-4o-2024-08-06" and step.cost_usd == pytest.approx(
        (16 * 2.5 + 30 * 10 + 64 * 1.25) / 1e6
    )


def test_openai_chat_stream_error_chunk() -> None:
    body = sse(
        (
            None,
            {"error": {"message": "The server had an error", "type": "server_error", "code": None}},
        )
    )
    step = chat(body)
    assert (step.stop_reason, step.error_type, step.text) == (
        "error",
        "server_error",
        "The server had an error",
    )


def test_openai_responses_stream_whose_terminal_event_omits_output() -> None:
    request = json.dumps({"model": "gpt-5", "input": "hi", "stream": True}).encode()
    base = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1760000000,
        "model": "gpt-5-2025-08-07",
        "output": [],
    }
    body = sse(
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**base, "status": "in_progress"},
            },
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "status": "in_progress",
                    "content": [],
                },
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 2,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hel",
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 3,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "lo",
            },
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 4,
                "output_index": 1,
                "item": {
                    "id": "fc_1",
                    "type": "function_call",
                    "call_id": "call_9",
                    "name": "f",
                    "arguments": "",
                    "status": "in_progress",
                },
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 5,
                "item_id": "fc_1",
                "output_index": 1,
                "delta": '{"x":',
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 6,
                "item_id": "fc_1",
                "output_index": 1,
                "delta": " [1, 2]}",
            },
        ),
        (
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": 7,
                "response": {
                    **base,
                    "status": "completed",
                    "output": None,
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 4,
                        "input_tokens_details": {"cached_tokens": 0},
                    },
                },
            },
        ),
    )
    step = decode("POST", "https://api.openai.com/v1/responses", [], request, 200, SSE, body)
    assert (step.text, step.stop_reason, step.response_id, step.created) == (
        "Hello",
        "tool_use",
        "resp_1",
        1760000000,
    )
    assert step.tool_calls == [ToolCall("call_9", "f", {"x": [1, 2]})]
    assert step.usage == Usage(10, 4)
    # a dated snapshot is priced as its alias, gpt-5: 10 input and 4 output tokens
    assert step.cost_usd == pytest.approx((10 * 1.25 + 4 * 10.0) / 1_000_000)


def gemini(url_method: str, headers: list[tuple[str, str]], body: bytes) -> Step:
    request = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    url = f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:{url_method}"
    return decode("POST", url, [], request, 200, headers, body)


def test_gemini_json_array_stream_skips_thoughts_and_bills_them() -> None:
    chunks = [
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "pondering", "thought": True}]},
                    "index": 0,
                }
            ],
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        },
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "It is "}]}, "index": 0}
            ],
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        },
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "sunny."}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 20,
                "candidatesTokenCount": 4,
                "thoughtsTokenCount": 30,
                "totalTokenCount": 54,
            },
            "modelVersion": "gemini-2.5-flash",
            "responseId": "abc",
        },
    ]
    step = gemini("streamGenerateContent", JSON, json.dumps(chunks).encode())
    assert (step.text, step.stop_reason, step.response_id, step.stream) == (
        "It is sunny.",
        "end_turn",
        "abc",
        True,
    )
    assert step.usage == Usage(20, 34)


def test_gemini_blocked_prompt_is_a_content_filter_stop() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
        "modelVersion": "gemini-2.5-flash",
    }
    step = gemini("generateContent", JSON, json.dumps(body).encode())
    assert (step.text, step.stop_reason, step.usage) == ("", "content_filter", Usage(7, 0))


def test_gemini_sse_with_crlf_and_function_call() -> None:
    body = b'data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}], "role": "model"}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}, "modelVersion": "gemini-2.5-flash", "responseId": "r"}\r\n\r\n'
    step = gemini("streamGenerateContent?alt=sse", [("content-type", "text/event-stream")], body)
    assert (step.tool_calls, step.stop_reason) == ([ToolCall("", "f", {"a": 1})], "tool_use")


def event(kind: str, payload: dict[str, object]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return eventstream.build(headers, json.dumps(payload).encode())


def converse(body: bytes) -> Step:
    request = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-lite-v1%3A0/converse-stream"
    return decode("POST", url, [], request, 200, EVENTS, body)


def test_bedrock_converse_stream_with_padding_fields() -> None:
    # Bedrock pads every event with a "p" field of varying length against traffic analysis
    body = b"".join(
        [
            event("messageStart", {"p": "abcdefghijk", "role": "assistant"}),
            event(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Sure"}, "p": "abc"}
            ),
            event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcdefgh"}),
            event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "f"}},
                    "p": "ab",
                },
            ),
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"q":'}}, "p": "a"},
            ),
            event(
                "contentBlockDelta",
                {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"x"}'}}, "p": "a"},
            ),
            event("contentBlockStop", {"contentBlockIndex": 1, "p": "abcd"}),
            event("messageStop", {"stopReason": "tool_use", "p": "abcdef"}),
            event(
                "metadata",
                {
                    "usage": {"inputTokens": 1000, "outputTokens": 100, "totalTokens": 1100},
                    "metrics": {"latencyMs": 420},
                    "p": "ab",
                },
            ),
        ]
    )
    step = converse(body)
    assert (step.text, step.stop_reason, step.response_id, step.model) == (
        "Sure",
        "tool_use",
        "8d4c1b9e",
        "amazon.nova-lite-v1:0",
    )
    assert step.tool_calls == [ToolCall("tooluse_1", "f", {"q": "x"})]
    assert step.usage == Usage(1000, 100)
    assert step.cost_usd == pytest.approx((1000 * 0.06 + 100 * 0.24) / 1e6)


def test_bedrock_exception_inside_a_stream() -> None:
    exception = eventstream.build(
        {
            ":exception-type": "throttlingException",
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        b'{"message":"Too many tokens, please wait before trying again."}',
    )
    step = converse(event("messageStart", {"role": "assistant"}) + exception)
    assert (step.stop_reason, step.error_type, step.text) == (
        "error",
        "ThrottlingException",
        "Too many tokens, please wait before trying again.",
    )


def test_bedrock_invoke_stream_of_base64_anthropic_events() -> None:
    def chunk(payload: dict[str, object]) -> bytes:
        return event(
            "chunk", {"bytes": base64.b64encode(json.dumps(payload).encode()).decode(), "p": "abc"}
        )

    body = b"".join(
        [
            chunk(
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_bdrk_01",
                        "model": "claude-3-5-haiku-20241022",
                        "usage": {"input_tokens": 12, "output_tokens": 1},
                    },
                }
            ),
            chunk(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                }
            ),
            chunk(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hi!"},
                }
            ),
            chunk({"type": "content_block_stop", "index": 0}),
            chunk(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 3},
                }
            ),
            chunk(
                {
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": 12,
                        "outputTokenCount": 3,
                    },
                }
            ),
        ]
    )
    request = json.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, "messages": []}
    ).encode()
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream"
    step = decode("POST", url, [], request, 200, EVENTS, body)
    # the billed model is the Bedrock id of the URL, not the Anthropic name inside the body
    assert (step.model, step.text, step.stop_reason, step.response_id) == (
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "Hi!",
        "end_turn",
        "msg_bdrk_01",
    )
    assert step.usage == Usage(12, 3) and step.cost_usd == pytest.approx((12 * 0.8 + 3 * 4.0) / 1e6)
