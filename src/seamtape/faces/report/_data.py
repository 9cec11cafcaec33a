"""What the report shows, as one JSON document: runs, steps, blame, lint findings and diffs.

The page (``web/report.js``) renders this document and nothing else, so the single-file
report and the live server show the same thing. Bodies that would make the file large are
gzip-compressed (the page decodes them on demand with ``DecompressionStream``), and a request
body that repeats the previous request's bytes (a conversation grows by appending) is kept
as a delta against it, as the tape keeps it.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seamtape._errors import SeamtapeError, UnknownRunError
from seamtape.tape import Exchange, RunInfo, Tape

__all__ = [
    "DATA_VERSION",
    "LINT_SEVERITIES",
    "DiffSpec",
    "ReportError",
    "StepCache",
    "load_blame",
    "load_lint",
    "report_data",
]

DATA_VERSION = 1
LINT_SEVERITIES = ("error", "warning", "info")
# `seamtape lint --format json` names its severities critical, warn and info
_LINT_ALIASES = {"critical": "error", "warn": "warning"}
_GZIP_MIN = 1024  # bodies shorter than this are kept as text: gzip would save little
_KEYFRAME = 32  # every this many steps a request body is stored whole, so no chain is long
_DETAILED_RUNS = 200  # runs beyond this are listed in the tree without their steps
_AUTO_DIFFS = 20  # forks diffed against their parent without being asked
_TEXT_LIMIT = 4000  # a run's result is cut to this many characters
_CHANGES_LIMIT = 40  # changed paths kept per aligned pair
_VALUE_LIMIT = 300  # characters of a changed value


class ReportError(SeamtapeError):
    """A report cannot be made from what was given (a bad blame or lint file, an unknown run)."""


@dataclass
class DiffSpec:
    """Two runs to diff: ``run_a`` of ``tape_a`` against ``run_b`` of ``tape_b`` (ids, id
    prefixes or names). ``run_a`` None: the run the report shows; ``run_b`` None: the latest
    run of ``tape_b``. Both tapes must be among the report's."""

    tape_a: str
    run_a: str | None
    tape_b: str
    run_b: str | None


@dataclass
class _TapeDoc:
    path: str
    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)


# -- blame and lint files ------------------------------------------------------------------


def load_blame(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A blame result as ``seamtape blame --json`` prints it, checked for the fields we draw."""
    doc = _read_json(path, "blame")
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
        raise ReportError(f"{path}: not a blame result (expected `seamtape blame --json` output)")
    if not isinstance(doc.get("run_id"), str):
        raise ReportError(f"{path}: a blame result needs its run_id")
    for entry in doc["steps"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            raise ReportError(f"{path}: every blamed step needs a step number")
    return doc


def load_lint(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Lint findings: a list (or ``{"findings": [...]}``) of ``{rule, severity, steps, message}``
    with an optional ``run`` id; see docs/report.md."""
    doc = _read_json(path, "lint")
    findings = doc.get("findings") if isinstance(doc, dict) else doc
    default_run = doc.get("run") if isinstance(doc, dict) else None
    if not isinstance(findings, list):
        raise ReportError(f"{path}: expected a list of findings, or {{'findings': [...]}}")
    out = []
    for i, f in enumerate(findings, start=1):
        where = f"{path}: finding {i}"
        if not isinstance(f, dict):
            raise ReportError(f"{where} is not an object")
        missing = [k for k in ("rule", "severity", "steps", "message") if k not in f]
        if missing:
            raise ReportError(f"{where} lacks {', '.join(missing)}")
        severity = _LINT_ALIASES.get(f["severity"], f["severity"])
        if severity not in LINT_SEVERITIES:
            raise ReportError(f"{where}: severity must be one of {', '.join(LINT_SEVERITIES)}")
        steps = f["steps"]
        if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps
        ):
            raise ReportError(f"{where}: steps must be a list of step numbers")
        run = f.get("run", default_run)
        if run is not None and not isinstance(run, str):
            raise ReportError(f"{where}: run must be a run id")
        out.append(
            {
                "rule": str(f["rule"]),
                "severity": severity,
                "steps": steps,
                "message": str(f["message"]),
                "run": run,
            }
        )
    return out


