"""A GenAI trace from elsewhere, as runs of a tape: steps to read, not bytes to replay.

Each trace with model-call spans becomes one run with status ``ingested``. Every model
call becomes an exchange whose request and response are re-built by the wire codecs from
the span's attributes (model, tokens, finish reason, response id) and, when the trace
carries them, its messages, so that show, lint, diff, the report and export read it like
any run. A trace holds no bytes, so the run is marked as not replayable and a replay or
fork of it refuses with ``NotReplayableError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from seamtape import wire
from seamtape._errors import SeamtapeError
from seamtape.tape import Exchange, Tape, blob_hash, run_digest

from ._export import attribute_map
from ._names import (
    AGENT_NAME,
    FINISH_REASONS,
    HTTP_STATUS,
    INPUT_MESSAGES,
    LEGACY_SYSTEM,
    MODEL_OPERATIONS,
    OPERATION,
    OUTPUT_MESSAGES,
    PROVIDER,
    REQUEST_MAX_TOKENS,
    REQUEST_MODEL,
    REQUEST_STREAM,
    RESPONSE_ID,
    RESPONSE_MODEL,
    SERVER_ADDRESS,
    SERVER_PORT,
    SYSTEM_INSTRUCTIONS,
    TOOL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_NAME,
    USAGE_CACHE_CREATION,
    USAGE_CACHE_READ,
    USAGE_INPUT,
    USAGE_OUTPUT,
    api_of,
)
from ._otlp import read_trace

__all__ = ["INGESTED", "IngestReport", "ingest_trace"]

INGESTED = "ingested"  # the run status of a run built from a trace

_HOSTS = {
    "anthropic.messages": "https://api.anthropic.com",
    "openai.chat": "https://api.openai.com",
    "gemini.generate": "https://generativelanguage.googleapis.com",
    "bedrock.converse": "https://bedrock-runtime.us-east-1.amazonaws.com",
}
# Finish reasons as other instrumentations write them -> the Step's normalized stop reasons
_STOP_REASONS = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "STOP": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "MAX_TOKENS": "max_tokens",
    "tool_calls": "tool_use",
    "tool_use": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
    "SAFETY": "content_filter",
    "stop_sequence": "stop_sequence",
    "error": "error",
}


@dataclass
class IngestReport:
    tape: str
    runs: list[str] = field(default_factory=list)  # one per trace that held model calls
    steps: int = 0
    skipped_traces: int = 0  # traces with no model-call span


@dataclass
class _Span:
    trace_id: bytes
    name: str
    start: int
    end: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    failed: bool
    status_message: str
    parent: bytes

    @property
    def operation(self) -> str:
        return str(self.attributes.get(OPERATION, ""))


def ingest_trace(
    source: str | os.PathLike[str], tape: str | os.PathLike[str], *, name: str | None = None
) -> IngestReport:
    """Build runs in ``tape`` (created if missing) from the GenAI trace file ``source``."""
    request = read_trace(source)
    traces: dict[bytes, list[_Span]] = {}
    for span in _spans(request):
        traces.setdefault(span.trace_id, []).append(span)
    report = IngestReport(tape=os.fspath(tape))
    plans = []
    for trace_id, spans in traces.items():
        calls = sorted((s for s in spans if _is_model_call(s)), key=lambda s: s.start)
        if not calls:
            report.skipped_traces += 1
            continue
        plans.append((trace_id, spans, calls))
    if not plans:
        raise SeamtapeError(
            f"{source} holds no GenAI model-call span (gen_ai.operation.name chat, "
            "generate_content or text_completion): nothing to ingest"
        )
    # Every exchange is built before the tape is touched: a span the codecs cannot encode
    # leaves no half-ingested run behind.
    built = []
    for trace_id, spans, calls in plans:
        tools = sorted((s for s in spans if s.operation == "execute_tool"), key=lambda s: s.start)
        records = []
        for seq, call in enumerate(calls, start=1):
            following = calls[seq].start if seq < len(calls) else None
            ran = [
                s
                for s in tools
                if s.start >= call.start and (following is None or s.start <= following)
            ]
            records.append(_exchange(seq, call, ran))
        built.append((trace_id, name or _run_name(spans, trace_id), records))
    with Tape(tape, create=True) as t:
        for trace_id, run_name, records in built:
            run_id = t.create_run(
                run_name,
                mutation={
                    "kind": INGESTED,
                    "source": os.path.basename(os.fspath(source)),
                    "trace_id": trace_id.hex(),
                },
            )
            for exchange, request_body, response_body in records:
                exchange.run = run_id
                t.add_exchange(exchange, request_body, response_body, [])
            t.finish_run(run_id, status=INGESTED, digest=run_digest(t, run_id))
            report.runs.append(run_id)
            report.steps += len(records)
    return report


def _spans(request: Any) -> Iterable[_Span]:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.trace.v1.trace_pb2 import Status  # noqa: PLC0415

    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _Span(
                    trace_id=bytes(span.trace_id),
                    name=span.name,
                    start=span.start_time_unix_nano,
                    end=span.end_time_unix_nano,
                    attributes=attribute_map(span.attributes),
                    events=[(e.name, attribute_map(e.attributes)) for e in span.events],
                    failed=span.status.code == Status.STATUS_CODE_ERROR,
                    status_message=span.status.message,
                    parent=bytes(span.parent_span_id),
                )


def _is_model_call(span: _Span) -> bool:
    if span.operation:
        return span.operation in MODEL_OPERATIONS
    return REQUEST_MODEL in span.attributes  # older instrumentations set no operation name


def _run_name(spans: list[_Span], trace_id: bytes) -> str:
    """The agent's name, else the root span's (when it says more than the operation)."""
    for span in sorted(spans, key=lambda s: s.start):
        if span.operation == "invoke_agent" or not span.parent:
            agent = span.attributes.get(AGENT_NAME)
            if agent or span.name not in ("", "invoke_agent"):
                return f"{agent or span.name} (ingested)"
    return f"trace {trace_id.hex()[:12]} (ingested)"


# --- one model call --------------------------------------------------------------------------


def _exchange(seq: int, span: _Span, tools: list[_Span]) -> tuple[Exchange, bytes, bytes]:
    attrs = span.attributes
    provider = str(attrs.get(PROVIDER) or attrs.get(LEGACY_SYSTEM) or "openai")
    api = api_of(provider)
    request_model = str(attrs.get(REQUEST_MODEL) or attrs.get(RESPONSE_MODEL) or "unknown")
    content = _content(span)
    system, messages = _input(content)
    step = wire.Step(
        provider=api.split(".")[0],
        api=api,
        model=str(attrs.get(RESPONSE_MODEL) or request_model),
        response_id=str(attrs.get(RESPONSE_ID) or ""),
    )
    _fill_answer(step, content, tools)
    reasons = attrs.get(FINISH_REASONS) or []
    reason = str(reasons[0]) if isinstance(reasons, list) and reasons else ""
    step.stop_reason = _STOP_REASONS.get(reason, reason) or (
        "tool_use" if step.tool_calls else "end_turn"
    )
    cache_read = int(attrs.get(USAGE_CACHE_READ) or 0)
    cache_write = int(attrs.get(USAGE_CACHE_CREATION) or 0)
    step.usage = wire.Usage(
        input_tokens=max(0, int(attrs.get(USAGE_INPUT) or 0) - cache_read - cache_write),
        output_tokens=int(attrs.get(USAGE_OUTPUT) or 0),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    if span.failed:
        step.stop_reason = "error"
        step.status = int(attrs.get(HTTP_STATUS) or 500)
        step.text = span.status_message or step.text or f"HTTP {step.status}"
    stream = attrs.get(REQUEST_STREAM) is True
    encoded = wire.encode_response(step, stream=stream)
    max_tokens = attrs.get(REQUEST_MAX_TOKENS)
    path, body = _request(api, request_model, system, messages, max_tokens, stream)
    url = _base_url(api, attrs) + path
    request_body = json.dumps(body).encode()
    response_body = b"".join(encoded.chunks)
    exchange = Exchange(
        run="",  # set when the run is created
        seq=seq,
        batch=seq,
        method="POST",
        url=url,
        request_headers_json=json.dumps([["content-type", "application/json"]]),
        request_body=blob_hash(request_body),
        status=encoded.status,
        response_headers_json=json.dumps([list(h) for h in encoded.headers]),
        http_version="HTTP/1.1",
        reason="",
        response_body=blob_hash(response_body),
        # A stream keeps its frames apart, as a recorded one does (no arrival times: 0 ms).
        chunks_json=json.dumps([[len(c), 0.0] for c in encoded.chunks]) if stream else None,
        error_json=None,
        started=span.start / 1e9,
        ended=max(span.end, span.start) / 1e9,
    )
    return exchange, request_body, response_body


def _content(span: _Span) -> dict[str, Any]:
    """The opt-in message content, from the span or any of its events, parsed from JSON."""
    found: dict[str, Any] = {}
    sources = [span.attributes, *(attrs for _, attrs in span.events)]
    for attrs in sources:
        for key in (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS):
            if key in attrs and key not in found:
                value = attrs[key]
                if isinstance(value, str):
                    try:
                        value = json.loads(value)
                    except ValueError:
                        value = [{"type": "text", "content": value}]
                found[key] = value
    return found


def _input(content: dict[str, Any]) -> tuple[str, list[wire.Message]]:
    system = "\n".join(str(p.get("content", "")) for p in _dicts(content.get(SYSTEM_INSTRUCTIONS)))
    messages = []
    for raw in _dicts(content.get(INPUT_MESSAGES)):
        role = str(raw.get("role", "user"))
        message = wire.Message(role=role)
        _fill_parts(message, raw.get("parts") or [])
        if role == "system":
            system = "\n".join(filter(None, [system, message.text]))
            continue
        messages.append(message)
    return system, messages


def _fill_parts(target: Any, parts: Any) -> None:
    texts = []
    for part in _dicts(parts):
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            target.tool_calls.append(
                _tool_call(part.get("id"), part.get("name"), part.get("arguments"))
            )
        elif kind == "tool_call_response" and hasattr(target, "tool_results"):
            response = part.get("response")
            text = response if isinstance(response, str) else json.dumps(response)
            target.tool_results.append(wire.ToolResult(str(part.get("id", "")), text))
    target.text = "\n".join(texts)


def _fill_answer(step: wire.Step, content: dict[str, Any], tools: list[_Span]) -> None:
    outputs = _dicts(content.get(OUTPUT_MESSAGES))
    if outputs:
        _fill_parts(step, outputs[0].get("parts") or [])
        reason = outputs[0].get("finish_reason")
        if reason:
            step.stop_reason = _STOP_REASONS.get(str(reason), str(reason))
    known = {c.id for c in step.tool_calls}
    for tool in tools:  # tool spans after the call name the calls it made
        attrs = tool.attributes
        call_id = str(attrs.get(TOOL_CALL_ID) or f"call_{tool.start}")
        if call_id not in known and attrs.get(TOOL_NAME):
            step.tool_calls.append(_tool_call(call_id, attrs[TOOL_NAME], attrs.get(TOOL_ARGUMENTS)))
            known.add(call_id)


def _tool_call(call_id: Any, name: Any, arguments: Any) -> wire.ToolCall:
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            return wire.ToolCall(str(call_id or ""), str(name or ""), {}, arguments)
        arguments = parsed
    if not isinstance(arguments, dict):
        return wire.ToolCall(str(call_id or ""), str(name or ""), {}, json.dumps(arguments))
    return wire.ToolCall(str(call_id or ""), str(name or ""), arguments)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _base_url(api: str, attrs: dict[str, Any]) -> str:
    host = attrs.get(SERVER_ADDRESS)
    if not host:
        return _HOSTS[api]
    port = attrs.get(SERVER_PORT)
    scheme = "http" if host in ("127.0.0.1", "localhost", "::1") else "https"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


# --- request bodies, one shape per wire format ------------------------------------------------


def _request(
    api: str,
    model: str,
    system: str,
    messages: list[wire.Message],
    max_tokens: Any,
    stream: bool,
) -> tuple[str, dict[str, Any]]:
    """The path and a minimal request body in ``api``'s format that its codec decodes back."""
    if api == "anthropic.messages":
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens if isinstance(max_tokens, int) else 1024,
            "messages": [_anthropic_message(m) for m in messages],
        }
        if system:
            body["system"] = system
        if stream:
            body["stream"] = True
        return "/v1/messages", body
    if api == "gemini.generate":
        body = {"contents": [_gemini_content(m) for m in messages]}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{model}:{method}", body
    if api == "bedrock.converse":
        body = {"messages": [_bedrock_message(m) for m in messages]}
        if system:
            body["system"] = [{"text": system}]
        return f"/model/{model}/converse" + ("-stream" if stream else ""), body
    chat = [{"role": "system", "content": system}] if system else []
    for m in messages:
        chat += _openai_messages(m)
    body = {"model": model, "messages": chat}
    if isinstance(max_tokens, int):
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    return "/v1/chat/completions", body


