"""The OpenTelemetry commands: export a tape as a GenAI trace, ingest a trace as runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from ._app import RunOpt, TapeArg, app, new_console


def _otel() -> ModuleType:
    from seamtape._errors import SeamtapeError

    try:
        from seamtape.lenses import otel
    except ImportError as exc:
        raise SeamtapeError(
            f"OpenTelemetry export needs the otel extra ({exc.name} is missing): "
            "pip install 'seamtape[otel]'"
        ) from None
    return otel


def _report(path: Path | None, option: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint=option) from None
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}", param_hint=option) from None


@app.command()
def export(
    tape: TapeArg,
    otel_format: Annotated[
        bool, typer.Option("--otel", help="Write OTLP JSON by the GenAI semantic conventions.")
    ] = False,
    run: RunOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The file to write (default for JSON Lines: stdout)."),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option("--otlp-endpoint", help="Also send it to this OTLP/HTTP collector URL."),
    ] = None,
    otlp_header: Annotated[
        list[str] | None,
        typer.Option(
            "--otlp-header", help="KEY=VALUE sent with the trace (repeat).", show_default=False
        ),
    ] = None,
    content: Annotated[
        bool,
        typer.Option(
            "--content", help="Include messages and tool arguments and results (opt-in: PII)."
        ),
    ] = False,
    blame: Annotated[
        Path | None, typer.Option(help="A blame report (seamtape blame --json) to attach.")
    ] = None,
    lint: Annotated[Path | None, typer.Option(help="Lint findings (JSON) to attach.")] = None,
    service_name: Annotated[str, typer.Option(help="The trace's service.name.")] = "seamtape",
) -> None:
    """Export TAPE's runs (default: all; --run: one) as JSON Lines, or with --otel as an
    OpenTelemetry trace."""
    if not otel_format:  # the default: the runs as JSON Lines (the store commands' format)
        from .store import export_jsonl

        export_jsonl(tape, [run] if run else [], out)
        return
    if out is None and endpoint is None:
        raise typer.BadParameter("say where the trace goes: -o FILE and/or --otlp-endpoint URL")
    headers = {}
    for item in otlp_header or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--otlp-header")
        headers[key.strip()] = value.strip()
    otel = _otel()
    trace = otel.export_trace(
        tape,
        run,
        content=content,
        blame=_report(blame, "--blame"),
        lint=_report(lint, "--lint"),
        service_name=service_name,
    )
    spans = sum(len(s.spans) for r in trace.resource_spans for s in r.scope_spans)
    console = new_console()
    if out is not None:
        otel.write_trace(trace, out)
        console.print(f"wrote {spans} spans to {out}", markup=False)
    if endpoint is not None:
        sent = otel.push_trace(trace, endpoint, headers=headers)
        console.print(f"sent {sent} spans to {endpoint}", markup=False)


@app.command()
def ingest(
    trace: Annotated[
        Path, typer.Argument(help="An OTLP trace file (JSON, JSON Lines or protobuf).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The tape to add the runs to (created if missing).")
    ],
    name: Annotated[str | None, typer.Option(help="A name for the run(s).")] = None,
) -> None:
    """Build runs from a GenAI trace made elsewhere: steps to read, not bytes to replay."""
    report = _otel().ingest_trace(trace, out, name=name)
    skipped = (
        f"; {report.skipped_traces} trace(s) without model calls skipped"
        if report.skipped_traces
        else ""
    )
    new_console().print(
        f"ingested {len(report.runs)} run(s), {report.steps} steps, into {out} "
        f"(not replayable: a trace holds no bytes){skipped}",
        markup=False,
    )