def _read_json(path: str | os.PathLike[str], what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise ReportError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ReportError(f"{path}: the {what} file is not JSON ({exc})") from None


# -- the document --------------------------------------------------------------------------


def report_data(
    tapes: Sequence[str | os.PathLike[str]],
    *,
    run: str | None = None,
    blame: dict[str, Any] | None = None,
    lint: list[dict[str, Any]] | None = None,
    diffs: Sequence[DiffSpec] = (),
    missing_ok: bool = False,
    cache: StepCache | None = None,
) -> dict[str, Any]:
    """The report's document for these tapes; ``run`` (of the first tape) is shown first.

    ``blame`` is a blame result (``load_blame``) and ``lint`` a list of findings
    (``load_lint``); both point at a run of the first tape. ``diffs`` are drawn besides the
    forks of the shown run, each diffed against its parent. With ``missing_ok`` a tape that
    does not exist yet is shown with no runs (the live server, before a recording starts);
    ``cache`` keeps decoded steps from one build to the next.
    """
    cache = cache or StepCache()
    if not tapes:
        raise ReportError("no tape to report on")
    docs: list[_TapeDoc] = []
    selected: str | None = None
    for index, path in enumerate(tapes):
        if missing_ok and not os.path.exists(path):
            docs.append(_TapeDoc(os.fspath(path), os.path.basename(os.fspath(path))))
            continue
        with Tape(path) as tape:
            infos = tape.runs()
            if index == 0:
                if run is not None:
                    selected = tape.run(run).id
                elif blame is not None:
                    selected = _blamed_run(tape, blame["run_id"])
                elif infos:
                    selected = _latest_root(infos).id
            wanted = _detailed(infos, selected if index == 0 else None)
            doc = _TapeDoc(os.fspath(path), os.path.basename(os.fspath(path)))
            for info in infos:
                doc.runs.append(_run_doc(tape, info, cache if info.id in wanted else None))
            docs.append(doc)
    if blame is not None and docs[0].runs:
        known = {r["id"] for r in docs[0].runs}
        if blame["run_id"] not in known:
            raise ReportError(
                f"the blame result is for run {blame['run_id']}, which {docs[0].path} does not hold"
            )
    diff_docs = [_diff_doc(spec, docs) for spec in _diff_specs(docs, selected, diffs)]
    return {
        "version": DATA_VERSION,
        "tapes": [{"path": d.path, "label": d.label, "runs": d.runs} for d in docs],
        "selected": {"tape": 0, "run": selected},
        "blame": blame,
        "lint": lint or [],
        "diffs": diff_docs,
    }


def _blamed_run(tape: Tape, run_id: str) -> str:
    try:
        return tape.run(run_id).id
    except UnknownRunError:
        raise ReportError(
            f"the blame result is for run {run_id}, which {tape.path} does not hold"
        ) from None


def _latest_root(infos: list[RunInfo]) -> RunInfo:
    roots = [r for r in infos if r.parent is None]
    return roots[-1] if roots else infos[-1]


def _detailed(infos: list[RunInfo], selected: str | None) -> set[str]:
    """The runs whose steps are included: the shown run, its lineage, then the latest others."""
    by_id = {r.id: r for r in infos}
    wanted: list[str] = []
    current = by_id.get(selected) if selected else None
    while current is not None and current.id not in wanted:
        wanted.append(current.id)
        current = by_id.get(current.parent) if current.parent else None
    for info in reversed(infos):
        if len(wanted) >= _DETAILED_RUNS:
            break
        if info.id not in wanted:
            wanted.append(info.id)
    return set(wanted)


def _run_doc(tape: Tape, info: RunInfo, cache: StepCache | None) -> dict[str, Any]:
    """A run's summary, with its steps when ``cache`` is given."""
    doc: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "created": info.created,
        "parent": info.parent,
        "fork_step": info.fork_step,
        "mutation": info.mutation,
        "status": info.status,
        "outcome": info.outcome,
        "result": _clip(json.dumps(info.result, ensure_ascii=False, sort_keys=True))
        if info.has_result
        else None,
        "upstream": info.upstream,
        "step_count": info.exchanges,
        "steps": None,
    }
    if cache is not None:
        doc["steps"] = cache.steps(tape, info.id)
        doc["headers"] = cache.headers(tape, info.id)
        doc["cost_usd"] = sum(s["cost"] or 0.0 for s in doc["steps"])
        doc["tokens"] = {
            "input": sum(s["tokens"]["input"] for s in doc["steps"]),
            "output": sum(s["tokens"]["output"] for s in doc["steps"]),
        }
    return doc


