"""OpenAI Responses (``POST /v1/responses``), JSON and typed SSE events."""

from __future__ import annotations

import re
from typing import Any

from . import _json, _openai, _pieces, sse
from ._codec import Codec, EncodedResponse, Headers, json_response
from ._step import Message, Step, ToolCall, ToolResult, ToolSpec, Usage
from ._turns import join, latest_tool_results
from .errors import CodecError

API = "openai.responses"

_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
# normalized -> incomplete_details.reason; other stop reasons encode as a completed response
_INCOMPLETE = {"max_tokens": "max_output_tokens", "content_filter": "content_filter"}
_INCOMPLETE_IN = {v: k for k, v in _INCOMPLETE.items()}


# --- request ---------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return join(
            [
                p.get("text", "")
                for p in content
                if p.get("type") in ("input_text", "output_text", "text")
            ]
        )
    return ""


def _messages(items: Any) -> list[Message]:
    if isinstance(items, str):
        return [Message(role="user", text=items)]
    messages: list[Message] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append(Message(role=role, text=_content_text(item.get("content"))))
        elif kind == "function_call":
            # consecutive calls belong to one assistant turn
            if not messages or messages[-1].role != "assistant":
                messages.append(Message(role="assistant"))
            messages[-1].tool_calls.append(
                _json.call(item["call_id"], item["name"], item.get("arguments", ""))
            )
        elif kind == "function_call_output":
            if not messages or messages[-1].role != "tool":
                messages.append(Message(role="tool"))
            messages[-1].tool_results.append(
                ToolResult(item["call_id"], _content_text(item.get("output", "")))
            )
    return messages


# A background-mode response polled before it finished, or one cancelled before it did.
_UNFINISHED = ("queued", "in_progress", "cancelled")


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    # built-in tools (web_search, file_search, ...) have only a type
    return [
        ToolSpec(
            t.get("name", t.get("type", "")), t.get("description") or "", t.get("parameters") or {}
        )
        for t in body.get("tools", [])
    ]


def decode_request(url: str, body: dict[str, Any]) -> Step:
    messages = _messages(body.get("input", []))
    system = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    return Step(
        provider="openai",
        api=API,
        model=str(body.get("model", "")),
        stream=is_stream(url, body),
        system=join(system + [m.text for m in messages if m.role == "system"]),
        messages=messages,
        tools=_tools(body),
        tool_results=latest_tool_results(messages),
    )


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return body.get("stream") is True


# --- response --------------------------------------------------------------------------------


def _usage_in(raw: dict[str, Any]) -> Usage:
    cached = (raw.get("input_tokens_details") or {}).get("cached_tokens") or 0
    return Usage(
        input_tokens=_openai.uncached(raw.get("input_tokens"), cached),
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=cached,
    )


def _fill_response(step: Step, response: dict[str, Any]) -> None:
    step.response_id = response.get("id", "")
    step.model = response.get("model") or step.model
    step.created = int(response.get("created_at") or 0)
    step.usage = _usage_in(response.get("usage") or {})
    texts = []
    for item in response.get("output") or []:
        if item.get("type") == "message":
            for part in item.get("content") or []:
                texts.append(part.get("text") or part.get("refusal") or "")
        elif item.get("type") == "function_call":
            step.tool_calls.append(
                _json.call(item["call_id"], item["name"], item.get("arguments", ""))
            )
        elif str(item.get("type", "")).endswith("_call") and item["type"] != "custom_tool_call":
            # web_search_call, code_interpreter_call, mcp_call, ...: run by OpenAI itself
            step.server_tool_calls.append(
                _json.call(
                    item.get("id", ""), item["type"].removesuffix("_call"), item.get("action")
                )
            )
    step.text = "".join(texts)
    status = response.get("status")
    if status == "failed":
        error = response.get("error") or {}
        step.stop_reason, step.error_type, step.text = (
            "error",
            error.get("code", ""),
            error.get("message", ""),
        )
    elif status == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason", "")
        step.stop_reason = _INCOMPLETE_IN.get(reason, reason)
    elif status in _UNFINISHED:
        step.stop_reason = status  # a background response not yet done is no finished turn
    else:
        step.stop_reason = "tool_use" if step.tool_calls else "end_turn"


