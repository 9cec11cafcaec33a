"""OpenAI Chat Completions (``POST /v1/chat/completions``), JSON and SSE ending in ``[DONE]``."""

from __future__ import annotations

import re
from typing import Any

from . import _json, _openai, _pieces, sse
from ._codec import Codec, EncodedResponse, Headers, json_response
from ._step import Message, Step, ToolResult, ToolSpec, Usage
from ._turns import join, latest_tool_results
from .errors import CodecError

API = "openai.chat"

_STOP_IN = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "content_filter",
}
_STOP_OUT = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "content_filter": "content_filter",
}


def _stop_in(value: Any) -> str:
    return _STOP_IN.get(value, value) if isinstance(value, str) else ""


def _stop_out(step: Step) -> str:
    reason = step.stop_reason or ("tool_use" if step.tool_calls else "end_turn")
    return _STOP_OUT.get(reason, reason)


# --- request ---------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Text of a string content or of a list of parts (images and audio carry no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return join([p.get("text", "") for p in content if p.get("type") in ("text", "input_text")])
    return ""


def _message(raw: dict[str, Any]) -> Message:
    role = raw["role"]
    text = _content_text(raw.get("content"))
    if role in ("tool", "function"):
        call_id = raw.get("tool_call_id") or raw.get("name", "")
        return Message(role="tool", tool_results=[ToolResult(call_id, text)])
    message = Message(role="system" if role == "developer" else role, text=text)
    for call in raw.get("tool_calls") or []:
        function = call.get("function") or {}
        message.tool_calls.append(
            _json.call(call["id"], function.get("name", ""), function.get("arguments", ""))
        )
    if raw.get("function_call"):
        function = raw["function_call"]
        message.tool_calls.append(
            _json.call("", function.get("name", ""), function.get("arguments", ""))
        )
    return message


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    functions = [t["function"] for t in body.get("tools", []) if t.get("type") == "function"]
    functions += body.get("functions", [])  # the deprecated form
    return [
        ToolSpec(f["name"], f.get("description", ""), f.get("parameters", {})) for f in functions
    ]


def decode_request(url: str, body: dict[str, Any]) -> Step:
    messages = [_message(m) for m in body.get("messages", [])]
    return Step(
        provider="openai",
        api=API,
        model=str(body.get("model", "")),
        stream=is_stream(url, body),
        system=join([m.text for m in messages if m.role == "system"]),
        messages=messages,
        tools=_tools(body),
        tool_results=latest_tool_results(messages),
    )


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return body.get("stream") is True


# --- response --------------------------------------------------------------------------------


def _usage_in(raw: dict[str, Any]) -> Usage:
    cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(
        input_tokens=_openai.uncached(raw.get("prompt_tokens"), cached),
        output_tokens=raw.get("completion_tokens") or 0,
        cache_read_tokens=cached,
    )


def _response_text(content: Any) -> str:
    """Message or delta content as text: a string, or (as OpenAI-compatible servers such as
    Mistral's send it) a list of typed parts whose text parts are joined."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    raise CodecError(f"content is JSON {type(content).__name__}, not text or a list of parts")


def _fill_common(step: Step, raw: dict[str, Any]) -> None:
    step.response_id = raw.get("id") or step.response_id
    step.model = raw.get("model") or step.model
    step.created = raw.get("created") or step.created
    if raw.get("usage"):
        step.usage = _usage_in(raw["usage"])


def _fill_completion(step: Step, completion: dict[str, Any]) -> None:
    _fill_common(step, completion)
    choice = completion["choices"][0]
    message = choice["message"]
    step.text = _response_text(message.get("content")) or message.get("refusal") or ""
    for call in message.get("tool_calls") or []:
        function = call["function"]
        step.tool_calls.append(
            _json.call(call["id"], function["name"], function.get("arguments", ""))
        )
    step.stop_reason = _stop_in(choice.get("finish_reason"))


def _fill_stream(step: Step, events: list[sse.Event]) -> None:
    texts: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    done = False
    for number, event in enumerate(events, start=1):
        if event.data.startswith("[DONE]"):
            done = True
            break
        chunk = _json.load_object(event.data, f"SSE event {number} data")
        _fill_common(step, chunk)  # an error chunk may carry the usage billed so far
        if chunk.get("error"):
            error = chunk["error"]
            step.stop_reason, step.error_type = (
                "error",
                str(error.get("code") or error.get("type") or ""),  # OpenRouter: an HTTP status
            )
            step.text = error.get("message", "")
            return
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            texts.append(_response_text(delta.get("content")))
            for part in delta.get("tool_calls") or []:
                # the first fragment of a call carries its id and name, later ones argument text
                call = calls.setdefault(
                    part.get("index", 0), {"id": "", "name": "", "arguments": ""}
                )
                function = part.get("function") or {}
                call["id"] = part.get("id") or call["id"]
                call["name"] = function.get("name") or call["name"]
                call["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                step.stop_reason = _stop_in(choice["finish_reason"])
    if not done:
        raise CodecError(f"stream ended before data: [DONE] (after {len(events)} events)")
    step.text = "".join(texts)
    step.tool_calls = [
        _json.call(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())
    ]


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    if framed:
        _fill_stream(step, sse.parse(body))
    else:
        _fill_completion(step, _json.load_object(body, "response body"))


# --- encoding --------------------------------------------------------------------------------


def _usage_out(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _envelope(step: Step, kind: str) -> dict[str, Any]:
    return {"id": step.response_id, "object": kind, "created": step.created, "model": step.model}


def _completion(step: Step) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        # content is null beside tool calls, as the API sends it
        "content": step.text if step.text or not step.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if step.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _json.arguments_text(c)},
            }
            for c in step.tool_calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": _stop_out(step)}
    return {
        **_envelope(step, "chat.completion"),
        "choices": [choice],
        "usage": _usage_out(step.usage),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def _chunks(step: Step) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            **_envelope(step, "chat.completion.chunk"),
            "system_fingerprint": None,
            "choices": [choice],
        }

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in _pieces.words(step.text)]
    for index, call in enumerate(step.tool_calls):
        head = {
            "index": index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in _pieces.slices(_json.arguments_text(call))
        ]
    chunks.append(chunk({}, _stop_out(step)))
    # the usage chunk of stream_options.include_usage: no choices, just the totals
    chunks.append(
        {**_envelope(step, "chat.completion.chunk"), "choices": [], "usage": _usage_out(step.usage)}
    )
    return chunks


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    if not stream:
        return json_response(_json.dump(_completion(step)))
    chunks = [sse.build(_json.dumps(c)) for c in _chunks(step)]
    chunks.append(sse.build("[DONE]"))
    return EncodedResponse(200, [("content-type", "text/event-stream; charset=utf-8")], chunks)


CODEC = Codec(
    api=API,
    provider="openai",
    path=re.compile(r"/chat/completions$"),
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=_openai.decode_error,
    encode_response=encode_response,
    encode_error=_openai.encode_error,
)
