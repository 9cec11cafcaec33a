"""A tape's runs and steps as plain data: what ``seamtape show --json`` prints.

Runs come in lineage order: each recorded run, then the forks made from it (and theirs),
so a fork is read under its parent. The shape is documented in ``docs/json.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from typing import Any

from seamtape import wire
from seamtape._errors import SeamtapeError
from seamtape._steps import decode_exchange, steps_of
from seamtape.tape import RunInfo, Tape

__all__ = ["lineage_order", "step_detail", "summarize"]


def lineage_order(runs: list[RunInfo]) -> list[tuple[RunInfo, int]]:
    """Runs depth-first under their parents, each with its depth (0 for a root run)."""
    known = {r.id for r in runs}
    children: dict[str | None, list[RunInfo]] = {}
    for run in runs:
        parent = run.parent if run.parent in known else None
        children.setdefault(parent, []).append(run)
    ordered: list[tuple[RunInfo, int]] = []

    def visit(parent: str | None, depth: int) -> None:
        for run in children.get(parent, []):
            ordered.append((run, depth))
            visit(run.id, depth + 1)

    visit(None, 0)
    return ordered


def summarize(path: str | os.PathLike[str], *, run: str | None = None) -> dict[str, Any]:
    """Every run (or only ``run``) with its lineage, totals and steps."""
    with Tape(path) as tape:
        runs = [(tape.run(run), 0)] if run else lineage_order(tape.runs())
        default = tape.run().id if tape.runs() else None
        out = []
        for info, depth in runs:
            steps = steps_of(tape, info.id)
            exchanges = tape.exchanges(info.id)
            out.append(_run_dict(info, depth, exchanges, steps, default=info.id == default))
    return {"tape": os.fspath(path), "runs": out}


def _run_dict(
    info: RunInfo, depth: int, exchanges: list[Any], steps: list[Any], *, default: bool
) -> dict[str, Any]:
    decoded = [s for s in steps if s is not None]
    priced = [s.cost_usd for s in decoded if s.cost_usd is not None]
    return {
        "id": info.id,
        "name": info.name,
        "status": info.status,
        "created": datetime.fromtimestamp(info.created, UTC).isoformat(timespec="milliseconds"),
        "recorded": info.recorded,
        "replayed_by_default": default,
        "parent": info.parent,
        "fork_step": info.fork_step,
        "depth": depth,
        "mutation": info.mutation,
        "upstream": info.upstream,
        "sim_policy": info.sim_policy,
        "digest": info.digest,
        "result": info.result,
        "exchanges": info.exchanges,
        "draws": info.draws,
        "tokens": {
            "input": sum(_tokens_in(s) for s in decoded),
            "output": sum(s.usage.output_tokens for s in decoded),
        },
        "cost_usd": sum(priced) if priced else None,
        "unpriced_steps": len(decoded) - len(priced),
        "steps": [_step_row(ex, step) for ex, step in zip(exchanges, steps, strict=True)],
    }


def _step_row(ex: Any, step: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": ex.seq,
        "method": ex.method,
        "url": ex.url,
        "status": ex.status,
        "ms": ex.duration_ms,
        "decoded": step is not None,
    }
    if ex.error:
        row["error"] = ex.error
    if step is not None:
        row.update(
            provider=step.provider,
            model=step.model,
            stop_reason=step.stop_reason,
            tool_calls=[c.name for c in step.tool_calls],
            tokens={"input": _tokens_in(step), "output": step.usage.output_tokens},
            cost_usd=step.cost_usd,
        )
    return row


def step_detail(path: str | os.PathLike[str], *, run: str | None, step: int) -> dict[str, Any]:
    """One step of a run (the default run when ``run`` is None): its decoded request and
    answer, or its raw bodies when no codec reads it."""
    with Tape(path) as tape:
        info = tape.run(run)
        exchanges = tape.exchanges(info.id)
        if not 1 <= step <= len(exchanges):
            raise SeamtapeError(
                f"run {info.id} has steps 1 to {len(exchanges)}; no step {step}"
                if exchanges
                else f"run {info.id} has no steps"
            )
        ex = exchanges[step - 1]
        request, response = ex.request_bytes(), ex.response_bytes()
    detail: dict[str, Any] = {
        "run": info.id,
        "step": ex.seq,
        "method": ex.method,
        "url": ex.url,
        "status": ex.status,
    }
    if ex.error:
        detail["error"] = ex.error
    try:
        decoded = decode_exchange(ex, request, response)
    except wire.CodecError as exc:
        detail["decoded"] = False
        detail["note"] = str(exc)
        detail["request_body"] = _body(request)
        detail["response_body"] = _body(response)
        return detail
    fields = dataclasses.asdict(decoded)
    detail["decoded"] = True
    detail["provider"], detail["api"] = fields.pop("provider"), fields.pop("api")
    detail["request"] = {
        k: fields[k] for k in ("model", "stream", "system", "messages", "tools", "tool_results")
    }
    detail["answer"] = {
        k: fields[k]
        for k in ("text", "tool_calls", "stop_reason", "usage", "cost_usd", "response_id")
    }
    return detail


def _body(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def _tokens_in(step: Any) -> int:
    usage = step.usage
    return usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