def _anthropic_message(m: wire.Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls
    ]
    blocks += [
        {"type": "tool_result", "tool_use_id": r.call_id, "content": r.content}
        for r in m.tool_results
    ]
    role = "assistant" if m.role == "assistant" else "user"
    return {"role": role, "content": blocks}


def _openai_messages(m: wire.Message) -> list[dict[str, Any]]:
    if m.tool_results:
        return [
            {"role": "tool", "tool_call_id": r.call_id, "content": r.content}
            for r in m.tool_results
        ]
    out: dict[str, Any] = {"role": m.role if m.role in ("user", "assistant") else "user"}
    out["content"] = m.text or None if m.tool_calls else m.text
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.raw_arguments or json.dumps(c.arguments),
                },
            }
            for c in m.tool_calls
        ]
    return [out]


def _gemini_content(m: wire.Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": m.text}] if m.text else []
    parts += [
        {"functionCall": {"id": c.id, "name": c.name, "args": c.arguments}} for c in m.tool_calls
    ]
    parts += [
        {
            "functionResponse": {
                "id": r.call_id,
                "name": r.call_id,
                "response": {"content": r.content},
            }
        }
        for r in m.tool_results
    ]
    return {"role": "model" if m.role == "assistant" else "user", "parts": parts}


def _bedrock_message(m: wire.Message) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"text": m.text}] if m.text else []
    blocks += [
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in m.tool_calls
    ]
    blocks += [
        {"toolResult": {"toolUseId": r.call_id, "content": [{"text": r.content}]}}
        for r in m.tool_results
    ]
    return {"role": "assistant" if m.role == "assistant" else "user", "content": blocks}
