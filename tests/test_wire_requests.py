"""decode_request reads what the agent sent: model, system, turns, tool schemas, tool results."""

from __future__ import annotations

import json

from seamtape.wire import Message, ToolCall, ToolResult, ToolSpec, decode_request

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def body(value: dict[str, object]) -> bytes:
    return json.dumps(value).encode()


def test_anthropic_request() -> None:
    step = decode_request(
        "anthropic.messages",
        "http://127.0.0.1:9/v1/messages",
        body(
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 100,
                "stream": True,
                "system": [
                    {"type": "text", "text": "Be brief."},
                    {"type": "text", "text": "Use tools."},
                ],
                "tools": [
                    {
                        "name": "weather",
                        "description": "Get weather",
                        "input_schema": WEATHER_SCHEMA,
                    },
                    {"type": "web_search_20250305", "name": "web_search"},
                ],
                "messages": [
                    {"role": "user", "content": "Weather in Oslo and Rome?"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "...", "signature": "s"},
                            {"type": "text", "text": "Checking."},
                            {
                                "type": "tool_use",
                                "id": "tu_1",
                                "name": "weather",
                                "input": {"city": "Oslo"},
                            },
                            {
                                "type": "tool_use",
                                "id": "tu_2",
                                "name": "weather",
                                "input": {"city": "Rome"},
                            },
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "tu_1", "content": "-3C"},
                            {
                                "type": "tool_result",
                                "tool_use_id": "tu_2",
                                "content": [{"type": "text", "text": "timeout"}],
                                "is_error": True,
                            },
                        ],
                    },
                ],
            }
        ),
    )
    assert (step.provider, step.api, step.model, step.stream) == (
        "anthropic",
        "anthropic.messages",
        "claude-sonnet-4-5",
        True,
    )
    assert step.system == "Be brief.\nUse tools."
    assert step.tools == [
        ToolSpec("weather", "Get weather", WEATHER_SCHEMA),
        ToolSpec("web_search"),
    ]
    assert step.messages[1] == Message(
        "assistant",
        "Checking.",
        [
            ToolCall("tu_1", "weather", {"city": "Oslo"}),
            ToolCall("tu_2", "weather", {"city": "Rome"}),
        ],
    )
    assert step.tool_results == [
        ToolResult("tu_1", "-3C"),
        ToolResult("tu_2", "timeout", is_error=True),
    ]


def test_openai_chat_request() -> None:
    step = decode_request(
        "openai.chat",
        "https://api.openai.com/v1/chat/completions",
        body(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Weather?"},
                            {"type": "image_url", "image_url": {"url": "x"}},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                            }
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "weather",
                            "description": "Get weather",
                            "parameters": WEATHER_SCHEMA,
                        },
                    }
                ],
            }
        ),
    )
    assert (step.model, step.stream, step.system) == ("gpt-4o", False, "Be brief.")
    assert [m.role for m in step.messages] == ["system", "user", "assistant", "tool"]
    assert step.messages[1].text == "Weather?"
    assert step.messages[2].tool_calls == [ToolCall("call_1", "weather", {"city": "Oslo"})]
    assert step.tools == [ToolSpec("weather", "Get weather", WEATHER_SCHEMA)]
    assert step.tool_results == [ToolResult("call_1", "-3C")]


def test_openai_responses_request() -> None:
    step = decode_request(
        "openai.responses",
        "https://api.openai.com/v1/responses",
        body(
            {
                "model": "gpt-5",
                "instructions": "Be brief.",
                "stream": True,
                "input": [
                    {"role": "user", "content": "Weather in Oslo and Rome?"},
                    {"type": "reasoning", "id": "rs_1", "summary": []},
                    {
                        "type": "function_call",
                        "call_id": "call_1",
                        "name": "weather",
                        "arguments": '{"city":"Oslo"}',
                    },
                    {
                        "type": "function_call",
                        "call_id": "call_2",
                        "name": "weather",
                        "arguments": '{"city":"Rome"}',
                    },
                    {"type": "function_call_output", "call_id": "call_1", "output": "-3C"},
                    {
                        "type": "function_call_output",
                        "call_id": "call_2",
                        "output": [{"type": "input_text", "text": "18C"}],
                    },
                ],
                "tools": [
                    {
                        "type": "function",
                        "name": "weather",
                        "description": "Get weather",
                        "parameters": WEATHER_SCHEMA,
                        "strict": True,
                    }
                ],
            }
        ),
    )
    assert (step.model, step.stream, step.system) == ("gpt-5", True, "Be brief.")
    assert [m.role for m in step.messages] == ["user", "assistant", "tool"]
    assert [c.id for c in step.messages[1].tool_calls] == ["call_1", "call_2"]
    assert step.tools == [ToolSpec("weather", "Get weather", WEATHER_SCHEMA)]
    assert step.tool_results == [ToolResult("call_1", "-3C"), ToolResult("call_2", "18C")]


