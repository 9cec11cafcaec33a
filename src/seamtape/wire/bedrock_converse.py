"""Bedrock Converse and ConverseStream: Bedrock's own model-agnostic message format."""

from __future__ import annotations

from typing import Any

from . import _aws, _json, _pieces
from ._codec import Codec, EncodedResponse, Headers, header, json_response
from ._step import Message, Step, ToolCall, ToolResult, ToolSpec, Usage
from ._turns import join, latest_tool_results
from .errors import CodecError

API = "bedrock.converse"
PATH = _aws.path("converse|converse-stream")

_STOP_OUT = {"content_filter": "content_filtered"}
_SERVER = "server_tool_use"  # toolUse.type of a tool Bedrock runs itself
_STOP_IN = {v: k for k, v in _STOP_OUT.items()}


def _stop_in(value: Any) -> str:
    return _STOP_IN.get(value, value) if isinstance(value, str) else ""


def _stop_out(step: Step) -> str:
    reason = step.stop_reason or ("tool_use" if step.tool_calls else "end_turn")
    return _STOP_OUT.get(reason, reason)


# --- request ---------------------------------------------------------------------------------


def _result(raw: dict[str, Any]) -> ToolResult:
    parts = []
    for block in raw.get("content") or []:
        if "text" in block:
            parts.append(block["text"])
        elif "json" in block:
            parts.append(_json.dumps(block["json"]))
    return ToolResult(raw["toolUseId"], join(parts), is_error=raw.get("status") == "error")


def _message(raw: dict[str, Any], server_calls: list[ToolCall] | None = None) -> Message:
    """A message; calls to tools the service runs itself go to ``server_calls``, if given."""
    message = Message(role=raw["role"])
    server_calls = [] if server_calls is None else server_calls
    texts = []
    for block in raw.get("content") or []:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            call = _json.call(use["toolUseId"], use["name"], use.get("input"))
            if use.get("type") == _SERVER:
                server_calls.append(call)
            else:
                message.tool_calls.append(call)
        elif "toolResult" in block and block["toolResult"].get("type") is None:
            # a toolResult with a type is a server tool's answer, not the agent's
            message.tool_results.append(_result(block["toolResult"]))
    message.text = join(texts)
    return message


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    specs = []
    for tool in (body.get("toolConfig") or {}).get("tools") or []:
        if "toolSpec" in tool:
            spec = tool["toolSpec"]
            schema = (spec.get("inputSchema") or {}).get("json") or {}
            specs.append(ToolSpec(spec["name"], spec.get("description", ""), schema))
    return specs


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return _aws.path_match(PATH, url)["operation"] == "converse-stream"


def decode_request(url: str, body: dict[str, Any]) -> Step:
    messages = [_message(m) for m in body.get("messages") or []]
    return Step(
        provider="bedrock",
        api=API,
        model=_aws.model_id(PATH, url),
        stream=is_stream(url, body),
        system=join([b.get("text", "") for b in body.get("system") or []]),
        messages=messages,
        tools=_tools(body),
        tool_results=latest_tool_results(messages),
    )


# --- response --------------------------------------------------------------------------------


def _usage_in(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=raw.get("inputTokens") or 0,
        output_tokens=raw.get("outputTokens") or 0,
        cache_read_tokens=raw.get("cacheReadInputTokens") or 0,
        cache_write_tokens=raw.get("cacheWriteInputTokens") or 0,
    )


def _fill_json(step: Step, body: dict[str, Any]) -> None:
    message = (body.get("output") or {}).get("message") or {}
    decoded = _message({"role": "assistant", **message}, step.server_tool_calls)
    step.text = "".join(b["text"] for b in message.get("content") or [] if "text" in b)
    step.tool_calls = decoded.tool_calls
    step.stop_reason = _stop_in(body.get("stopReason"))
    step.usage = _usage_in(body.get("usage") or {})


