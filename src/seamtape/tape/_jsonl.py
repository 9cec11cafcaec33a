"""Runs as JSON Lines: ``export_runs`` and ``import_runs``, byte-exact both ways.

One JSON object a line, readable in a code review: a header, then for each run its ``run``
line, its ``exchange`` lines in step order and its ``draw`` lines. A body is written as JSON
when it is JSON that re-serializes to the very same bytes (``{"json": ..., "style": ...}``),
as text when it is other UTF-8 (``{"text": ...}``), else as base64 (``{"base64": ...}``);
each carries its sha256, which the import checks, so an edited body is refused.
The format is described in docs/tape-format.md.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._errors import TapeError
from ._tape import Draw, Exchange, Tape

__all__ = ["ImportReport", "export_runs", "import_runs", "write_export"]

FORMAT = "seamtape-runs"
FORMAT_VERSION = 1

# How a JSON body was serialized; tried in this order, the first that gives back its bytes.
_STYLES: dict[str, Callable[[Any], str]] = {
    "compact": lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    "compact-ascii": lambda v: json.dumps(v, separators=(",", ":")),
    "spaced": lambda v: json.dumps(v, ensure_ascii=False),
    "spaced-ascii": lambda v: json.dumps(v),
    "indent2": lambda v: json.dumps(v, indent=2, ensure_ascii=False),
    "indent2-ascii": lambda v: json.dumps(v, indent=2),
}


def _body(data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    if data[:1] in (b"{", b"["):
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        else:
            for style, dump in _STYLES.items():
                if dump(value).encode() == data:
                    return {"json": value, "style": style, "sha256": digest}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode(), "sha256": digest}
    return {"text": text, "sha256": digest}


def _unbody(entry: Any, where: str) -> tuple[bytes, bytes]:
    """A body's bytes and sha256 from its exported form."""
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise TapeError(f"{where}: a body needs a sha256")
    if "json" in entry:
        dump = _STYLES.get(entry.get("style", ""))
        if dump is None:
            raise TapeError(f"{where}: unknown JSON style {entry.get('style')!r}")
        data = dump(entry["json"]).encode()
    elif isinstance(entry.get("text"), str):
        data = entry["text"].encode("utf-8")
    elif isinstance(entry.get("base64"), str):
        try:
            data = base64.b64decode(entry["base64"], validate=True)
        except ValueError:
            raise TapeError(f"{where}: body is not valid base64") from None
    else:
        raise TapeError(f"{where}: a body is one of json, text or base64")
    digest = hashlib.sha256(data).digest()
    if digest.hex() != entry["sha256"]:
        raise TapeError(f"{where}: the body does not match its sha256 (edited by hand?)")
    return data, digest