def test_openai_responses_string_input() -> None:
    step = decode_request(
        "openai.responses", "http://h/v1/responses", body({"model": "gpt-5", "input": "hi"})
    )
    assert step.messages == [Message("user", "hi")]


def test_gemini_request_takes_the_model_from_the_url() -> None:
    step = decode_request(
        "gemini.generate",
        "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        body(
            {
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "Weather?"}]},
                    {
                        "role": "model",
                        "parts": [
                            {"text": "thinking", "thought": True},
                            {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                        ],
                    },
                    {
                        "role": "user",
                        "parts": [
                            {
                                "functionResponse": {
                                    "name": "weather",
                                    "response": {"output": "-3C"},
                                }
                            },
                            {
                                "functionResponse": {
                                    "id": "fc_2",
                                    "name": "weather",
                                    "response": {"error": {"code": 504}},
                                }
                            },
                        ],
                    },
                ],
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "name": "weather",
                                "description": "Get weather",
                                "parametersJsonSchema": WEATHER_SCHEMA,
                            }
                        ]
                    }
                ],
            }
        ),
    )
    assert (step.provider, step.model, step.stream, step.system) == (
        "gemini",
        "gemini-2.5-flash",
        True,
        "Be brief.",
    )
    assert [m.role for m in step.messages] == ["user", "assistant", "user"]
    assert step.messages[1] == Message("assistant", "", [ToolCall("", "weather", {"city": "Oslo"})])
    assert step.tools == [ToolSpec("weather", "Get weather", WEATHER_SCHEMA)]
    # without an id, a result names its function; Gemini's {"error": ...} convention sets the flag
    assert step.tool_results == [
        ToolResult("weather", "-3C"),
        ToolResult("fc_2", '{"code":504}', is_error=True),
    ]


def test_bedrock_invoke_request_is_anthropic_json_with_the_model_in_the_url() -> None:
    step = decode_request(
        "bedrock.invoke",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke-with-response-stream",
        body(
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 10,
                "system": "Be brief.",
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t1",
                                "content": "boom",
                                "is_error": True,
                            }
                        ],
                    }
                ],
            }
        ),
    )
    assert (step.provider, step.model, step.stream, step.system) == (
        "bedrock",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        True,
        "Be brief.",
    )
    assert step.tool_results == [ToolResult("t1", "boom", is_error=True)]


def test_bedrock_converse_request() -> None:
    step = decode_request(
        "bedrock.converse",
        "http://127.0.0.1:9/model/anthropic.sim-claude-v1/converse",
        body(
            {
                "system": [{"text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [{"text": "Weather?"}]},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "toolUse": {
                                    "toolUseId": "t1",
                                    "name": "weather",
                                    "input": {"city": "Oslo"},
                                }
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "toolResult": {
                                    "toolUseId": "t1",
                                    "content": [{"json": {"temp": -3}}],
                                    "status": "error",
                                }
                            },
                            {"text": "and?"},
                        ],
                    },
                ],
                "toolConfig": {
                    "tools": [
                        {
                            "toolSpec": {
                                "name": "weather",
                                "description": "Get weather",
                                "inputSchema": {"json": WEATHER_SCHEMA},
                            }
                        }
                    ]
                },
            }
        ),
    )
    assert (step.model, step.stream, step.system) == ("anthropic.sim-claude-v1", False, "Be brief.")
    assert step.messages[1].tool_calls == [ToolCall("t1", "weather", {"city": "Oslo"})]
    assert step.messages[2].text == "and?"
    assert step.tools == [ToolSpec("weather", "Get weather", WEATHER_SCHEMA)]
    assert step.tool_results == [ToolResult("t1", '{"temp":-3}', is_error=True)]


def test_tool_results_are_only_those_of_the_latest_turn() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "a", "content": "old"}],
        },
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "again"},
    ]
    step = decode_request(
        "anthropic.messages", "http://h/v1/messages", body({"model": "m", "messages": messages})
    )
    assert step.tool_results == []
