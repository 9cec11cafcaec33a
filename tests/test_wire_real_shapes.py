"""Provider bytes the codecs once misread, written as the real APIs send them.

Each case is shaped after a public test cassette recorded against the real service: server-side
tools, a background response not yet finished, a request shape the API accepts beyond its
reference, list-shaped content from an OpenAI-compatible server, usage on an error chunk.
"""

from __future__ import annotations

import json

from seamtape.wire import Step, ToolCall, Usage, decode, eventstream

SSE = [("content-type", "text/event-stream")]
JSON = [("content-type", "application/json")]
EVENTS = [("content-type", "application/vnd.amazon.eventstream")]


def _event(kind: str, payload: dict[str, object]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return eventstream.build(headers, json.dumps(payload).encode())


def _sse(*chunks: object) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


# -- server-side tools are not the agent's tool calls ------------------------------------------


def test_bedrock_converse_stream_server_tool_is_not_a_client_call() -> None:
    """Nova web grounding over ConverseStream: a server toolUse, then its toolResult block."""
    body = b"".join(
        [
            _event("messageStart", {"role": "assistant"}),
            _event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 0,
                    "start": {
                        "toolUse": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "name": "nova_grounding",
                            "type": "server_tool_use",
                        }
                    },
                },
            ),
            _event(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"toolUse": {"input": '{"query":"Lisbon"}'}}},
            ),
            _event("contentBlockStop", {"contentBlockIndex": 0}),
            _event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {
                        "toolResult": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "type": "nova_grounding",
                            "status": "success",
                        }
                    },
                },
            ),
            _event(
                "contentBlockDelta",
                {
                    "contentBlockIndex": 1,
                    "delta": {"toolResult": [{"json": {"results": [{"url": "https://x"}]}}]},
                },
            ),
            _event("contentBlockStop", {"contentBlockIndex": 1}),
            _event("contentBlockDelta", {"contentBlockIndex": 2, "delta": {"text": "Mild, 18C."}}),
            _event("contentBlockStop", {"contentBlockIndex": 2}),
            _event("messageStop", {"stopReason": "end_turn"}),
            _event(
                "metadata",
                {"usage": {"inputTokens": 20, "outputTokens": 9}, "metrics": {"latencyMs": 1}},
            ),
        ]
    )
    request = json.dumps({"messages": [{"role": "user", "content": [{"text": "weather"}]}]})
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-premier-v1%3A0/converse-stream"
    step = decode("POST", url, [], request.encode(), 200, EVENTS, body)
    assert step.tool_calls == []
    assert step.server_tool_calls == [
        ToolCall("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "nova_grounding", {"query": "Lisbon"})
    ]
    assert (step.text, step.stop_reason) == ("Mild, 18C.", "end_turn")


def test_bedrock_converse_json_server_tool_and_result_stay_apart() -> None:
    body = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "t1",
                            "name": "nova_grounding",
                            "type": "server_tool_use",
                            "input": {"query": "Lisbon"},
                        }
                    },
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "type": "nova_grounding",
                            "content": [{"text": "..."}],
                        }
                    },
                    {"text": "Mild."},
                ],
            }
        },
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
    }
    request = json.dumps({"messages": [{"role": "user", "content": [{"text": "weather"}]}]})
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.amazon.nova-premier-v1%3A0/converse"
    step = decode("POST", url, [], request.encode(), 200, JSON, json.dumps(body).encode())
    assert step.tool_calls == [] and [c.name for c in step.server_tool_calls] == ["nova_grounding"]
    assert step.text == "Mild."


def test_anthropic_web_search_is_a_server_tool_call() -> None:
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {
                "type": "server_tool_use",
                "id": "srvtoolu_01",
                "name": "web_search",
                "input": {"query": "Lisbon weather"},
            },
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
            {"type": "text", "text": "Mild."},
        ],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "server_tool_use": {"web_search_requests": 1},
        },
    }
    request = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": []}).encode()
    step = decode(
        "POST",
        "https://api.anthropic.com/v1/messages",
        [],
        request,
        200,
        JSON,
        json.dumps(body).encode(),
    )
    assert step.tool_calls == []
    assert step.server_tool_calls == [
        ToolCall("srvtoolu_01", "web_search", {"query": "Lisbon weather"})
    ]


