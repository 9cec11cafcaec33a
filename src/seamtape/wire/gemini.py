"""Gemini ``models/{model}:generateContent`` and ``:streamGenerateContent`` (SSE or JSON array)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit

from . import _json, _pieces, sse
from ._codec import Codec, EncodedResponse, Headers, json_response
from ._step import Message, Step, ToolCall, ToolResult, ToolSpec, Usage
from ._turns import join, latest_tool_results
from .errors import CodecError

API = "gemini.generate"
PATH = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")

_STOP_IN = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "content_filter",
    "FINISH_REASON_UNSPECIFIED": "",
}
# Gemini reports STOP after function calls too; tool_use is read back from the parts
_STOP_OUT = {
    "end_turn": "STOP",
    "tool_use": "STOP",
    "stop_sequence": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
}

_ERROR_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _path_match(url: str) -> re.Match[str]:
    match = PATH.search(urlsplit(url).path)
    if match is None:
        raise CodecError(f"no models/{{model}}:generateContent in URL {url!r}")
    return match


# --- request ---------------------------------------------------------------------------------


def _get(raw: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by its REST camelCase name or the snake_case name the API also accepts."""
    return raw.get(camel, raw.get(snake))


def _result(response: Any, call_id: str) -> ToolResult:
    # by Gemini's convention a result is {"output": ...} or {"error": ...}
    if isinstance(response, dict) and set(response) <= {"output", "error"} and len(response) == 1:
        ((key, value),) = response.items()
        content = value if isinstance(value, str) else _json.dumps(value)
        return ToolResult(call_id, content, is_error=key == "error")
    return ToolResult(call_id, response if isinstance(response, str) else _json.dumps(response))


def _message(raw: dict[str, Any]) -> Message:
    role = {"model": "assistant", "function": "tool"}.get(
        raw.get("role", "user"), raw.get("role", "user")
    )
    message = Message(role=role)
    texts = []
    for part in raw.get("parts") or []:
        call = _get(part, "functionCall", "function_call")
        response = _get(part, "functionResponse", "function_response")
        if call is not None:
            message.tool_calls.append(
                _json.call(call.get("id", ""), call["name"], call.get("args"))
            )
        elif response is not None:
            # results match calls by name when the call had no id
            message.tool_results.append(
                _result(response.get("response"), response.get("id") or response["name"])
            )
        elif "text" in part and not part.get("thought"):
            texts.append(part["text"])
    message.text = join(texts)
    return message


def _tools(body: dict[str, Any]) -> list[ToolSpec]:
    specs = []
    tools = body.get("tools") or []
    # the API also accepts a single Tool object where the reference shows a list
    for tool in [tools] if isinstance(tools, dict) else tools:
        for f in _get(tool, "functionDeclarations", "function_declarations") or []:
            schema = (
                _get(f, "parametersJsonSchema", "parameters_json_schema")
                or f.get("parameters")
                or {}
            )
            specs.append(ToolSpec(f["name"], f.get("description", ""), schema))
    return specs


def decode_request(url: str, body: dict[str, Any]) -> Step:
    messages = [_message(c) for c in body.get("contents") or []]
    system = _get(body, "systemInstruction", "system_instruction") or {}
    return Step(
        provider="gemini",
        api=API,
        model=unquote(_path_match(url)["model"]),
        stream=is_stream(url, body),
        system=join([p.get("text", "") for p in system.get("parts") or []]),
        messages=messages,
        tools=_tools(body),
        tool_results=latest_tool_results(messages),
    )


def is_stream(url: str, body: dict[str, Any]) -> bool:
    return _path_match(url)["method"] == "streamGenerateContent"


# --- response --------------------------------------------------------------------------------


def _usage_in(raw: dict[str, Any]) -> Usage:
    cached = raw.get("cachedContentTokenCount") or 0
    prompt = (raw.get("promptTokenCount") or 0) + (raw.get("toolUsePromptTokenCount") or 0)
    return Usage(
        input_tokens=prompt - cached,
        # thinking tokens are billed as output
        output_tokens=(raw.get("candidatesTokenCount") or 0) + (raw.get("thoughtsTokenCount") or 0),
        cache_read_tokens=cached,
    )