def export_runs(tape: Tape, runs: Sequence[str] = ()) -> Iterator[str]:
    """The lines (without newline) exporting these runs, or every run, with their forks'
    parents first so an import can follow the lineage."""
    chosen = [tape.run(r) for r in runs] if runs else tape.runs()
    yield json.dumps({"format": FORMAT, "version": FORMAT_VERSION})
    for run in chosen:
        yield _line(
            {
                "type": "run",
                "id": run.id,
                "name": run.name,
                "created": run.created,
                "parent": run.parent,
                "fork_step": run.fork_step,
                "mutation": run.mutation,
                "upstream": run.upstream,
                "status": run.status,
                "result": run.result,
                "has_result": run.has_result,
                "outcome": run.outcome,
                "digest": run.digest,
            }
        )
        for ex in tape.exchanges(run.id):
            yield _line(
                {
                    "type": "exchange",
                    "run": run.id,
                    "seq": ex.seq,
                    "batch": ex.batch,
                    "method": ex.method,
                    "url": ex.url,
                    "request_headers": json.loads(ex.request_headers_json),
                    "request": _body(tape.blob(ex.request_body)),
                    "status": ex.status,
                    "http_version": ex.http_version,
                    "reason": ex.reason,
                    "response_headers": json.loads(ex.response_headers_json),
                    "response": _body(tape.blob(ex.response_body, remember=False)),
                    "chunks": None if ex.chunks_json is None else json.loads(ex.chunks_json),
                    "error": ex.error,
                    "started": ex.started,
                    "ended": ex.ended,
                }
            )
        for draw in tape.draws(run.id):
            yield _line(
                {
                    "type": "draw",
                    "run": run.id,
                    "seq": draw.seq,
                    "step": draw.step,
                    "kind": draw.kind,
                    "value": draw.value,
                }
            )


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def write_export(
    path: str | os.PathLike[str], out: str | os.PathLike[str] | None, runs: Sequence[str] = ()
) -> int:
    """Export to the file ``out`` (written beside it and renamed into place, so a crash never
    leaves half a file) or to stdout when ``out`` is None; returns the lines written."""
    with Tape(path) as tape:
        if out is None:
            count = 0
            for line in export_runs(tape, runs):
                sys.stdout.write(line + "\n")
                count += 1
            sys.stdout.flush()
            return count
        target = Path(out)
        fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                count = 0
                for line in export_runs(tape, runs):
                    fh.write(line + "\n")
                    count += 1
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(scratch, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(scratch)
            raise
    return count


@dataclass
class ImportReport:
    path: str
    runs_added: list[str] = field(default_factory=list)
    runs_skipped: list[str] = field(default_factory=list)  # already in the tape, identical
    exchanges: int = 0


def import_runs(path: str | os.PathLike[str], lines: IO[str]) -> ImportReport:
    """Add the runs of an export to the tape at ``path`` (created if missing), all in one
    transaction: a bad line, or a crash, leaves the tape as it was."""
    report = ImportReport(str(path))
    records = list(_records(lines))
    with Tape(path, create=True) as tape:
        with tape._write() as db:
            skipping: set[str] = set()
            for where, obj in records:
                kind = obj["type"]
                if kind == "run":
                    row = db.execute("SELECT digest FROM run WHERE id=?", (obj["id"],)).fetchone()
                    if row is not None:
                        if row[0] != obj["digest"] or row[0] is None:
                            raise TapeError(
                                f"{where}: run {obj['id']} is already in the tape with "
                                "different contents; nothing was imported"
                            )
                        skipping.add(obj["id"])
                        report.runs_skipped.append(obj["id"])
                        continue
                    _insert_run(db, obj, where)
                    report.runs_added.append(obj["id"])
                elif obj.get("run") in skipping:
                    continue
                elif obj.get("run") not in report.runs_added:
                    raise TapeError(f"{where}: a {kind} of run {obj.get('run')!r} before its run")
                elif kind == "exchange":
                    _insert_exchange(tape, db, obj, where)
                    report.exchanges += 1
                else:
                    tape._insert_draws(
                        db, obj["run"], [Draw(obj["seq"], obj["kind"], obj["value"], obj["step"])]
                    )
    return report


def _records(lines: IO[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    header = False
    for number, text in enumerate(lines, start=1):
        where = f"line {number}"
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise TapeError(f"{where}: not JSON ({exc.args[0]})") from None
        if not isinstance(obj, dict):
            raise TapeError(f"{where}: not a JSON object")
        if not header:
            header = True
            if obj.get("format") != FORMAT:
                raise TapeError(f"{where}: not a seamtape export (no {FORMAT!r} header)")
            if not isinstance(obj.get("version"), int) or obj["version"] > FORMAT_VERSION:
                raise TapeError(
                    f"{where}: export format {obj.get('version')!r} is newer than this "
                    f"seamtape reads ({FORMAT_VERSION}); upgrade seamtape"
                )
            continue
        if obj.get("type") not in ("run", "exchange", "draw"):
            raise TapeError(f"{where}: unknown line type {obj.get('type')!r}")
        yield where, obj
    if not header:
        raise TapeError("an empty file, not a seamtape export")


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TapeError(f"{where}: field {name!r} is missing or of the wrong type")
    return value


def _insert_run(db: Any, obj: dict[str, Any], where: str) -> None:
    optional_text = (str, type(None))
    db.execute(
        "INSERT INTO run(id, name, created, parent, fork_step, mutation, upstream, status, "
        "result, outcome, digest) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            _field(obj, "id", str, where),
            _field(obj, "name", optional_text, where),
            _field(obj, "created", (int, float), where),
            _field(obj, "parent", optional_text, where),
            _field(obj, "fork_step", (int, type(None)), where),
            None if obj.get("mutation") is None else json.dumps(obj["mutation"]),
            _field(obj, "upstream", optional_text, where),
            _field(obj, "status", str, where),
            json.dumps(obj.get("result"), sort_keys=True) if obj.get("has_result") else None,
            _field(obj, "outcome", optional_text, where),
            _field(obj, "digest", optional_text, where),
        ),
    )


def _insert_exchange(tape: Tape, db: Any, obj: dict[str, Any], where: str) -> None:
    request, request_hash = _unbody(obj.get("request"), f"{where} request")
    response, response_hash = _unbody(obj.get("response"), f"{where} response")
    exchange = Exchange(
        run=obj["run"],
        seq=_field(obj, "seq", int, where),
        batch=_field(obj, "batch", int, where),
        method=_field(obj, "method", str, where),
        url=_field(obj, "url", str, where),
        request_headers_json=json.dumps(_field(obj, "request_headers", list, where)),
        request_body=request_hash,
        status=_field(obj, "status", int, where),
        response_headers_json=json.dumps(_field(obj, "response_headers", list, where)),
        http_version=_field(obj, "http_version", str, where),
        reason=_field(obj, "reason", str, where),
        response_body=response_hash,
        chunks_json=None if obj.get("chunks") is None else json.dumps(obj["chunks"]),
        error_json=None if obj.get("error") is None else json.dumps(obj["error"]),
        started=_field(obj, "started", (int, float), where),
        ended=_field(obj, "ended", (int, float), where),
    )
    tape._put_blob(db, request, request_hash)
    tape._put_blob(db, response, response_hash)
    tape._insert_exchange(db, exchange, [])
    tape.remember(request_hash, request)