def _fill_stream(step: Step, events: list[sse.Event]) -> None:
    items: dict[int, dict[str, Any]] = {}
    for number, event in enumerate(events, start=1):
        data = _json.load_object(event.data, f"SSE event {number} data")
        kind = data.get("type")
        if kind == "error":
            step.stop_reason, step.error_type = "error", str(data.get("code") or "")
            step.text = data.get("message", "")
            return
        if kind in ("response.output_item.added", "response.output_item.done"):
            items[data["output_index"]] = dict(data["item"])
        elif kind == "response.output_text.delta":
            item = items[data["output_index"]]
            item.setdefault("_text", []).append(data["delta"])
        elif kind == "response.function_call_arguments.delta":
            item = items[data["output_index"]]
            item["arguments"] = item.get("arguments", "") + data["delta"]
        elif kind in _TERMINAL:
            response = dict(data["response"])
            # the terminal event normally repeats the whole output; if not, use what streamed
            if not response.get("output"):
                response["output"] = [_finished(items[i]) for i in sorted(items)]
            _fill_response(step, response)
            return
    raise CodecError(f"stream ended before response.completed (after {len(events)} events)")


def _finished(item: dict[str, Any]) -> dict[str, Any]:
    """An output item rebuilt from its deltas, for a terminal event that omits the output."""
    if "_text" in item and not item.get("content"):
        return {**item, "content": [{"type": "output_text", "text": "".join(item["_text"])}]}
    return item


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    if framed:
        _fill_stream(step, sse.parse(body))
    else:
        _fill_response(step, _json.load_object(body, "response body"))


# --- encoding --------------------------------------------------------------------------------


def _usage_out(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + usage.output_tokens,
    }


def _ids(step: Step) -> tuple[str, str]:
    """Deterministic output item ids derived from the response id."""
    base = step.response_id.removeprefix("resp_")
    return f"msg_{base}", f"fc_{base}"


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(step: Step, status: str) -> dict[str, Any]:
    content = [_text_part(step.text)] if status == "completed" else []
    return {
        "id": _ids(step)[0],
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(step: Step, index: int, call: ToolCall, status: str) -> dict[str, Any]:
    arguments = _json.arguments_text(call) if status == "completed" else ""
    return {
        "id": f"{_ids(step)[1]}_{index}",
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call.id,
        "name": call.name,
    }


def _output(step: Step) -> list[dict[str, Any]]:
    output = [_message_item(step, "completed")] if step.text else []
    return output + [_call_item(step, i, c, "completed") for i, c in enumerate(step.tool_calls)]


def _status(step: Step) -> tuple[str, dict[str, str] | None]:
    reason = _INCOMPLETE.get(step.stop_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def _response(step: Step, *, final: bool) -> dict[str, Any]:
    status, incomplete = _status(step) if final else ("in_progress", None)
    return {
        "id": step.response_id,
        "object": "response",
        "created_at": step.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": None,
        "max_output_tokens": None,
        "model": step.model,
        "output": _output(step) if final else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage_out(step.usage) if final else None,
        "user": None,
        "metadata": {},
    }


def _events(step: Step) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(step, final=False)},
        {"type": "response.in_progress", "response": _response(step, final=False)},
    ]
    index = 0
    if step.text:
        item_id = _ids(step)[0]
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": _message_item(step, "in_progress"),
            }
        )
        events.append({"type": "response.content_part.added", **where, "part": _text_part("")})
        events += [
            {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
            for piece in _pieces.words(step.text)
        ]
        events.append(
            {"type": "response.output_text.done", **where, "text": step.text, "logprobs": []}
        )
        events.append(
            {"type": "response.content_part.done", **where, "part": _text_part(step.text)}
        )
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": index,
                "item": _message_item(step, "completed"),
            }
        )
        index += 1
    for number, call in enumerate(step.tool_calls):
        added = _call_item(step, number, call, "in_progress")
        where = {"item_id": added["id"], "output_index": index}
        events.append({"type": "response.output_item.added", "output_index": index, "item": added})
        events += [
            {"type": "response.function_call_arguments.delta", **where, "delta": piece}
            for piece in _pieces.slices(_json.arguments_text(call))
        ]
        events.append(
            {
                "type": "response.function_call_arguments.done",
                **where,
                "name": call.name,
                "arguments": _json.arguments_text(call),
            }
        )
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": index,
                "item": _call_item(step, number, call, "completed"),
            }
        )
        index += 1
    final = _response(step, final=True)
    events.append({"type": f"response.{final['status']}", "response": final})
    return [{**e, "sequence_number": n} for n, e in enumerate(events)]


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    if not stream:
        return json_response(_json.dump(_response(step, final=True)))
    chunks = [sse.build(_json.dumps(e), e["type"]) for e in _events(step)]
    return EncodedResponse(200, [("content-type", "text/event-stream; charset=utf-8")], chunks)


CODEC = Codec(
    api=API,
    provider="openai",
    path=re.compile(r"/responses$"),
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=_openai.decode_error,
    encode_response=encode_response,
    encode_error=_openai.encode_error,
)
