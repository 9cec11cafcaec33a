"""OTLP's two encodings of a trace, and sending one over OTLP/HTTP.

The messages are ``opentelemetry-proto``'s; protobuf's own JSON mapping does the encoding,
with the one change the OTLP spec makes to it: trace and span ids are hex, not base64.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from seamtape._errors import SeamtapeError

__all__ = ["push_trace", "read_trace", "trace_from_json", "trace_to_json", "write_trace"]

_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})
_PATH = "/v1/traces"


def trace_to_json(request: Any, *, indent: int | None = 2) -> str:
    """An ``ExportTraceServiceRequest`` as OTLP JSON (what collectors and file exporters read)."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from google.protobuf import json_format  # noqa: PLC0415

    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(_ids(doc, _b64_to_hex), indent=indent)


def trace_from_json(text: str | bytes) -> Any:
    """An ``ExportTraceServiceRequest`` from OTLP JSON; SeamtapeError if it is not one."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from google.protobuf import json_format  # noqa: PLC0415

    request = _request()
    try:
        doc = json.loads(text)
        json_format.ParseDict(_ids(doc, _hex_to_b64), request, ignore_unknown_fields=True)
    except (ValueError, json_format.ParseError) as exc:
        raise SeamtapeError(f"not an OTLP JSON trace: {exc}") from None
    return request


def read_trace(path: str | os.PathLike[str]) -> Any:
    """A trace file: OTLP JSON, JSON Lines of OTLP JSON (a file exporter's), or protobuf."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from google.protobuf.message import DecodeError  # noqa: PLC0415

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SeamtapeError(f"cannot read {path}: {exc.strerror or exc}") from None
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        try:
            return trace_from_json(data)
        except SeamtapeError:
            lines = [line for line in data.splitlines() if line.strip()]
            if len(lines) < 2:
                raise
        merged = _request()
        for number, line in enumerate(lines, start=1):
            try:
                merged.resource_spans.extend(trace_from_json(line).resource_spans)
            except SeamtapeError as exc:
                raise SeamtapeError(f"{path}, line {number}: {exc}") from None
        return merged
    request = _request()
    try:
        request.ParseFromString(data)
    except DecodeError:
        raise SeamtapeError(
            f"{path} is neither OTLP JSON nor an OTLP protobuf ExportTraceServiceRequest"
        ) from None
    return request


def write_trace(request: Any, path: str | os.PathLike[str]) -> None:
    """Write OTLP JSON to ``path`` whole: written beside it, then moved into place."""
    text = trace_to_json(request)
    tmp = f"{os.fspath(path)}.partial"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise SeamtapeError(f"cannot write {path}: {exc.strerror or exc}") from None


def push_trace(
    request: Any, endpoint: str, *, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> int:
    """Send the trace to an OTLP/HTTP collector as protobuf; returns the spans it accepted.

    ``endpoint`` is the collector's base URL (``/v1/traces`` is added, as the OTLP exporters
    do with ``OTEL_EXPORTER_OTLP_ENDPOINT``) or the full traces URL.
    """
    # Lazy: httpx comes with the otel extra, for --otlp-endpoint only.
    import httpx  # noqa: PLC0415

    url = traces_url(endpoint)
    try:
        response = httpx.post(
            url,
            content=request.SerializeToString(),
            headers={"content-type": "application/x-protobuf", **(headers or {})},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise SeamtapeError(f"cannot send the trace to {url}: {exc}") from None
    if not 200 <= response.status_code < 300:
        raise SeamtapeError(
            f"the collector at {url} answered {response.status_code}: {response.text[:300]}"
        )
    sent = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    rejected = _rejected(response)
    if rejected:
        raise SeamtapeError(f"the collector at {url} rejected {rejected} of {sent} spans")
    return sent


def traces_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SeamtapeError(f"--otlp-endpoint {endpoint!r}: expected an http(s) URL")
    if parts.path in ("", "/"):
        parts = parts._replace(path=_PATH)
    return urlunsplit(parts)


def _rejected(response: Any) -> int:
    """Spans a collector's partial-success answer says it dropped (0 if it says nothing)."""
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from google.protobuf.message import DecodeError  # noqa: PLC0415
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceResponse,
    )

    if not response.content:
        return 0
    answer = ExportTraceServiceResponse()
    try:
        if "json" in response.headers.get("content-type", ""):
            return int(
                json.loads(response.content).get("partialSuccess", {}).get("rejectedSpans", 0)
            )
        answer.ParseFromString(response.content)
    except (DecodeError, ValueError, AttributeError):
        return 0
    return answer.partial_success.rejected_spans


def _request() -> Any:
    # Lazy: the otel extra's protobuf modules load only when a trace is built or read.
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: PLC0415
        ExportTraceServiceRequest,
    )

    return ExportTraceServiceRequest()


def _ids(doc: Any, convert: Any) -> Any:
    if isinstance(doc, dict):
        return {
            k: convert(v) if k in _ID_KEYS and isinstance(v, str) else _ids(v, convert)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_ids(v, convert) for v in doc]
    return doc


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_b64(value: str) -> str:
    if len(value) not in (16, 32):
        return value  # already base64 (protobuf's own JSON mapping), or empty
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return value
    return base64.b64encode(raw).decode()
