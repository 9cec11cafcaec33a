"""Integrity of a tape: every blob matches its hash, every run's digest matches its contents."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._digest import Digest, exchange_hash
from ._tape import Tape

__all__ = ["VerifyReport", "run_digest", "verify"]


@dataclass
class VerifyReport:
    path: str
    runs: int = 0
    exchanges: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_digest(tape: Tape, run_id: str) -> str:
    """Recompute a run's digest from what the tape holds."""
    digest = Digest()
    for ex in tape.exchanges(run_id):
        digest.add_exchange(
            ex.seq,
            exchange_hash(
                ex.method,
                ex.url,
                ex.request_body,
                ex.status,
                ex.response_headers_json,
                ex.response_body,
                ex.error_json,
            ),
        )
    for draw in tape.draws(run_id):
        digest.add_draw(draw.kind, draw.value)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Re-hash every blob and recompute every finished run's digest."""
    with Tape(path) as tape:
        report = VerifyReport(str(path), blobs=tape.stats()["blobs"])
        report.problems.extend(tape.verify_blobs())
        for run in tape.runs():
            report.runs += 1
            report.exchanges += run.exchanges
            if run.digest is None:
                if run.status == "recording":
                    report.notes.append(
                        f"run {run.id}: never finished (the recorder stopped); "
                        f"its {run.exchanges} completed exchanges are intact"
                    )
                continue
            actual = run_digest(tape, run.id)
            if actual != run.digest:
                report.problems.append(
                    f"run {run.id}: digest {actual[:12]} does not match the recorded {run.digest[:12]}"
                )
    return report
