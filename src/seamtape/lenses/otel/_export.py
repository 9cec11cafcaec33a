"""A tape's runs as OTLP traces, by the OpenTelemetry GenAI semantic conventions.

Each run is one trace: an ``invoke_agent`` root span, a ``chat`` (or ``generate_content``)
client span per model call, and an ``execute_tool`` span for each tool the model called, in
the time between that call and the next. Message content is written only when asked for, as
a ``gen_ai.client.inference.operation.details`` event on the model call's span. Blame and
lint results, given as their JSON reports, become ``seamtape.*`` attributes of the step spans.
Ids are derived from the run, so exporting the same tape twice gives the same trace.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from seamtape import wire
from seamtape._errors import CodecError, SeamtapeError
from seamtape._steps import decode_exchange
from seamtape.tape import Exchange, RunInfo, Tape

from ._names import (
    AGENT_NAME,
    CONTENT_EVENT,
    ERROR_TYPE,
    FINISH_REASONS,
    HTTP_METHOD,
    HTTP_STATUS,
    INPUT_MESSAGES,
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
    SERVICE_NAME,
    SYSTEM_INSTRUCTIONS,
    TOOL_ARGUMENTS,
    TOOL_CALL_ID,
    TOOL_NAME,
    TOOL_RESULT,
    TOOL_TYPE,
    URL_FULL,
    USAGE_CACHE_CREATION,
    USAGE_CACHE_READ,
    USAGE_INPUT,
    USAGE_OUTPUT,
    operation_of,
    provider_of,
)

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

__all__ = ["export_trace", "findings_by_step"]

SCOPE = "seamtape"


@dataclass
class _Findings:
    """What blame and lint said about one run, by step (0: the run as a whole)."""

    blame: dict[int, dict[str, Any]] = field(default_factory=dict)
    lint: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def export_trace(
    tape: str | os.PathLike[str],
    run: str | None = None,
    *,
    content: bool = False,
    blame: Any = None,
    lint: Any = None,
    service_name: str = "seamtape",
) -> ExportTraceServiceRequest:
    """The runs of ``tape`` (or just ``run``) as one OTLP ``ExportTraceServiceRequest``.

    ``content=True`` adds the messages, system instructions and tool arguments and results
    (they may hold personal data, so they are opt-in, as the conventions ask). ``blame`` is a
    blame report (``seamtape blame --json``) and ``lint`` a list of lint findings, each as
    parsed JSON; they are attached to the run they name.
    """
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope  # noqa: PLC0415
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: PLC0415
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans  # noqa: PLC0415

    try:
        scope_version = version("seamtape")
    except PackageNotFoundError:  # run from a source tree that was never installed
        scope_version = ""
    with Tape(tape) as t:
        runs = [t.run(run)] if run else t.runs()
        findings = findings_by_step(blame, lint, [r.id for r in runs])
        spans = []
        for info in runs:
            spans += _run_spans(t, info, content=content, findings=findings.get(info.id))
    resource = Resource(
        attributes=_attributes(
            {SERVICE_NAME: service_name, "seamtape.tape": os.path.basename(os.fspath(tape))}
        )
    )
    scope = InstrumentationScope(name=SCOPE, version=scope_version)
    request = _request_class()(
        resource_spans=[
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])
        ]
    )
    return request


def _request_class() -> Any:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    return ExportTraceServiceRequest


# --- one run ---------------------------------------------------------------------------------


def _run_spans(
    tape: Tape, info: RunInfo, *, content: bool, findings: _Findings | None
) -> list[Any]:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status  # noqa: PLC0415

    exchanges = tape.exchanges(info.id)
    bodies = tape.blobs(h for ex in exchanges for h in (ex.request_body, ex.response_body))
    trace_id = _id(16, "trace", info.id, info.digest or "")
    root_id = _id(8, trace_id.hex(), "root")
    findings = findings or _Findings()
    start = _nanos(exchanges[0].started) if exchanges else _nanos(info.created)
    end = max([_nanos(ex.ended) for ex in exchanges] or [start])

    spans: list[Any] = []
    decoded = [_decode(ex, bodies) for ex in exchanges]
    for pos, (ex, step) in enumerate(zip(exchanges, decoded, strict=True)):
        span_id = _id(8, trace_id.hex(), f"step {ex.seq}")
        attrs = _call_attributes(ex, step[0], step[1], bodies[ex.request_body])
        attrs.update(_finding_attributes(findings, ex.seq))
        span = Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=root_id,
            name=_call_name(ex, step[0], step[1]),
            kind=Span.SpanKind.SPAN_KIND_CLIENT,
            start_time_unix_nano=_nanos(ex.started),
            end_time_unix_nano=_nanos(ex.ended),
            attributes=_attributes(attrs),
        )
        if ex.status == 0 or ex.status >= 400:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=_error_text(ex)))
        answer = step[1]
        if content and answer is not None:
            span.events.append(_content_event(answer, _nanos(ex.ended)))
        spans.append(span)
        if answer is not None:
            later = [s[1] for s in decoded[pos + 1 :]]
            next_start = _nanos(exchanges[pos + 1].started) if pos + 1 < len(exchanges) else None
            spans += _tool_spans(
                trace_id, root_id, ex, answer, later, _nanos(ex.ended), next_start, content
            )

    root_attrs: dict[str, Any] = {
        OPERATION: "invoke_agent",
        "seamtape.run.id": info.id,
        "seamtape.run.status": info.status,
        "seamtape.run.replayable": info.status != "ingested",
    }
    if info.name:
        root_attrs[AGENT_NAME] = info.name
    for key, value in (
        ("seamtape.run.digest", info.digest),
        ("seamtape.run.parent", info.parent),
        ("seamtape.run.fork_step", info.fork_step),
        ("seamtape.run.outcome", info.outcome),
        ("seamtape.run.upstream", info.upstream),
    ):
        if value is not None:
            root_attrs[key] = value
    root_attrs.update(_finding_attributes(findings, 0))
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name=f"invoke_agent {info.name}" if info.name else "invoke_agent",
        kind=Span.SpanKind.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_attributes(root_attrs),
    )
    if info.status == "failed" or info.outcome == "failure":
        root.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=f"run {info.status}"))
    if info.parent is not None:
        # A fork's trace links to its parent's: the same tape, exported, holds both.
        parent = tape.run(info.parent)
        parent_trace = _id(16, "trace", parent.id, parent.digest or "")
        root.links.append(
            Span.Link(
                trace_id=parent_trace,
                span_id=_id(8, parent_trace.hex(), "root"),
                attributes=_attributes({"seamtape.link": "forked from"}),
            )
        )
    return [root, *spans]


def _decode(ex: Exchange, bodies: dict[bytes, bytes]) -> tuple[Any, Any]:
    """(the request side, the whole step) of a model call; (None, None) for other requests."""
    api = wire.detect(ex.method, ex.url)
    if api is None:
        return None, None
    request_body, response_body = bodies[ex.request_body], bodies[ex.response_body]
    try:
        asked = wire.decode_request(api, ex.url, request_body)
    except CodecError:
        return None, None
    try:
        answer = decode_exchange(ex, request_body, response_body)
    except CodecError:
        answer = None  # a cut stream or a failed attempt: the request side still tells much
    return asked, answer


def _call_name(ex: Exchange, asked: Any, answer: Any) -> str:
    if asked is None:
        return ex.method
    return f"{operation_of(asked.api)} {asked.model}".strip()


def _call_attributes(ex: Exchange, asked: Any, answer: Any, request_body: bytes) -> dict[str, Any]:
    url = urlsplit(ex.url)
    attrs: dict[str, Any] = {HTTP_METHOD: ex.method, URL_FULL: ex.url}
    if url.hostname:
        attrs[SERVER_ADDRESS] = url.hostname
        attrs[SERVER_PORT] = url.port or (443 if url.scheme == "https" else 80)
    if ex.status:
        attrs[HTTP_STATUS] = ex.status
    if ex.status == 0 or ex.status >= 400:
        attrs[ERROR_TYPE] = (ex.error or {}).get("type") or str(ex.status)
    attrs["seamtape.step"] = ex.seq
    if asked is None:
        return attrs
    attrs[OPERATION] = operation_of(asked.api)
    attrs[PROVIDER] = provider_of(asked.provider)
    attrs["seamtape.api"] = asked.api
    if asked.model:
        attrs[REQUEST_MODEL] = asked.model
    attrs[REQUEST_STREAM] = asked.stream
    max_tokens = _max_tokens(request_body)
    if max_tokens is not None:
        attrs[REQUEST_MAX_TOKENS] = max_tokens
    if answer is None:
        return attrs
    if answer.model:
        attrs[RESPONSE_MODEL] = answer.model
    if answer.response_id:
        attrs[RESPONSE_ID] = answer.response_id
    if answer.stop_reason:
        attrs[FINISH_REASONS] = [answer.stop_reason]
    usage = answer.usage
    # The conventions count cached tokens inside the input; the Step counts them apart.
    attrs[USAGE_INPUT] = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    attrs[USAGE_OUTPUT] = usage.output_tokens
    if usage.cache_read_tokens:
        attrs[USAGE_CACHE_READ] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        attrs[USAGE_CACHE_CREATION] = usage.cache_write_tokens
    if answer.cost_usd is not None:
        attrs["seamtape.cost_usd"] = answer.cost_usd
    if answer.error_type:
        attrs[ERROR_TYPE] = answer.error_type
    return attrs


def _max_tokens(body: bytes) -> int | None:
    """The output token limit the request set, under whichever name its api uses."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    config = doc.get("generationConfig") or doc.get("inferenceConfig") or {}
    for value in (
        doc.get("max_tokens"),
        doc.get("max_completion_tokens"),
        doc.get("max_output_tokens"),
        config.get("maxOutputTokens") if isinstance(config, dict) else None,
        config.get("maxTokens") if isinstance(config, dict) else None,
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _error_text(ex: Exchange) -> str:
    if ex.status == 0:
        error = ex.error or {}
        return f"{error.get('type', 'TransportError')}: {error.get('message', '')}".strip()
    return f"HTTP {ex.status}"


def _tool_spans(
    trace_id: bytes,
    root_id: bytes,
    ex: Exchange,
    answer: Any,
    later: Sequence[Any],
    start: int,
    next_start: int | None,
    content: bool,
) -> list[Any]:
    """A span per tool call of this step, from its answer to the next model call."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status  # noqa: PLC0415

    results: dict[str, Any] = {}
    for step in later:
        for result in step.tool_results if step is not None else ():
            results.setdefault(result.call_id, result)
    end = next_start if next_start is not None and next_start >= start else start
    spans = []
    for index, call in enumerate(answer.tool_calls, start=1):
        attrs: dict[str, Any] = {
            OPERATION: "execute_tool",
            TOOL_NAME: call.name,
            TOOL_TYPE: "function",
            "seamtape.step": ex.seq,
        }
        if call.id:
            attrs[TOOL_CALL_ID] = call.id
        result = results.get(call.id)
        if content:
            attrs[TOOL_ARGUMENTS] = call.raw_arguments or json.dumps(call.arguments)
            if result is not None:
                attrs[TOOL_RESULT] = result.content
        span = Span(
            trace_id=trace_id,
            span_id=_id(8, trace_id.hex(), f"tool {ex.seq} {index}"),
            parent_span_id=root_id,
            name=f"execute_tool {call.name}",
            kind=Span.SpanKind.SPAN_KIND_INTERNAL,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=_attributes(attrs),
        )
        if result is not None and result.is_error:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="tool error"))
        spans.append(span)
    return spans


def _content_event(step: Any, at: int) -> Any:
    """The messages of one call, in the conventions' JSON message shapes."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: PLC0415

    attrs: dict[str, Any] = {
        INPUT_MESSAGES: json.dumps([_message(m) for m in step.messages]),
        OUTPUT_MESSAGES: json.dumps([_output(step)]),
    }
    if step.system:
        attrs[SYSTEM_INSTRUCTIONS] = json.dumps([{"type": "text", "content": step.system}])
    return Span.Event(time_unix_nano=at, name=CONTENT_EVENT, attributes=_attributes(attrs))


def _message(message: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if message.text:
        parts.append({"type": "text", "content": message.text})
    parts += [_call_part(c) for c in message.tool_calls]
    parts += [
        {"type": "tool_call_response", "id": r.call_id, "response": r.content}
        for r in message.tool_results
    ]
    return {"role": message.role, "parts": parts}


def _output(step: Any) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if step.text:
        parts.append({"type": "text", "content": step.text})
    parts += [_call_part(c) for c in step.tool_calls]
    return {"role": "assistant", "parts": parts, "finish_reason": step.stop_reason}


def _call_part(call: Any) -> dict[str, Any]:
    arguments: Any = call.arguments if call.raw_arguments is None else call.raw_arguments
    return {"type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments}


# --- blame and lint --------------------------------------------------------------------------


def findings_by_step(blame: Any, lint: Any, run_ids: Sequence[str]) -> dict[str, _Findings]:
    """Blame and lint reports, checked and sorted by the run and the step they name.

    A report for a run that is not being exported is an error: silently dropping it would
    look like a clean run.
    """
    out: dict[str, _Findings] = {}
    single = run_ids[0] if len(run_ids) == 1 else None
    if blame is not None:
        if not isinstance(blame, dict) or not isinstance(blame.get("steps"), list):
            raise SeamtapeError('the blame report is not a blame JSON report (no "steps" list)')
        run_id = _report_run(blame.get("run_id"), run_ids, single, "blame report")
        findings = out.setdefault(run_id, _Findings())
        for rank, entry in enumerate(blame["steps"], start=1):
            if isinstance(entry, dict) and isinstance(entry.get("step"), int):
                findings.blame[entry["step"]] = {**entry, "rank": rank}
    if lint is not None:
        items = lint.get("findings") if isinstance(lint, dict) else lint
        if not isinstance(items, list):
            raise SeamtapeError(
                'the lint report is not a list of findings (or {"findings": [...]})'
            )
        default_run = lint.get("run_id") or lint.get("run") if isinstance(lint, dict) else None
        for item in items:
            if not isinstance(item, dict):
                raise SeamtapeError("a lint finding is not a JSON object")
            run_id = _report_run(
                item.get("run_id") or item.get("run") or default_run,
                run_ids,
                single,
                "lint finding",
            )
            step = item.get("step")
            out.setdefault(run_id, _Findings()).lint.setdefault(
                step if isinstance(step, int) else 0, []
            ).append(item)
    return out


def _report_run(named: Any, run_ids: Sequence[str], single: str | None, what: str) -> str:
    if named is None:
        if single is None:
            raise SeamtapeError(f"the {what} names no run; export one run with --run")
        return single
    matches = [r for r in run_ids if r == named or r.startswith(str(named))]
    if len(matches) != 1:
        raise SeamtapeError(f"the {what} is about run {named}, which is not being exported")
    return matches[0]


def _finding_attributes(findings: _Findings, step: int) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    blamed = findings.blame.get(step)
    if blamed is not None:
        attrs["seamtape.blame.rank"] = blamed["rank"]
        for key in ("flip_rate", "low", "high", "trials", "flips", "verdict"):
            if key in blamed and blamed[key] is not None:
                name = {"low": "ci_low", "high": "ci_high"}.get(key, key)
                attrs[f"seamtape.blame.{name}"] = blamed[key]
    found = findings.lint.get(step)
    if found:
        attrs["seamtape.lint.rules"] = [str(_rule(f)) for f in found]
        attrs["seamtape.lint.messages"] = [str(f.get("message", "")) for f in found]
        attrs["seamtape.lint.severities"] = [str(f.get("severity", "")) for f in found]
    return attrs


def _rule(finding: dict[str, Any]) -> Any:
    return finding.get("rule") or finding.get("code") or finding.get("id") or ""


# --- encoding --------------------------------------------------------------------------------


def _id(size: int, *parts: str) -> bytes:
    """A trace or span id derived from the run, so that an export is reproducible."""
    return hashlib.sha256("\x1f".join(parts).encode()).digest()[:size]


def _nanos(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def _attributes(values: dict[str, Any]) -> list[Any]:
    return [_key_value(k, v) for k, v in values.items()]


def _key_value(key: str, value: Any) -> Any:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue  # noqa: PLC0415

    return KeyValue(key=key, value=_any_value(value))


def _any_value(value: Any) -> Any:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue  # noqa: PLC0415

    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[_any_value(v) for v in value]))
    return AnyValue(string_value=str(value))


def attribute_map(attributes: Iterable[Any]) -> dict[str, Any]:
    """OTLP ``KeyValue``s as a plain dict (arrays as lists)."""
    return {kv.key: _plain(kv.value) for kv in attributes}


def _plain(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attribute_map(value.kvlist_value.values)
    if kind is None:
        return None
    return getattr(value, kind)