class StepCache:
    """Decoded steps kept between builds (the live server's): a run only grows, so a rebuild
    decodes only the exchanges recorded since the last one."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], _RunSteps] = {}

    def steps(self, tape: Tape, run_id: str) -> list[dict[str, Any]]:
        exchanges = tape.exchanges(run_id)
        key = (os.fspath(tape.path), run_id)
        run = self._runs.get(key)
        if run is None or len(run.docs) > len(exchanges):  # pruned or replaced: start over
            run = self._runs[key] = _RunSteps()
        run.extend(exchanges)
        return list(run.docs)

    def headers(self, tape: Tape, run_id: str) -> list[tuple[str, str]]:
        """The run's distinct header lines; a step's headers are indexes into this list."""
        return list(self._runs[(os.fspath(tape.path), run_id)].header_list)


@dataclass
class _RunSteps:
    """One run's step documents so far, and what the next step's deltas are taken against."""

    docs: list[dict[str, Any]] = field(default_factory=list)
    first: float | None = None
    previous_body: bytes | None = None
    previous_messages: list[Any] = field(default_factory=list)  # wire.Message
    header_list: list[tuple[str, str]] = field(default_factory=list)
    header_index: dict[tuple[str, str], int] = field(default_factory=dict)

    def _headers(self, headers: list[tuple[str, str]]) -> list[int]:
        """Header lines as indexes: every step repeats most of the step before's."""
        out = []
        for line in headers:
            index = self.header_index.get(line)
            if index is None:
                index = self.header_index[line] = len(self.header_list)
                self.header_list.append(line)
            out.append(index)
        return out

    def extend(self, exchanges: list[Exchange]) -> None:
        from seamtape import wire
        from seamtape._steps import decode_exchange

        if self.first is None and exchanges:
            self.first = min(ex.started for ex in exchanges)
        for ex in exchanges[len(self.docs) :]:
            request, response = ex.request_bytes(), ex.response_bytes()
            step: Any = None
            note = ""
            if ex.status == 0:
                note = "no response: " + _error_text(ex)
            else:
                try:
                    step = decode_exchange(ex, request, response)
                except wire.CodecError as exc:
                    note = str(exc)
                    if ex.error:
                        note += f" (transport error: {_error_text(ex)})"
            doc = _step_doc(ex, step, note, self.first or 0.0)
            doc["raw"]["request_headers"] = self._headers(ex.request_headers)
            doc["raw"]["response_headers"] = self._headers(ex.response_headers)
            if step is not None:
                shared = _shared_prefix(self.previous_messages, step.messages)
                doc["decoded"]["shared"] = shared
                doc["decoded"]["messages"] = [_message(m) for m in step.messages[shared:]]
                self.previous_messages = step.messages
            index = len(self.docs)
            keyframe = self.previous_body is None or index % _KEYFRAME == 0
            doc["raw"]["request_body"] = _body(
                request, None if keyframe else self.previous_body, index - 1
            )
            doc["raw"]["response_body"] = _body(response, None, None)
            self.previous_body = request
            self.docs.append(doc)


