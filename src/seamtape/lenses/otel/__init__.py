"""OpenTelemetry: a tape's runs as GenAI traces (OTLP JSON, or pushed over OTLP/HTTP), and
GenAI traces from elsewhere as runs to read (not to replay).

Needs the ``otel`` extra: ``pip install 'seamtape[otel]'``.
"""

from ._export import export_trace
from ._ingest import INGESTED, IngestReport, ingest_trace
from ._otlp import push_trace, read_trace, trace_from_json, trace_to_json, write_trace

__all__ = [
    "INGESTED",
    "IngestReport",
    "export_trace",
    "ingest_trace",
    "push_trace",
    "read_trace",
    "trace_from_json",
    "trace_to_json",
    "write_trace",
]
