"""`seamtape validate`: score blame against faults with a known root cause, with three controls.

For each seeded fixture of ``seamtape.proof.faults`` (a failed run, random length and position),
blame ranks the steps; top-1 and top-3 precision count how often the planted root cause is
first, or among the first three, with Wilson intervals per fault class and overall. The live
calls blame spent are set against what a uniform 10 trials per step would spend.

The controls, which must behave as controls:

- **no fault**: runs with nothing planted (they succeed) and runs whose failure no step could
  have avoided (the ledger misreports an account everywhere): blame must claim no cause, i.e.
  no step's confidence sequence may sit above the flip threshold;
- **blind engine**: the trial outcomes of every fixture shuffled across its trials (each step
  keeps its number of trials), ranked again with ties broken at random: precision must fall
  to chance, the mean of 1/n over the fixtures' measured steps;
- **position**: in one run of fixed length, each class planted at every position it can take
  in turn: precision must not depend on the position (a permutation test of the chi-square
  statistic of the position × hit table; no scipy needed).

Results go to ``experiments/validate.json`` and a section of ``experiments/blame.md``;
``check`` compares a fresh result with the committed one.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from seamtape.proof._config import Settings

__all__ = [
    "TOLERANCE",
    "Config",
    "Settings",
    "blame_fixture",
    "check",
    "chi_square_permutation",
    "pool",
    "run_validate",
    "shuffled_precision",
    "write_section",
]

# A rate may fall this much below the committed one (and the cost ratio rise this much)
# before --check fails: one fixture in fifty, for results that depend on the order in which
# parallel trials reach the simulator.
TOLERANCE = 0.02
TOP1_TARGET = 0.95
COST_TARGET = 1 / 3
POSITION_ALPHA = 0.05  # the position test fails below this p-value
BLIND_MARGIN = 0.05  # blind precision may exceed chance by this much


@dataclass(frozen=True)
class Config(Settings):
    """What a validation run does, beside the shared settings."""

    experiment: ClassVar[str] = "validate"
    flags: ClassVar[tuple[str, ...]] = (
        *Settings.flags,
        "fixtures",
        "controls",
        "position_steps",
        "max_steps",
    )

    fixtures: int = 40  # faulty fixtures per tail kind, cycling through the classes
    controls: int = 4  # control fixtures per tail kind, half with no fault, half unfixable
    position_steps: int = 6  # run length for the position control
    max_steps: int = 20  # longest run drawn (tests use short runs)
    permutations: int = 200  # shuffles per fixture for the blind engine
    position_permutations: int = 5000


# --- running blame on fixtures ----------------------------------------------------------------


@contextlib.contextmanager
def pool(workers: int) -> Iterator[Any]:
    """The executor every blame call of a run shares: blame's own process pool (made once per
    process, shut down at exit); ``None`` runs trials in-process (``workers`` 1)."""
    from seamtape.engine.blame import process_pool

    yield None if workers <= 1 else process_pool(workers, ["seamtape.proof.faults"])


def blame_fixture(fx: Any, cfg: Settings, executor: Any, seed: int) -> dict[str, Any]:
    """Blame one live fixture; the summary a report keeps (ranking, per-step counts, spend)."""
    from seamtape._errors import SeamtapeError
    from seamtape.engine.blame import blame
    from seamtape.tape import Tape

    # Held open so that no worker's close is the tape's last: the last close checkpoints
    # and deletes the WAL, and a worker opening the tape just then can find it "truncated".
    retries = 0
    while True:
        try:
            with Tape(fx.tape):
                report = _blame(fx, cfg, executor, seed, blame)
            break
        except SeamtapeError as exc:
            # Tape's open-time header check races a concurrent WAL checkpoint now and then
            # (the -wal file vanishes between exists() and stat()); the trial is lost, not
            # the fixture: blame it again, and say so in the report.
            if retries >= 2 or ("-wal" not in str(exc) and "truncated" not in str(exc)):
                raise
            retries += 1
    row = _summary(fx, report)
    row["retries"] = retries
    return row


def _blame(fx: Any, cfg: Settings, executor: Any, seed: int, blame: Any) -> Any:
    return blame(
        fx.tape,
        fx.run_id,
        agent=fx.agent,
        oracle=fx.oracle,
        upstream=fx.upstream,
        max_trials=cfg.max_trials,
        min_trials=cfg.min_trials,
        threshold=cfg.threshold,
        confidence=cfg.confidence,
        seed=seed,
        workers=1 if executor is None else None,
        executor=executor,
    )


def _summary(fx: Any, report: Any) -> dict[str, Any]:
    steps = sorted(report.steps, key=lambda s: s.step)
    root = fx.root_cause
    top = report.top(3)
    return {
        "kind": fx.kind,
        "seed": fx.design.seed,
        "steps": fx.steps,
        "root": root,
        "top": top,
        "hit1": root is not None and top[:1] == [root],
        "hit3": root is not None and root in top,
        "claims": [s.step for s in report.steps if s.verdict == "cause"],
        "ranking": [s.step for s in report.steps if s.trials],
        "verdicts": {str(s.step): s.verdict for s in steps},
        "root_verdict": report.step(root).verdict if root else None,
        "live_calls": report.live_calls,
        "attempts": sum(s.trials + s.skipped_identical for s in report.steps),
        "uniform_calls": report.uniform_calls,
        "trials": [[s.step, s.trials, s.flips] for s in steps],
    }


def _interval(hits: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    from seamtape.engine.stats import wilson

    low, high = wilson(hits, n, confidence)
    return {"hits": hits, "n": n, "rate": hits / n if n else 0.0, "low": low, "high": high}


# --- the blind engine and the position test ---------------------------------------------------


def shuffled_precision(trials: Sequence[Sequence[int]], root: int, rng: random.Random) -> float:
    """Top-1 hit rate of a blind engine: outcomes shuffled across the trials, ties at random.

    ``trials`` is ``[step, trials, flips]`` per step; only measured steps compete, each keeping
    its number of trials. Returns the mean hit over ``permutations`` shuffles (one call: one).
    """
    measured = [(step, n) for step, n, _ in trials if n]
    outcomes = [1] * sum(f for _, _, f in trials) + [0] * sum(n - f for _, n, f in trials if n)
    rng.shuffle(outcomes)
    best: list[int] = []
    best_rate = -1.0
    at = 0
    for step, n in measured:
        rate = (sum(outcomes[at : at + n]) + 1) / (n + 2)  # blame's own Laplace ranking
        at += n
        if rate > best_rate:
            best, best_rate = [step], rate
        elif rate == best_rate:
            best.append(step)
    return 1.0 if best and rng.choice(best) == root else 0.0


def chi_square(table: Sequence[tuple[int, int]]) -> float:
    """Pearson's chi-square statistic of a k × 2 table of (hits, misses)."""
    hits = sum(h for h, _ in table)
    total = sum(h + m for h, m in table)
    if total == 0 or hits in (0, total):
        return 0.0
    p = hits / total
    stat = 0.0
    for h, m in table:
        n = h + m
        if n:
            stat += (h - n * p) ** 2 / (n * p) + (m - n * (1 - p)) ** 2 / (n * (1 - p))
    return stat