def _fill_stream(step: Step, events: list[tuple[str, dict[str, Any]]]) -> None:
    blocks: dict[int, dict[str, str]] = {}
    stopped = finished = False
    for kind, payload in events:
        if kind == "contentBlockStart":
            start = payload.get("start") or {}
            block = {"text": "", "input": ""}
            if "toolUse" in start:
                use = start["toolUse"] or {}
                block.update(id=use.get("toolUseId", ""), name=use.get("name", ""))
                block["server"] = "yes" if use.get("type") == _SERVER else ""
            # a toolResult block is a server tool's answer: neither text nor a call to make
            blocks[payload["contentBlockIndex"]] = block
        elif kind == "contentBlockDelta":
            # text blocks get no contentBlockStart: their first delta opens them
            block = blocks.setdefault(payload["contentBlockIndex"], {"text": "", "input": ""})
            delta = payload.get("delta") or {}
            block["text"] += delta.get("text", "")
            block["input"] += (delta.get("toolUse") or {}).get("input", "")
        elif kind == "messageStop":
            stopped = True
            step.stop_reason = _stop_in(payload.get("stopReason"))
        elif kind == "metadata":
            finished = True
            step.usage = _usage_in(payload.get("usage") or {})
    if not (stopped and finished):
        missing = "messageStop" if not stopped else "metadata"
        raise CodecError(f"stream ended before {missing} (after {len(events)} events)")
    ordered = [blocks[i] for i in sorted(blocks)]
    step.text = "".join(b["text"] for b in ordered)
    calls = [(b, _json.call(b["id"], b["name"], b["input"])) for b in ordered if "id" in b]
    step.tool_calls = [call for b, call in calls if not b.get("server")]
    step.server_tool_calls = [call for b, call in calls if b.get("server")]


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    # Converse bodies carry no id; the request id header stands in for one
    step.response_id = header(headers, "x-amzn-requestid") or ""
    if not framed:
        _fill_json(step, _json.load_object(body, "response body"))
        return
    try:
        events = _aws.events(body)
    except _aws.StreamException as exc:
        step.stop_reason, step.error_type, step.text = "error", exc.kind, exc.message
        return
    _fill_stream(step, events)


# --- encoding --------------------------------------------------------------------------------


def _usage_out(usage: Usage) -> dict[str, int]:
    total = (
        usage.input_tokens
        + usage.output_tokens
        + usage.cache_read_tokens
        + usage.cache_write_tokens
    )
    return {
        "inputTokens": usage.input_tokens,
        "outputTokens": usage.output_tokens,
        "totalTokens": total,
        "cacheReadInputTokens": usage.cache_read_tokens,
        "cacheWriteInputTokens": usage.cache_write_tokens,
    }


def _events(step: Step) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    index = 0
    if step.text:
        events += [
            ("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": index})
            for p in _pieces.words(step.text)
        ]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call in step.tool_calls:
        start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
        events.append(("contentBlockStart", {"start": start, "contentBlockIndex": index}))
        events += [
            ("contentBlockDelta", {"delta": {"toolUse": {"input": p}}, "contentBlockIndex": index})
            for p in _pieces.slices(_json.arguments_text(call))
        ]
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    events.append(("messageStop", {"stopReason": _stop_out(step)}))
    events.append(("metadata", {"usage": _usage_out(step.usage), "metrics": {"latencyMs": 0}}))
    return events


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    request_id = [("x-amzn-RequestId", step.response_id)] if step.response_id else []
    if stream:
        chunks = [_aws.event(kind, payload) for kind, payload in _events(step)]
        return EncodedResponse(
            200, [("content-type", _aws.STREAM_CONTENT_TYPE), *request_id], chunks
        )
    content: list[dict[str, Any]] = [{"text": step.text}] if step.text else []
    content += [
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": _json.arguments_value(c)}}
        for c in step.tool_calls
    ]
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop_out(step),
        "usage": _usage_out(step.usage),
        "metrics": {"latencyMs": 0},
    }
    return json_response(_json.dump(body), extra=request_id)


CODEC = Codec(
    api=API,
    provider="bedrock",
    path=PATH,
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=_aws.decode_error,
    encode_response=encode_response,
    encode_error=_aws.encode_error,
)