def _step_doc(ex: Exchange, step: Any, note: str, first: float) -> dict[str, Any]:
    chunks = ex.chunks
    timing: dict[str, Any] | None = None
    if chunks:
        times = [t for _, t in chunks]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        timing = {
            "chunks": len(chunks),
            "first_ms": round(times[0], 2),
            "max_gap_ms": round(max(gaps), 2) if gaps else 0.0,
            "times": [round(t, 1) for t in times[:: max(1, len(times) // 200)]],
        }
    doc: dict[str, Any] = {
        "seq": ex.seq,
        "batch": ex.batch,
        "method": ex.method,
        "url": ex.url,
        "status": ex.status,
        "start_ms": round((ex.started - first) * 1000.0, 2),
        "ms": round(ex.duration_ms, 2),
        "stream": timing,
        "error": ex.error,
        "note": note,
        "provider": "",
        "api": "",
        "model": "",
        "stop": "",
        "tools": [],
        "tokens": {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0},
        "cost": None,
        "decoded": None,
        "raw": {
            "http_version": ex.http_version,
            "reason": ex.reason,
        },
    }
    if step is None:
        return doc
    usage = step.usage
    doc.update(
        provider=step.provider,
        api=step.api,
        model=step.model,
        stop=step.stop_reason,
        tools=[c.name for c in step.tool_calls],
        tokens={
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "cache_read": usage.cache_read_tokens,
            "cache_write": usage.cache_write_tokens,
        },
        cost=step.cost_usd,
        decoded={
            "system": step.system,
            "tools_offered": [t.name for t in step.tools],
            "text": step.text,
            "tool_calls": [_call(c) for c in step.tool_calls],
            "error_type": step.error_type,
            "stream": step.stream,
        },
    )
    return doc


def _message(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "text": message.text}
    if message.tool_calls:
        out["tool_calls"] = [_call(c) for c in message.tool_calls]
    if message.tool_results:
        out["tool_results"] = [
            {"call_id": r.call_id, "content": r.content, "is_error": r.is_error}
            for r in message.tool_results
        ]
    return out


def _call(call: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.raw_arguments is not None:
        out["raw_arguments"] = call.raw_arguments
    return out


def _shared_prefix(a: list[Any], b: list[Any]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _error_text(ex: Exchange) -> str:
    error = ex.error or {}
    return f"{error.get('type', 'error')}: {error.get('message', '')}".strip()


def _clip(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- bodies --------------------------------------------------------------------------------


def _piece(data: bytes) -> dict[str, Any]:
    """Bytes for the page: text when short and UTF-8, else gzip (or plain) base64."""
    if len(data) >= _GZIP_MIN:
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        return {"gz": base64.b64encode(packed).decode("ascii")}
    try:
        return {"t": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def _body(data: bytes, base: bytes | None, base_index: int | None) -> dict[str, Any]:
    """A body whole, or as the previous request body's prefix and suffix around new bytes."""
    if base is not None and base_index is not None:
        old = base
        prefix = _common_prefix(old, data)
        suffix = _common_suffix(old, data, min(len(old), len(data)) - prefix)
        if prefix + suffix >= len(data) // 2 and len(data) >= _GZIP_MIN:
            return {
                "size": len(data),
                "base": base_index,  # index of the step, in this run's list, holding the base
                "prefix": prefix,
                "suffix": suffix,
                "mid": _piece(data[prefix : len(data) - suffix]),
            }
    return {"size": len(data), "whole": _piece(data)}


def _common_prefix(a: bytes, b: bytes) -> int:
    lo, hi, view = 0, min(len(a), len(b)), memoryview(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.startswith(view[:mid]):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi, view = 0, max(limit, 0), memoryview(b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a.endswith(view[len(b) - mid :]):
            lo = mid
        else:
            hi = mid - 1
    return lo


# -- diffs ---------------------------------------------------------------------------------


def _diff_specs(
    docs: list[_TapeDoc], selected: str | None, asked: Sequence[DiffSpec]
) -> list[DiffSpec]:
    """The diffs asked for, then each fork of the shown run (or of its parent) against it."""
    specs = [
        DiffSpec(s.tape_a, s.run_a if s.run_a is not None else selected, s.tape_b, s.run_b)
        for s in asked
    ]
    runs = docs[0].runs
    by_id = {r["id"]: r for r in runs}
    if selected is not None:
        root = by_id[selected]
        while root["parent"] and root["parent"] in by_id:
            root = by_id[root["parent"]]
        family = {root["id"]}
        forks = []
        for r in runs:  # runs come in creation order: a parent before its forks
            if r["parent"] in family:
                family.add(r["id"])
                forks.append(r)
        for r in forks[-_AUTO_DIFFS:]:
            specs.append(DiffSpec(docs[0].path, r["parent"], docs[0].path, r["id"]))
    seen: set[tuple[str, str | None, str, str | None]] = set()
    unique = []
    for s in specs:
        key = (s.tape_a, s.run_a, s.tape_b, s.run_b)
        if key not in seen:
            seen.add(key)
            unique.append(s)
    return unique


def _diff_doc(spec: DiffSpec, docs: list[_TapeDoc]) -> dict[str, Any]:
    from seamtape.lenses.diff import diff

    paths = [d.path for d in docs]
    if spec.tape_a not in paths or spec.tape_b not in paths:
        raise ReportError("a diff's tapes must be among the report's tapes")
    result = diff(spec.tape_a, spec.tape_b, run_a=spec.run_a, run_b=spec.run_b)
    first = result.first
    pairs = []
    for pair in result.pairs:
        view = pair.b or pair.a
        pairs.append(
            {
                "a": pair.a.seq if pair.a else None,
                "b": pair.b.seq if pair.b else None,
                "kind": pair.kind,
                "answer": view.answer if view else "",
                "changes": [
                    {"path": c.path, "a": _value(c.a), "b": _value(c.b)}
                    for c in pair.changes[:_CHANGES_LIMIT]
                ],
                "more_changes": max(0, len(pair.changes) - _CHANGES_LIMIT),
            }
        )
    return {
        "a": {"tape": paths.index(spec.tape_a), "run": result.a.run, "name": result.a.name},
        "b": {"tape": paths.index(spec.tape_b), "run": result.b.run, "name": result.b.name},
        "equal": result.equal,
        "first": None if first is None else result.pairs.index(first),
        "pairs": pairs,
        "tool_distance": result.tool_distance,
    }


def _value(value: Any) -> str:
    text = value if value == "<absent>" else json.dumps(value, ensure_ascii=False)
    return _clip(text, _VALUE_LIMIT)