def _fill_chunks(step: Step, chunks: list[dict[str, Any]], *, stream: bool) -> None:
    texts: list[str] = []
    finish = None
    for chunk in chunks:
        if chunk.get("usageMetadata"):  # an error chunk may carry the tokens billed so far
            step.usage = _usage_in(chunk["usageMetadata"])
        if chunk.get("error"):
            error = chunk["error"]
            step.stop_reason, step.error_type = "error", error.get("status", "")
            step.text = error.get("message", "")
            return
        step.response_id = chunk.get("responseId") or step.response_id
        step.model = chunk.get("modelVersion") or step.model
        if chunk.get("usageMetadata"):
            step.usage = _usage_in(chunk["usageMetadata"])
        if (chunk.get("promptFeedback") or {}).get("blockReason"):
            finish = "SAFETY"
        for candidate in chunk.get("candidates") or []:
            if candidate.get("index", 0) != 0:
                continue
            for part in (candidate.get("content") or {}).get("parts") or []:
                if "functionCall" in part:
                    call = part["functionCall"]
                    step.tool_calls.append(
                        _json.call(call.get("id", ""), call["name"], call.get("args"))
                    )
                elif "executableCode" in part:  # code Gemini runs itself
                    code = part["executableCode"] or {}
                    step.server_tool_calls.append(_json.call("", "code_execution", code))
                elif "text" in part and not part.get("thought"):
                    texts.append(part["text"])
            finish = candidate.get("finishReason") or finish
    if stream and finish is None:
        raise CodecError(
            f"stream ended before a chunk with finishReason (after {len(chunks)} chunks)"
        )
    step.text = "".join(texts)
    reason = _STOP_IN.get(finish, finish) if finish else ""
    step.stop_reason = "tool_use" if reason == "end_turn" and step.tool_calls else reason


def decode_response(step: Step, url: str, headers: Headers, body: bytes, framed: bool) -> None:
    if framed:
        events = sse.parse(body)
        chunks = [
            _json.load_object(e.data, f"SSE event {n} data") for n, e in enumerate(events, start=1)
        ]
        _fill_chunks(step, chunks, stream=True)
        return
    value = _json.load(body, "response body")
    # streamGenerateContent without alt=sse answers one JSON array of chunks
    if isinstance(value, list):
        _fill_chunks(step, value, stream=True)
    elif isinstance(value, dict):
        _fill_chunks(step, [value], stream=False)
    else:
        raise CodecError(f"response body is JSON {type(value).__name__}, not an object")


def decode_error(headers: Headers, body: bytes) -> tuple[str, str]:
    value = _json.load(body, "error body")
    # errors on a stream URL come as a one-element array
    if isinstance(value, list) and value:
        value = value[0]
    error = (value.get("error") or {}) if isinstance(value, dict) else {}
    return error.get("status", ""), error.get("message", "")


# --- encoding --------------------------------------------------------------------------------


def _usage_out(usage: Usage) -> dict[str, Any]:
    prompt = usage.input_tokens + usage.cache_read_tokens
    out: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": prompt + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        out["cachedContentTokenCount"] = usage.cache_read_tokens
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    return out


def _call_part(call: ToolCall) -> dict[str, Any]:
    function: dict[str, Any] = {"name": call.name, "args": _json.arguments_value(call)}
    if call.id:
        function = {"id": call.id, **function}
    return {"functionCall": function}


def _chunk(step: Step, parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if final:
        reason = step.stop_reason or "end_turn"
        candidate["finishReason"] = _STOP_OUT.get(reason, reason)
    candidate["index"] = 0
    chunk: dict[str, Any] = {"candidates": [candidate]}
    if final:
        chunk["usageMetadata"] = _usage_out(step.usage)
    return {**chunk, "modelVersion": step.model, "responseId": step.response_id}


def encode_response(step: Step, stream: bool) -> EncodedResponse:
    calls = [_call_part(c) for c in step.tool_calls]
    if not stream:
        parts = ([{"text": step.text}] if step.text else []) + calls
        return json_response(_json.dump(_chunk(step, parts, final=True)))
    groups = [[{"text": piece}] for piece in _pieces.words(step.text)]
    if calls:
        groups.append(calls)  # Gemini sends whole function calls, never partial arguments
    groups = groups or [[]]
    chunks = [_chunk(step, parts, final=i == len(groups) - 1) for i, parts in enumerate(groups)]
    frames = [sse.build(_json.dumps(c), eol="\r\n") for c in chunks]
    return EncodedResponse(200, [("content-type", "text/event-stream")], frames)


def encode_error(status: int, message: str) -> EncodedResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": _ERROR_STATUS.get(status, "UNKNOWN"),
        }
    }
    return json_response(_json.dump(body), status=status)


CODEC = Codec(
    api=API,
    provider="gemini",
    path=PATH,
    is_stream=is_stream,
    decode_request=decode_request,
    decode_response=decode_response,
    decode_error=decode_error,
    encode_response=encode_response,
    encode_error=encode_error,
)
