"""Anthropic Messages (``POST /v1/messages``), JSON and SSE.

The message body and stream events are shared with Bedrock InvokeModel, which carries the same
JSON (see ``bedrock_invoke``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import _json, _pieces, sse
from ._codec import Codec, EncodedResponse, Headers, json_response
from ._step import Message, Step, ToolCall, ToolResult, ToolSpec, Usage
from ._turns import join, latest_tool_results
from .errors import CodecError

API = "anthropic.messages"

# normalized -> Anthropic; the normalized vocabulary is Anthropic's own, except refusals
_STOP_OUT = {"content_filter": "refusal"}
_STOP_IN = {v: k for k, v in _STOP_OUT.items()}

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def stop_in(value: Any) -> str:
    return _STOP_IN.get(value, value) if isinstance(value, str) else ""


def stop_out(step: Step) -> str:
    reason = step.stop_reason or ("tool_use" if step.tool_calls else "end_turn")
    return _STOP_OUT.get(reason, reason)


# --- request ---------------------------------------------------------------------------------


def _block_text(content: Any) -> str:
    """Text of a string or a list of content blocks (non-text blocks carry no text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return join([b.get("text", "") for b in content if b.get("type") == "text"])
    return ""


def _message(raw: dict[str, Any]) -> Message:
    message = Message(role=raw["role"])
    content = raw.get("content", "")
    if isinstance(content, str):
        message.text = content
        return message
    texts = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            message.tool_calls.append(_json.call(block["id"], block["name"], block.get("input")))
        elif kind == "tool_result":
            message.tool_results.append(
                ToolResult(
                    call_id=block["tool_use_id"],
                    content=_block_text(block.get("content", "")),
                    is_error=bool(block.get("is_error", False)),
                )
            )
    message.text = join(texts)
    return message


def fill_request(step: Step, body: dict[str, Any]) -> None:
    """Fill the request side of ``step`` from a Messages body (also Bedrock's)."""
    step.system = _block_text(body.get("system", ""))
    step.messages = [_message(m) for m in body.get("messages", [])]
    # server tools (web search, code execution) have a type and no input_schema
    step.tools = [
        ToolSpec(
            t.get("name", t.get("type", "")), t.get("description", ""), t.get("input_schema", {})
        )
        for t in body.get("tools", [])
    ]
    step.tool_results = latest_tool_results(step.messages)


def decode_request(url: str, body: dict[str, Any]) -> Step:
    step = Step(
        provider="anthropic", api=API, model=str(body.get("model", "")), stream=is_stream(url, body)
    )
    fill_request(step, body)
    return step


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return body.get("stream") is True


# --- response --------------------------------------------------------------------------------


_SERVER_CALLS = ("server_tool_use", "mcp_tool_use")


def usage_in(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=raw.get("input_tokens") or 0,
        output_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=raw.get("cache_read_input_tokens") or 0,
        cache_write_tokens=raw.get("cache_creation_input_tokens") or 0,
    )


def fill_message(step: Step, message: dict[str, Any]) -> None:
    """Fill the response side of ``step`` from a whole message object."""
    if not isinstance(message.get("content"), list):
        raise CodecError('response body is not a message: it has no "content" list')
    step.response_id = message.get("id", "")
    step.model = message.get("model") or step.model
    texts = []
    for block in message.get("content", []):
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            step.tool_calls.append(_json.call(block["id"], block["name"], block.get("input")))
        elif block.get("type") in _SERVER_CALLS:  # web search, code execution, MCP: run by the API
            step.server_tool_calls.append(
                _json.call(block.get("id", ""), block.get("name", ""), block.get("input"))
            )
    step.text = "".join(texts)
    step.stop_reason = stop_in(message.get("stop_reason"))
    step.usage = usage_in(message.get("usage") or {})


@dataclass
class StreamState:
    """Reassembles a message from its stream events, in order."""

    events: int = 0
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = field(default_factory=dict)
    stopped: bool = False
    error: tuple[str, str] | None = None

    def feed(self, data: dict[str, Any]) -> None:
        self.events += 1
        kind = data.get("type")
        if kind == "ping":
            return
        if kind == "error":
            error = data.get("error") or {}
            self.error = (error.get("type", ""), error.get("message", ""))
            return
        if self.message is None:
            if kind != "message_start":
                raise CodecError(f"stream began with {kind!r}, not message_start")
            self.message = dict(data["message"])
            self.message["content"] = []
            self.message["usage"] = dict(self.message.get("usage") or {})
            return
        block: dict[str, Any] | None
        if kind == "content_block_start":
            block = dict(data["content_block"])
            if block.get("type") in ("tool_use", *_SERVER_CALLS):
                block["partial_json"] = ""
            self.blocks[data["index"]] = block
        elif kind == "content_block_delta":
            block = self.blocks.get(data["index"])
            if block is None:
                raise CodecError(
                    f"content_block_delta for block {data['index']} that never started (event {self.events})"
                )
            delta = data["delta"]
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + delta["text"]
            elif delta.get("type") == "input_json_delta":
                block["partial_json"] = block.get("partial_json", "") + delta["partial_json"]
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            self.message["stop_reason"] = delta.get("stop_reason")
            # message_delta usage counts are cumulative: they replace, and absent ones keep
            for key, value in (data.get("usage") or {}).items():
                if value is not None:
                    self.message["usage"][key] = value
        elif kind == "message_stop":
            self.stopped = True

    def fill(self, step: Step) -> None:
        """Fill ``step`` from the reassembled message; raise CodecError if the stream was cut."""
        if self.error is not None:
            step.stop_reason, (step.error_type, step.text) = "error", self.error
            return
        if self.message is None or not self.stopped:
            raise CodecError(f"stream ended before message_stop (after {self.events} events)")
        for index in sorted(self.blocks):
            block = self.blocks[index]
            if "partial_json" in block:
                block = {**block, "input": block["partial_json"]}
            self.message["content"].append(block)
        fill_message(step, self.message)


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    if not framed:
        fill_message(step, _json.load_object(body, "response body"))
        return
    state = StreamState()
    for event in sse.parse(body):
        state.feed(_json.load_object(event.data, f"SSE event {state.events + 1} data"))
    state.fill(step)


def decode_error(headers: Headers, body: bytes) -> tuple[str, str]:
    error = _json.load_object(body, "error body").get("error") or {}
    return error.get("type", ""), error.get("message", "")


# --- encoding --------------------------------------------------------------------------------


def usage_out(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }


def _tool_block(call: ToolCall, input_value: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": input_value}


def message_json(step: Step) -> dict[str, Any]:
    """The whole message object a non-streaming call returns."""
    content: list[dict[str, Any]] = []
    if step.text:
        content.append({"type": "text", "text": step.text})
    content.extend(_tool_block(c, _json.arguments_value(c)) for c in step.tool_calls)
    return {
        "id": step.response_id,
        "type": "message",
        "role": "assistant",
        "model": step.model,
        "content": content,
        "stop_reason": stop_out(step),
        "stop_sequence": None,
        "usage": usage_out(step.usage),
    }


def stream_events(step: Step) -> list[dict[str, Any]]:
    """The stream events for ``step``, in the order the API sends them."""
    start = {**message_json(step), "content": [], "stop_reason": None}
    start["usage"] = {**usage_out(step.usage), "output_tokens": 1}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    index = 0
    if step.text:
        events.append(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
        )
        events.extend(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            }
            for piece in _pieces.words(step.text)
        )
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for call in step.tool_calls:
        events.append(
            {"type": "content_block_start", "index": index, "content_block": _tool_block(call, {})}
        )
        events.extend(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
            for piece in _pieces.slices(_json.arguments_text(call))
        )
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_out(step), "stop_sequence": None},
            "usage": usage_out(step.usage),
        }
    )
    events.append({"type": "message_stop"})
    return events


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    if not stream:
        return json_response(_json.dump(message_json(step)))
    chunks = [sse.build(_json.dumps(e), e["type"]) for e in stream_events(step)]
    return EncodedResponse(200, [("content-type", "text/event-stream; charset=utf-8")], chunks)


def encode_error(status: int, message: str) -> EncodedResponse:
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return json_response(_json.dump(body), status=status)


CODEC = Codec(
    api=API,
    provider="anthropic",
    path=re.compile(r"/v1/messages$"),
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=decode_error,
    encode_response=encode_response,
    encode_error=encode_error,
)