def chi_square_permutation(
    table: Sequence[tuple[int, int]], permutations: int, rng: random.Random
) -> float:
    """P-value of independence for a k × 2 table: the share of label permutations (hits
    reshuffled across the rows, row sizes kept) whose chi-square is at least the observed.
    Exact in the limit, valid for the small counts where the chi-square law is not."""
    observed = chi_square(table)
    if observed == 0.0:
        return 1.0
    labels = [1] * sum(h for h, _ in table) + [0] * sum(m for _, m in table)
    sizes = [h + m for h, m in table]
    extreme = 0
    for _ in range(permutations):
        rng.shuffle(labels)
        at, shuffled = 0, []
        for n in sizes:
            hits = sum(labels[at : at + n])
            shuffled.append((hits, n - hits))
            at += n
        extreme += chi_square(shuffled) >= observed - 1e-12
    return (extreme + 1) / (permutations + 1)


# --- the run ----------------------------------------------------------------------------------


def run_validate(cfg: Config, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Plant, record and blame every fixture of ``cfg``; the report as a JSON-ready dict."""
    from seamtape.proof import faults

    say = progress or (lambda line: None)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="seamtape-validate-") as folder,
        pool(cfg.workers) as executor,
    ):
        plans = [
            faults.design(
                cfg.seed * 100_003 + i,
                faults.KINDS[i % len(faults.KINDS)],
                longest=cfg.max_steps,
            )
            for i in range(cfg.fixtures)
        ]
        plans_c = [
            faults.design(
                cfg.seed * 100_003 + 50_000 + i, faults.CONTROLS[i % 2], longest=cfg.max_steps
            )
            for i in range(cfg.controls)
        ]
        plans_p = [
            faults.design(
                cfg.seed * 100_003 + 90_000 + c, kind, steps=cfg.position_steps, position=k
            )
            for c, kind in enumerate(faults.KINDS)
            for k in faults.positions(kind, cfg.position_steps)
        ]
        for group, out, label in (
            (plans, rows, "fixture"),
            (plans_c, controls, "control"),
            (plans_p, positions, "position"),
        ):
            for i, plan in enumerate(group, 1):
                t0 = time.perf_counter()
                sub = Path(folder) / label
                sub.mkdir(exist_ok=True)
                with faults.planted(plan, sub, temperature=cfg.temperature) as fx:
                    if plan.kind in faults.KINDS and not fx.failed:
                        raise RuntimeError(f"fixture {plan.kind} seed {plan.seed} did not fail")
                    row = blame_fixture(fx, cfg, executor, seed=cfg.seed + i)
                row["seconds"] = round(time.perf_counter() - t0, 2)
                out.append(row)
                say(_progress_line(label, i, len(group), row))
    doc = _summarize(cfg, rows, controls, positions)
    doc["seconds"] = round(time.perf_counter() - started, 1)
    doc["machine"] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
    }
    return doc


def _progress_line(label: str, i: int, total: int, row: dict[str, Any]) -> str:
    mark = "" if row["root"] is None else (" hit" if row["hit1"] else " MISS")
    claims = f" claims {row['claims']}" if row["root"] is None else ""
    return (
        f"{label} {i}/{total} {row['kind']} ({row['steps']} steps, root {row['root']}): "
        f"top {row['top']}{mark}{claims}, {row['live_calls']}/{row['uniform_calls']} calls, "
        f"{row['seconds']}s"
    )


def _summarize(
    cfg: Config,
    rows: list[dict[str, Any]],
    controls: list[dict[str, Any]],
    positions: list[dict[str, Any]],
) -> dict[str, Any]:
    from seamtape.proof import faults

    per_class = {}
    for kind in faults.KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        per_class[kind] = {
            "top1": _interval(sum(r["hit1"] for r in mine), len(mine), cfg.confidence),
            "top3": _interval(sum(r["hit3"] for r in mine), len(mine), cfg.confidence),
        }
    live = sum(r["live_calls"] for r in rows)
    uniform = sum(r["uniform_calls"] for r in rows)
    attempts = sum(r["attempts"] for r in rows)
    # The form: k·n(n-1)/2 tail calls, i.e. live calls after the perturbed step.
    tail_uniform = sum(cfg.max_trials * r["steps"] * (r["steps"] - 1) // 2 for r in rows)
    overall = {
        "top1": _interval(sum(r["hit1"] for r in rows), len(rows), cfg.confidence),
        "top3": _interval(sum(r["hit3"] for r in rows), len(rows), cfg.confidence),
    }
    cost = {
        "live_calls": live,
        "uniform_calls": uniform,
        "ratio": live / uniform if uniform else 0.0,
        "tail_calls": live - attempts,
        "uniform_tail_calls": tail_uniform,
        "tail_ratio": (live - attempts) / tail_uniform if tail_uniform else 0.0,
    }
    rng = random.Random(cfg.seed)
    blind_hits = [
        sum(shuffled_precision(r["trials"], r["root"], rng) for _ in range(cfg.permutations))
        / cfg.permutations
        for r in rows
    ]
    chance = [1 / max(1, sum(1 for _, n, _ in r["trials"] if n)) for r in rows]
    blind = {
        "top1": sum(blind_hits) / len(rows) if rows else 0.0,
        "chance": sum(chance) / len(rows) if rows else 0.0,
        "permutations": cfg.permutations,
    }
    blind["ok"] = blind["top1"] <= blind["chance"] + BLIND_MARGIN
    no_fault = {
        "runs": len(controls),
        "false_claims": sum(1 for r in controls if r["claims"]),
        "by_kind": {
            kind: [
                {"steps": r["steps"], "claims": r["claims"], "max_flips": _max_rate(r)}
                for r in controls
                if r["kind"] == kind
            ]
            for kind in faults.CONTROLS
        },
    }
    no_fault["ok"] = no_fault["false_claims"] == 0
    by_position: dict[int, list[int]] = {}
    for r in positions:
        by_position.setdefault(r["root"], [0, 0])[0 if r["hit1"] else 1] += 1
    table = [tuple(by_position[k]) for k in sorted(by_position)]
    p_value = chi_square_permutation(table, cfg.position_permutations, random.Random(cfg.seed + 1))
    position = {
        "steps": cfg.position_steps,
        "per_position": {
            str(k): _interval(h, h + m, cfg.confidence) for k, (h, m) in sorted(by_position.items())
        },
        "top1": _interval(sum(r["hit1"] for r in positions), len(positions), cfg.confidence),
        "chi_square": chi_square(table),
        "p_value": p_value,
        "test": "permutation test of Pearson's chi-square, position × top-1 hit",
    }
    position["ok"] = p_value >= POSITION_ALPHA
    targets = {
        "top1_min": TOP1_TARGET,
        "cost_ratio_max": COST_TARGET,
        "top1_met": overall["top1"]["rate"] >= TOP1_TARGET,
        "cost_met": cost["ratio"] <= COST_TARGET,
        "controls_ok": blind["ok"] and no_fault["ok"] and position["ok"],
    }
    return {
        "what": "blame precision against injected faults (seamtape validate)",
        "command": cfg.command(),
        "config": asdict(cfg),
        "overall": overall,
        "per_class": per_class,
        "cost": cost,
        "controls": {"no_fault": no_fault, "blind": blind, "position": position},
        "targets": targets,
        "fixtures": rows,
        "control_fixtures": controls,
        "position_fixtures": positions,
    }


def _max_rate(row: dict[str, Any]) -> float:
    rates = [f / n for _, n, f in row["trials"] if n]
    return round(max(rates), 3) if rates else 0.0


# --- check and write --------------------------------------------------------------------------


def check(
    fresh: dict[str, Any], committed: dict[str, Any], tolerance: float = TOLERANCE
) -> list[str]:
    """What got worse than the committed report (beyond ``tolerance``), one line each."""
    problems = []

    def rate(doc: dict[str, Any], *path: str) -> float:
        for key in path:
            doc = doc[key]
        return float(doc["rate"]) if isinstance(doc, dict) else float(doc)

    pairs = [("overall top-1", ("overall", "top1")), ("overall top-3", ("overall", "top3"))]
    pairs += [
        (f"{kind} top-1", ("per_class", kind, "top1")) for kind in committed.get("per_class", {})
    ]
    for label, path in pairs:
        was, now = rate(committed, *path), rate(fresh, *path)
        if now < was - tolerance:
            problems.append(f"{label} fell from {was:.3f} to {now:.3f}")
    was, now = committed["cost"]["ratio"], fresh["cost"]["ratio"]
    if now > was + tolerance:
        problems.append(f"live calls / uniform rose from {was:.3f} to {now:.3f}")
    for name, control in fresh["controls"].items():
        if not control["ok"] and committed["controls"][name]["ok"]:
            problems.append(f"the {name.replace('_', ' ')} control no longer behaves")
    return problems


def write_section(path: Path, name: str, body: str) -> None:
    """Replace (or append) the ``name`` section of the markdown file at ``path``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else _HEADER
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


_HEADER = """# Is the blame right?

Blame ranks the steps of a failed run by how often resampling a step flips the outcome. These
reports test it where the answer is known: runs of a real tool-using agent (the official
`anthropic` SDK against the simulator on 127.0.0.1) with a fault planted at a known step
(`seamtape.proof.faults`, whose docstring says what "root cause" means for each class and why
resampling can see it). Every number below comes from the command printed beside it; both
commands run offline, and `--check` fails when a result falls below the committed one.
"""


def markdown(doc: dict[str, Any]) -> str:
    """The validate section of experiments/blame.md."""
    o, c, ctl, t = doc["overall"], doc["cost"], doc["controls"], doc["targets"]
    cfg = doc["config"]

    def iv(x: dict[str, Any]) -> str:
        return f"{x['rate']:.3f} [{x['low']:.2f}, {x['high']:.2f}] ({x['hits']}/{x['n']})"

    lines = [
        "## Precision against injected faults",
        "",
        f"Reproduce: `{doc['command']}` (writes `experiments/validate.json` and this section; "
        f"`{doc['command']} --check` compares a fresh run with the committed numbers, "
        f"tolerance {TOLERANCE} on each rate and on the cost ratio). "
        f"{cfg['fixtures']} fixtures, 3 to 20 steps, fault position at random; blame with "
        f"`perturb='resample'`, {cfg['min_trials']} to {cfg['max_trials']} trials per step, "
        f"threshold {cfg['threshold']}, confidence {cfg['confidence']}; model temperature "
        f"{cfg['temperature']}; {cfg['workers']} workers; {doc['seconds']} s on "
        f"{doc['machine']['cores']} cores.",
        "",
        "| class | top-1 (Wilson 95%) | top-3 (Wilson 95%) |",
        "|---|---|---|",
    ]
    for kind, row in doc["per_class"].items():
        lines.append(f"| {kind} | {iv(row['top1'])} | {iv(row['top3'])} |")
    lines.append(f"| **overall** | **{iv(o['top1'])}** | **{iv(o['top3'])}** |")
    lines += [
        "",
        f"**Live calls:** {c['live_calls']} against {c['uniform_calls']} for a uniform "
        f"{cfg['max_trials']} trials per step: **{c['ratio']:.3f}** of uniform (target at most "
        f"{COST_TARGET:.3f}: {'met' if t['cost_met'] else 'missed'}). Counting tail calls only "
        f"(after the perturbed step), as the issue's k·n(n−1)/2 does: {c['tail_calls']} against "
        f"{c['uniform_tail_calls']}, {c['tail_ratio']:.3f}.",
        "",
        _spend_note(doc),
        "",
        f"**Top-1 target** {TOP1_TARGET}: {'met' if t['top1_met'] else 'missed'}.",
        "",
        "### Controls",
        "",
    ]
    nf = ctl["no_fault"]
    counts = ", ".join(f"{len(v)} {k}" for k, v in nf["by_kind"].items())
    lines.append(
        f"- **No fault** ({counts}; `none` succeeds, `unfixable` fails with no step to blame): "
        f"{nf['false_claims']} of {nf['runs']} runs had a step claimed as the cause "
        f"({'behaves' if nf['ok'] else 'DOES NOT BEHAVE'})."
    )
    bl = ctl["blind"]
    lines.append(
        f"- **Blind engine** (outcomes shuffled across each fixture's trials, "
        f"{bl['permutations']} shuffles, ties at random): top-1 {bl['top1']:.3f} against "
        f"chance {bl['chance']:.3f} = mean 1/n ({'behaves' if bl['ok'] else 'DOES NOT BEHAVE'}: "
        f"at most chance + {BLIND_MARGIN}; below chance because the most-sampled step's "
        "shuffled rate is the least extreme, so a blind engine rarely ranks it first)."
    )
    po = ctl["position"]
    cells = ", ".join(f"{k}: {v['hits']}/{v['n']}" for k, v in po["per_position"].items())
    lines.append(
        f"- **Position** (each class planted at every position of one {po['steps']}-step run): "
        f"top-1 by position {cells}; overall {iv(po['top1'])}; chi-square {po['chi_square']:.2f}, "
        f"permutation p = {po['p_value']:.3f} ({'behaves' if po['ok'] else 'DOES NOT BEHAVE'}: "
        f"p ≥ {POSITION_ALPHA})."
    )
    misses = [r for r in doc["fixtures"] if not r["hit1"]]
    if misses:
        lines += ["", "Top-1 misses:", ""]
        for r in misses:
            lines.append(
                f"- {r['kind']} seed {r['seed']} ({r['steps']} steps): root {r['root']}, "
                f"ranked {r['top']}; per step [step, trials, flips]: {r['trials']}"
            )
    return "\n".join(lines)


def _spend_note(doc: dict[str, Any]) -> str:
    """Where the live calls went: the root cause's trials against everyone else's."""
    cap = doc["config"]["max_trials"]
    floor = doc["config"]["min_trials"]
    others: list[int] = []
    at_floor = uniform = 0
    for r in doc["fixtures"]:
        for step, trials, _ in r["trials"]:
            calls = r["steps"] - step + 1
            uniform += cap * calls
            if step == r["root"]:
                at_floor += trials * calls
            else:
                others.append(trials)
                at_floor += floor * calls
    if not others:
        return ""
    mean = sum(others) / len(others)
    share = sum(1 for n in others if n <= floor) / len(others)
    return (
        f"Where it goes: steps other than the root cause got {mean:.2f} trials on average "
        f"({share:.0%} of them stopped at the floor of {floor}); the extra ones come from rounds "
        "that deal the other steps attempts beside the leader's, before its outcomes are in. "
        "Had every other step stopped at the floor, "
        f"the same runs would have cost {at_floor / uniform:.3f} of uniform."
    )


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def save(
    doc: dict[str, Any], folder: Path, section: Callable[[dict[str, Any]], str], name: str
) -> None:
    """Write ``folder/<name>.json`` and the ``name`` section of ``folder/blame.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    write_section(folder / "blame.md", name, section(doc))