def test_openai_responses_web_search_call_is_a_server_tool_call() -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1741476542,
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {
                "type": "web_search_call",
                "id": "ws_67c9fa0502748190b7dd390736892e100be649c1a5ff9609",
                "status": "completed",
                "action": {"type": "search", "query": "Lisbon weather"},
            },
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Mild.", "annotations": []}],
            },
        ],
        "usage": {"input_tokens": 328, "output_tokens": 356, "total_tokens": 684},
    }
    request = json.dumps(
        {"model": "gpt-4.1", "input": "weather?", "tools": [{"type": "web_search"}]}
    )
    step = decode(
        "POST",
        "https://api.openai.com/v1/responses",
        [],
        request.encode(),
        200,
        JSON,
        json.dumps(body).encode(),
    )
    assert step.tool_calls == [] and [c.name for c in step.server_tool_calls] == ["web_search"]
    assert (step.text, step.stop_reason) == ("Mild.", "end_turn")


# -- an unfinished response is not a finished turn ---------------------------------------------


def test_openai_responses_queued_background_response_is_not_end_turn() -> None:
    body = {
        "id": "resp_68a8",
        "object": "response",
        "created_at": 1755868500,
        "status": "queued",
        "background": True,
        "model": "o3-deep-research-2025-06-26",
        "output": [],
        "usage": None,
    }
    request = json.dumps({"model": "o3-deep-research", "input": "research", "background": True})
    step = decode(
        "POST",
        "https://api.openai.com/v1/responses",
        [],
        request.encode(),
        200,
        JSON,
        json.dumps(body).encode(),
    )
    assert step.stop_reason == "queued"
    assert step.stop_reason not in ("end_turn", "tool_use")


# -- request shapes the API accepts --------------------------------------------------------------


def test_gemini_request_tools_as_one_object_with_snake_case_keys() -> None:
    request = {
        "contents": [{"role": "user", "parts": [{"text": "weather in Lisbon?"}]}],
        "tools": {
            "function_declarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                }
            ]
        },
    }
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Lisbon"}}}
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5},
        "modelVersion": "gemini-2.0-flash",
    }
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    step = decode(
        "POST", url, [], json.dumps(request).encode(), 200, JSON, json.dumps(response).encode()
    )
    assert [t.name for t in step.tools] == ["get_weather"]
    assert step.tool_calls == [ToolCall("", "get_weather", {"city": "Lisbon"})]


# -- OpenAI-compatible servers -----------------------------------------------------------------


def _chat(body: bytes, model: str = "mistral-medium-latest") -> Step:
    request = json.dumps({"model": model, "stream": True, "messages": []}).encode()
    return decode("POST", "https://api.mistral.ai/v1/chat/completions", [], request, 200, SSE, body)


def test_mistral_list_shaped_content_deltas() -> None:
    """Magistral streams content as a list of typed parts: thinking, then text."""
    base = {
        "id": "cmpl-1",
        "object": "chat.completion.chunk",
        "created": 1750000000,
        "model": "magistral-medium-2506",
    }
    body = _sse(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        },
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "content": [
                            {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}
                        ]
                    },
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": [{"type": "text", "text": "Mild"}]},
                    "finish_reason": None,
                }
            ],
        },
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": ", 18C."}, "finish_reason": "stop"}],
        },
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        },
    )
    step = _chat(body)
    assert (step.text, step.stop_reason, step.usage) == ("Mild, 18C.", "end_turn", Usage(12, 8))


def test_usage_on_an_in_stream_error_chunk_is_kept() -> None:
    base = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1750000000,
        "model": "openai/gpt-4o",
    }
    body = _sse(
        {**base, "choices": [{"index": 0, "delta": {"content": "Mild"}, "finish_reason": None}]},
        {
            **base,
            "error": {"code": 502, "message": "Provider returned error"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43},
        },
    )
    request = json.dumps({"model": "openai/gpt-4o", "stream": True, "messages": []}).encode()
    step = decode(
        "POST", "https://openrouter.ai/api/v1/chat/completions", [], request, 200, SSE, body
    )
    assert step.stop_reason == "error" and step.text == "Provider returned error"
    assert step.usage == Usage(40, 3)


def test_gemini_usage_on_an_in_stream_error_chunk_is_kept() -> None:
    chunks = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Mild"}]}}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1},
        },
        {
            "error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"},
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 4},
        },
    ]
    body = b"".join(f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks)
    request = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    step = decode("POST", url, [], request, 200, SSE, body)
    assert step.stop_reason == "error" and step.usage == Usage(9, 4)
