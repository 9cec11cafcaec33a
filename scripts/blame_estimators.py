"""Which estimator separates a step from its live tail? Measured, not assumed.

Records the ledger fixtures of ``seamtape.proof.faults`` under both tail kinds, gives every
step the same number of resample trials (no adaptive stopping, so every candidate reads the
same counts), and scores each candidate ranking against the planted root cause:

- ``flip rate``: the flip rate of forking at step i (blame's ranking before the contrast);
- ``noise floor``: the flip rate minus the run's noise floor, the flip rate of a fork that
  changes nothing at step i and resamples only the tail (forking at i + 1). One number per
  run, so it ranks exactly as the flip rate does; it can only change a verdict;
- ``paired contrast``: the flip rate at i minus the flip rate at i + 1 (0 after the last step);
- ``tail reuse``: how many of the trials' tail requests repeat the parent's request at the
  same position, byte for byte: the share a fork could serve from the recording instead of
  resampling it.

    python scripts/blame_estimators.py --fixtures 20 --trials 8 --out experiments

writes ``estimators.json`` and the ``estimators`` section of ``blame.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def laplace(flips: int, trials: int) -> float:
    return (flips + 1) / (trials + 2)


def rankings(counts: dict[int, tuple[int, int]]) -> dict[str, list[int]]:
    n = max(counts)

    def rate(step: int) -> float:
        return laplace(*counts[step][::-1]) if step <= n else 0.0

    steps = sorted(counts)
    raw = sorted(steps, key=lambda s: (-rate(s), s))
    contrast = sorted(steps, key=lambda s: (-(rate(s) - rate(s + 1)), s))
    return {"flip rate": raw, "noise floor": raw, "paired contrast": contrast}


def reuse(tape: Path, parent: str) -> tuple[int, int]:
    """(tail requests that repeat the parent's at the same position, tail requests)."""
    from seamtape.tape import Tape

    same = total = 0
    with Tape(tape) as t:
        theirs = {ex.seq: ex.request_body for ex in t.exchanges(parent)}
        for run in t.runs():
            if run.parent != parent or run.fork_step is None:
                continue
            for ex in t.exchanges(run.id):
                if ex.seq > run.fork_step:
                    total += 1
                    same += theirs.get(ex.seq) == ex.request_body
    return same, total


def measure(fixtures: int, trials: int, workers: int, temperature: float) -> dict[str, Any]:
    from seamtape.engine.blame import blame
    from seamtape.proof import faults
    from seamtape.proof.validate import pool

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder, pool(workers) as executor:
        for tails in faults.TAILS:
            rows = []
            for i in range(fixtures):
                plan = faults.design(7_000 + i, faults.KINDS[i % len(faults.KINDS)], longest=12)
                with faults.planted(plan, folder, temperature=temperature, tails=tails) as fx:
                    report = blame(
                        fx.tape,
                        fx.run_id,
                        agent=fx.agent,
                        oracle=fx.oracle,
                        upstream=fx.upstream,
                        min_trials=trials,
                        max_trials=trials,
                        leader_trials=trials,  # no step gets more: the same counts for all
                        estimator="flip_rate",  # every step measured, so no hidden tally
                        executor=executor,
                        workers=1 if executor is None else None,
                        seed=i,
                    )
                    same, total = reuse(fx.tape, fx.run_id)
                counts = {s.step: (s.trials, s.flips) for s in report.steps}
                rows.append(
                    {
                        "kind": plan.kind,
                        "root": plan.root_cause,
                        "steps": fx.steps,
                        "counts": counts,
                        "rankings": rankings(counts),
                        "reuse": [same, total],
                    }
                )
                top = rows[-1]["rankings"]["paired contrast"][:3]
                print(tails, i, plan.kind, plan.root_cause, top, flush=True)
            out[tails] = rows
    return out


def summarize(measured: dict[str, Any]) -> dict[str, Any]:
    from seamtape.engine.stats import wilson

    doc: dict[str, Any] = {}
    for tails, rows in measured.items():
        scores = {}
        for name in ("flip rate", "noise floor", "paired contrast"):
            hits = sum(r["rankings"][name][0] == r["root"] for r in rows)
            top3 = sum(r["root"] in r["rankings"][name][:3] for r in rows)
            scores[name] = {
                "top1": hits,
                "top3": top3,
                "n": len(rows),
                "top1_wilson": wilson(hits, len(rows)),
            }
        before = [
            c[1] / c[0] for r in rows for s, c in r["counts"].items() if s < r["root"] and c[0]
        ]
        at = [c[1] / c[0] for r in rows for s, c in r["counts"].items() if s == r["root"] and c[0]]
        after = [
            c[1] / c[0] for r in rows for s, c in r["counts"].items() if s > r["root"] and c[0]
        ]
        same = sum(r["reuse"][0] for r in rows)
        total = sum(r["reuse"][1] for r in rows)
        doc[tails] = {
            "scores": scores,
            "mean_flip_rate": {
                "before_root": sum(before) / max(len(before), 1),
                "at_root": sum(at) / max(len(at), 1),
                "after_root": sum(after) / max(len(after), 1),
            },
            "tail_reuse": {"repeated": same, "tail_requests": total},
        }
    return doc


def markdown(doc: dict[str, Any], command: str) -> str:
    lines = [
        "## Which estimator: measured",
        "",
        f"Reproduce: `{command}`. Every step of each fixture gets the same "
        f"{doc['trials']} resample trials (no adaptive stopping), so every candidate reads the "
        "same counts; top-1 is how often a candidate's first step is the planted root.",
        "",
        "| tails | candidate | top-1 | top-3 |",
        "|---|---|---|---|",
    ]
    for tails in ("repeats", "sampled"):
        for name, s in doc["results"][tails]["scores"].items():
            low, high = s["top1_wilson"]
            lines.append(
                f"| {tails} | {name} | {s['top1']}/{s['n']} [{low:.2f}, {high:.2f}] | "
                f"{s['top3']}/{s['n']} |"
            )
    lines.append("")
    for tails in ("repeats", "sampled"):
        r = doc["results"][tails]
        m, u = r["mean_flip_rate"], r["tail_reuse"]
        share = u["repeated"] / u["tail_requests"] if u["tail_requests"] else 0.0
        lines.append(
            f"- {tails} tails: mean flip rate {m['before_root']:.2f} before the root, "
            f"{m['at_root']:.2f} at it, {m['after_root']:.2f} after it; tail reuse: "
            f"{u['repeated']} of {u['tail_requests']} tail requests ({share:.1%}) repeat the "
            "parent's request at the same position, so reusing recorded answers while the "
            "requests match would answer almost none of the tail."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", type=int, default=20)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from seamtape.proof.validate import write_section

    started = time.perf_counter()
    measured = measure(args.fixtures, args.trials, args.workers, args.temperature)
    command = (
        f"python scripts/blame_estimators.py --fixtures {args.fixtures} --trials {args.trials} "
        f"--out {args.out}"
    )
    doc = {
        "command": command,
        "trials": args.trials,
        "results": summarize(measured),
        "fixtures": measured,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "estimators.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_section(args.out / "blame.md", "estimators", markdown(doc, command))
    print(json.dumps(doc["results"], indent=1))


if __name__ == "__main__":
    main()
