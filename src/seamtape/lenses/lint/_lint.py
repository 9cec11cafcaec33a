"""Linting a run: its exchanges read through the codecs into a trace, every enabled rule run."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seamtape import wire
from seamtape._steps import steps_of_exchanges
from seamtape.tape import Exchange, Tape

from ._config import Config, resolve
from ._findings import Finding, rank
from ._registry import RULES
from ._trace import Trace, Turn, build

EXIT_CLEAN, EXIT_WARN, EXIT_CRITICAL = 0, 1, 2


@dataclass
class LintReport:
    """The findings about one run, worst first within each step."""

    tape: str
    run: str
    steps: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def worst(self) -> str | None:
        """The highest severity found, or None for a clean run."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=rank)

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def exit_code(self, *, strict: bool = False) -> int:
        """0 clean (or warnings without ``strict``), 1 warnings under ``strict``, 2 critical."""
        worst = self.worst
        if worst == "critical":
            return EXIT_CRITICAL
        if worst == "warn" and strict:
            return EXIT_WARN
        return EXIT_CLEAN

    @property
    def fingerprint(self) -> str:
        """One hash over the findings' fingerprints: it drifts when what lint sees changes."""
        joined = "\n".join(sorted(f.fingerprint for f in self.findings))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tape": self.tape,
            "run": self.run,
            "steps": self.steps,
            "fingerprint": self.fingerprint,
            "counts": {s: self.count(s) for s in ("critical", "warn", "info")},
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_text(self) -> str:
        lines = [f.line() for f in self.findings]
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("critical", "warn", "info"))
        lines.append(f"{self.tape} run {self.run}: {self.steps} steps, {counts}")
        return "\n".join(lines) + "\n"


def turn_of(ex: Exchange, step: wire.Step | None, request_body: bytes | None) -> Turn:
    """One exchange as a turn; ``request_body`` is needed only when no codec decoded it."""
    stream = bool(step.stream) if step is not None else False
    api = wire.detect(ex.method, ex.url)
    if step is None and api is not None and request_body is not None:
        try:
            stream = wire.is_stream(api, ex.url, request_body)
        except wire.CodecError:
            stream = False
    return Turn(
        seq=ex.seq,
        step=step,
        method=ex.method,
        url=ex.url,
        status=ex.status,
        error=ex.error,
        started=ex.started,
        ended=ex.ended,
        request_hash=ex.request_body,
        stream=stream,
    )


def turns_of(tape: Tape, exchanges: Sequence[Exchange]) -> list[Turn]:
    """Exchanges as turns, decoded once, with every body read in one query."""
    bodies = tape.blobs(h for ex in exchanges for h in (ex.request_body, ex.response_body))
    turns = []
    for ex, step in zip(exchanges, steps_of_exchanges(exchanges, bodies), strict=True):
        turn = turn_of(ex, step, bodies[ex.request_body])
        if turn.stream:
            turn.response_body = bodies[ex.response_body]
        turns.append(turn)
    return turns


def trace_of(tape: Tape, run_id: str, *, now: float | None = None) -> Trace:
    """A recorded run as the rules see it."""
    info = tape.run(run_id)
    turns = turns_of(tape, tape.exchanges(info.id))
    complete = info.status != "recording"
    if now is None:
        now = max((t.ended for t in turns), default=info.created) if complete else time.time()
    return build(turns, started=info.created, now=now, run=info.id, complete=complete)


def run_rules(trace: Trace, config: Config) -> list[Finding]:
    """Every enabled rule over ``trace``; equal findings kept once, fingerprints made unique."""
    findings: list[Finding] = []
    for rule in RULES.values():
        if config.enabled(rule.id):
            findings.extend(rule.check(trace, config))
    return _unique(findings)


def _unique(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, int] = {}
    out = []
    for f in sorted(findings, key=lambda f: (f.steps[:1] or (0,), -rank(f.severity), f.rule)):
        n = seen.get(f.fingerprint, 0)
        seen[f.fingerprint] = n + 1
        if n:
            f = Finding(f.rule, f.severity, f.message, f.steps, f"{f.key}#{n + 1}", f.data)
        out.append(f)
    return out


def lint(
    tape: str | os.PathLike[str] | Tape,
    *,
    run: str | None = None,
    config: Config | dict[str, Any] | str | os.PathLike[str] | None = None,
) -> LintReport:
    """Lint one run of a tape (the latest by default) with ``config`` (the defaults when None).

    Findings a live guard kept on the tape (what stopped a run) are included.
    """
    cfg = resolve(config)
    if isinstance(tape, Tape):
        return _lint_open(tape, run, cfg)
    with Tape(tape) as opened:
        return _lint_open(opened, run, cfg)


def _lint_open(tape: Tape, run: str | None, cfg: Config) -> LintReport:
    info = tape.run(run)
    trace = trace_of(tape, info.id)
    findings = run_rules(trace, cfg)
    known = {f.fingerprint for f in findings}
    for doc in tape.findings(info.id):
        kept = Finding.from_dict(doc)
        if kept.fingerprint not in known:
            findings.append(kept)
            known.add(kept.fingerprint)
    return LintReport(str(tape.path), info.id, len(trace.turns), findings)
