"""`seamtape validate`: score blame against faults with a known root cause, on both tail kinds.

For each seeded fixture of ``seamtape.proof.faults`` (a failed run, random length and position),
under each tail kind (``repeats``: only a repeated conversation is sampled; ``sampled``: every
live call is), blame ranks the steps; top-1 and top-3 count how often the planted root cause
is first, or among the first three, with Wilson intervals per fault class and overall; the
certification rate counts the roots read as "cause" among those that flip at least 0.8 of the
time; the live calls are set against a uniform ``max_trials`` per step.

Controls, each of which a broken engine can fail (``_rankings.BROKEN`` shows which catches
which): **no fault** (false causes on runs with nothing to blame), **blind engine** (blame's
ranking of outcomes shuffled across a fixture's trials beats its chance, a z test against
random root positions: a ranking that reads no flips), **position** (a permutation test of
position × hit), **same ranking** (validate scores the ranking blame reported).

Results go to ``out/validate.json`` and a section of ``out/blame.md`` only where ``--out``
asks; ``check`` compares a fresh result with the committed one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from seamtape.engine.blame import blame, process_pool
from seamtape.engine.stats import wilson
from seamtape.proof import faults
from seamtape.proof._config import Settings
from seamtape.proof._rankings import BROKEN, blame_ranking, shuffled
from seamtape.tape import Tape

__all__ = [
    "TOLERANCE",
    "Config",
    "Settings",
    "blame_fixture",
    "check",
    "chi_square_permutation",
    "pool",
    "run_validate",
    "write_section",
]

# A rate may fall this much below the committed one (and the cost ratio rise this much)
# before --check fails: one fixture in fifty, for results that depend on the order in which
# parallel trials reach the simulator.
TOLERANCE = 0.02
TOP1_TARGET = 0.95
TOP3_TARGET = 0.98
CERTIFIED_TARGET = 0.80  # of the true roots whose flip rate is at least 0.8
COST_TARGET = 0.5  # live calls, of what a uniform max_trials per step would make
POSITION_ALPHA = 0.05  # the position test fails below this p-value
BLIND_Z = 2.33  # the blind engine fails when it beats its chance at one-sided p < 0.01


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

    fixtures: int = 24  # faulty fixtures per tail kind, cycling through the classes
    controls: int = 4  # control fixtures per tail kind, half with no fault, half unfixable
    position_steps: int = 5  # run length for the position control
    max_steps: int = 20  # longest run drawn (tests use short runs)
    permutations: int = 200  # shuffles per fixture for the blind engine
    position_permutations: int = 5000


# --- running blame on fixtures ----------------------------------------------------------------


@contextlib.contextmanager
def pool(workers: int) -> Iterator[Any]:
    """The executor every blame call of a run shares: blame's own process pool (made once per
    process, shut down at exit); ``None`` runs trials in-process (``workers`` 1)."""
    yield None if workers <= 1 else process_pool(workers, ["seamtape.proof.faults"])


def blame_fixture(fx: Any, cfg: Settings, executor: Any, seed: int) -> dict[str, Any]:
    """Blame one live fixture; the summary a report keeps (ranking, per-step counts, spend)."""
    # Held open so that no worker's close is the tape's last: the last close checkpoints
    # and deletes the WAL, which a worker opening the tape just then could find half gone.
    with Tape(fx.tape):
        report = _blame(fx, cfg, executor, seed, blame)
    return _summary(fx, report)


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
        "root_flip_rate": report.step(root).flip_rate
        if root and report.step(root).trials
        else None,
        "live_calls": report.live_calls,
        "attempts": sum(s.trials + s.skipped_identical for s in report.steps),
        "uniform_calls": report.uniform_calls,
        "trials": [[s.step, s.trials, s.flips] for s in steps],
    }


def _interval(hits: int, n: int, confidence: float = 0.95) -> dict[str, Any]:
    low, high = wilson(hits, n, confidence)
    return {"hits": hits, "n": n, "rate": hits / n if n else 0.0, "low": low, "high": high}


# --- the blind engine and the position test ---------------------------------------------------


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
    """Plant, record and blame every fixture of ``cfg`` under each tail kind; the report as a
    JSON-ready dict."""
    say = progress or (lambda line: None)
    started = time.perf_counter()
    by_tails = {}
    with (
        tempfile.TemporaryDirectory(prefix="seamtape-validate-") as folder,
        pool(cfg.workers) as executor,
    ):
        for tails in cfg.tail_kinds:
            rows, controls, positions = _run_tails(cfg, tails, Path(folder), executor, say)
            by_tails[tails] = _summarize(cfg, rows, controls, positions)
    doc: dict[str, Any] = {
        "what": "blame precision against injected faults (seamtape validate)",
        "command": cfg.command(),
        "config": asdict(cfg),
        "tails": by_tails,
        "broken_rankings": {k: _broken(cfg, v) for k, v in by_tails.items()},
    }
    doc["targets_met"] = all(v["targets"]["all_met"] for v in by_tails.values())
    doc["seconds"] = round(time.perf_counter() - started, 1)
    doc["machine"] = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
    }
    return doc


def _run_tails(
    cfg: Config, tails: str, folder: Path, executor: Any, say: Callable[[str], None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    positions: list[dict[str, Any]] = []
    plans = [
        faults.design(
            cfg.seed * 100_003 + i, faults.KINDS[i % len(faults.KINDS)], longest=cfg.max_steps
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
        faults.design(cfg.seed * 100_003 + 90_000 + c, kind, steps=cfg.position_steps, position=k)
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
            sub = folder / tails / label
            sub.mkdir(parents=True, exist_ok=True)
            with faults.planted(plan, sub, temperature=cfg.temperature, tails=tails) as fx:
                if plan.kind in faults.KINDS and not fx.failed:
                    raise RuntimeError(f"fixture {plan.kind} seed {plan.seed} did not fail")
                row = blame_fixture(fx, cfg, executor, seed=cfg.seed + i)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            out.append(row)
            say(_progress_line(f"{tails} {label}", i, len(group), row))
    return rows, controls, positions


def _progress_line(label: str, i: int, total: int, row: dict[str, Any]) -> str:
    mark = "" if row["root"] is None else (" hit" if row["hit1"] else " MISS")
    claims = f" claims {row['claims']}" if row["root"] is None else ""
    return (
        f"{label} {i}/{total} {row['kind']} ({row['steps']} steps, root {row['root']}): "
        f"top {row['top']}{mark}{claims}, {row['live_calls']}/{row['uniform_calls']} calls, "
        f"{row['seconds']}s"
    )


def _blind(
    rank: Any, rows: Sequence[dict[str, Any]], cfg: Config, seed: int
) -> tuple[float, float, float]:
    """A blind engine: ``rank`` on each fixture's outcomes shuffled across its trials (each
    step keeping its number of trials). Returns its top-1 at the true roots, its top-1 had
    each root sat at a random one of the positions its class allows (the chance of a ranking
    that reads no flips, whatever position it favours), and the z score of the difference:
    the sum over fixtures of (hit - chance) over the spread that random root positions give."""
    rng = random.Random(seed)
    hits = chance = spread = 0.0
    for r in rows:
        first: dict[int, int] = {}
        for _ in range(cfg.permutations):
            ranked = rank(shuffled(r["trials"], rng), rng)
            if ranked:
                first[ranked[0]] = first.get(ranked[0], 0) + 1
        allowed = list(faults.positions(r["kind"], r["steps"])) or [r["root"]]
        rates = [first.get(k, 0) / cfg.permutations for k in allowed]
        mean = sum(rates) / len(rates)
        hits += first.get(r["root"], 0) / cfg.permutations
        chance += mean
        spread += sum(x * x for x in rates) / len(rates) - mean * mean
    n = max(len(rows), 1)
    z = (hits - chance) / spread**0.5 if spread > 0 else (0.0 if hits <= chance else math.inf)
    return hits / n, chance / n, z


def _position_p(rank: Any, positions: Sequence[dict[str, Any]], cfg: Config) -> float:
    rng = random.Random(cfg.seed + 2)
    by_position: dict[int, list[int]] = {}
    for r in positions:
        ranked = rank(r["trials"], rng)
        by_position.setdefault(r["root"], [0, 0])[0 if ranked[:1] == [r["root"]] else 1] += 1
    table = [(h, m) for h, m in (by_position[k] for k in sorted(by_position))]
    return chi_square_permutation(table, cfg.position_permutations, random.Random(cfg.seed + 1))


def _summarize(
    cfg: Config,
    rows: list[dict[str, Any]],
    controls: list[dict[str, Any]],
    positions: list[dict[str, Any]],
) -> dict[str, Any]:
    per_class = {}
    for kind in faults.KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        per_class[kind] = {
            "top1": _interval(sum(r["hit1"] for r in mine), len(mine), cfg.confidence),
            "top3": _interval(sum(r["hit3"] for r in mine), len(mine), cfg.confidence),
        }
    live = sum(r["live_calls"] for r in rows)
    uniform = sum(r["uniform_calls"] for r in rows)
    overall = {
        "top1": _interval(sum(r["hit1"] for r in rows), len(rows), cfg.confidence),
        "top3": _interval(sum(r["hit3"] for r in rows), len(rows), cfg.confidence),
    }
    cost = {"live_calls": live, "uniform_calls": uniform, "ratio": live / uniform if uniform else 0}
    # Certification: of the true roots whose measured flip rate is at least 0.8, how many
    # blame read as "cause".
    strong = [r for r in rows if r["root_flip_rate"] is not None and r["root_flip_rate"] >= 0.8]
    certified = _interval(
        sum(r["root_verdict"] == "cause" for r in strong), len(strong), cfg.confidence
    )
    certified["all_roots"] = _interval(
        sum(r["root_verdict"] == "cause" for r in rows), len(rows), cfg.confidence
    )
    blind_top1, chance, z = _blind(blame_ranking, rows, cfg, cfg.seed)
    blind = {"top1": blind_top1, "chance": chance, "z": z, "permutations": cfg.permutations}
    blind["ok"] = z <= BLIND_Z
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
    table = [(h, m) for h, m in (by_position[k] for k in sorted(by_position))]
    p_value = _position_p(blame_ranking, positions, cfg)
    position: dict[str, Any] = {
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
    # The ranking validate scores is blame's own, recomputed from the counts: if blame's
    # report and this function ever disagree, the controls below test the wrong thing.
    agree = all(blame_ranking(r["trials"]) == r["ranking"] for r in [*rows, *positions])
    targets = {
        "top1_min": TOP1_TARGET,
        "top3_min": TOP3_TARGET,
        "certified_min": CERTIFIED_TARGET,
        "cost_ratio_max": COST_TARGET,
        "top1_met": overall["top1"]["rate"] >= TOP1_TARGET,
        "top3_met": overall["top3"]["rate"] >= TOP3_TARGET,
        "certified_met": certified["n"] == 0 or certified["rate"] >= CERTIFIED_TARGET,
        "cost_met": cost["ratio"] <= COST_TARGET,
        "no_false_causes": no_fault["ok"],
        "controls_ok": blind["ok"] and no_fault["ok"] and position["ok"] and agree,
    }
    targets["all_met"] = all(v for k, v in targets.items() if k.endswith(("_met", "_ok", "causes")))
    return {
        "overall": overall,
        "per_class": per_class,
        "cost": cost,
        "certified": certified,
        "controls": {
            "no_fault": no_fault,
            "blind": blind,
            "position": position,
            "ranking_agrees": agree,
        },
        "targets": targets,
        "fixtures": rows,
        "control_fixtures": controls,
        "position_fixtures": positions,
    }


def _broken(cfg: Config, summary: dict[str, Any]) -> dict[str, Any]:
    """Each broken ranking run through the same scoring: which control catches it."""
    rows, positions = summary["fixtures"], summary["position_fixtures"]
    out = {}
    for name, rank in {"blame (the real ranking)": blame_ranking, **BROKEN}.items():
        rng = random.Random(cfg.seed + 3)
        top1 = sum(rank(r["trials"], rng)[:1] == [r["root"]] for r in rows) / max(len(rows), 1)
        blind, chance, z = _blind(rank, rows, cfg, cfg.seed)
        p = _position_p(rank, positions, cfg)
        caught = []
        if top1 < TOP1_TARGET:
            caught.append("top-1 target")
        if z > BLIND_Z:
            caught.append("blind engine")
        if p < POSITION_ALPHA:
            caught.append("position")
        out[name] = {
            "top1": top1,
            "blind_top1": blind,
            "blind_chance": chance,
            "position_p": p,
            "caught_by": caught,
        }
    return out


def _max_rate(row: dict[str, Any]) -> float:
    rates = [f / n for _, n, f in row["trials"] if n]
    return round(max(rates), 3) if rates else 0.0


# --- check and write --------------------------------------------------------------------------


def check(
    fresh: dict[str, Any], committed: dict[str, Any], tolerance: float = TOLERANCE
) -> list[str]:
    """What got worse than the committed report (beyond ``tolerance``), one line each."""
    if "tails" not in committed:
        return ["the committed report predates the tail kinds: regenerate it with --out"]
    problems = []
    for tails, was_doc in committed["tails"].items():
        now_doc = fresh["tails"].get(tails)
        if now_doc is None:
            problems.append(f"{tails} tails: not measured")
            continue
        pairs: list[tuple[str, tuple[str, ...]]] = [
            ("top-1", ("overall", "top1")),
            ("top-3", ("overall", "top3")),
        ]
        pairs.append(("certified causes", ("certified",)))
        pairs += [(f"{k} top-1", ("per_class", k, "top1")) for k in was_doc.get("per_class", {})]
        for label, path in pairs:
            was, now = _rate(was_doc, path), _rate(now_doc, path)
            if now < was - tolerance:
                problems.append(f"{tails} tails: {label} fell from {was:.3f} to {now:.3f}")
        was, now = was_doc["cost"]["ratio"], now_doc["cost"]["ratio"]
        if now > was + tolerance:
            problems.append(f"{tails} tails: live calls / uniform rose from {was:.3f} to {now:.3f}")
        for name, control in now_doc["controls"].items():
            ok = control if isinstance(control, bool) else control["ok"]
            old = was_doc["controls"].get(name)
            old_ok = old if isinstance(old, bool) else (old or {}).get("ok")
            if not ok and old_ok:
                problems.append(
                    f"{tails} tails: the {name.replace('_', ' ')} control no longer behaves"
                )
    for tails, table in committed.get("broken_rankings", {}).items():
        for name, row in table.items():
            now = fresh.get("broken_rankings", {}).get(tails, {}).get(name)
            if now is not None and row["caught_by"] and not now["caught_by"]:
                problems.append(f"{tails} tails: no control catches the {name} ranking any more")
    return problems


def _rate(doc: dict[str, Any], path: Sequence[str]) -> float:
    for key in path:
        doc = doc[key]
    return float(doc["rate"]) if isinstance(doc, dict) else float(doc)


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
(`seamtape.proof.faults`; docs/blame.md says what "root cause" means for each class, why
resampling can see it, and how blame separates a step from its live tail). Every number below comes from the command printed beside it; both
commands run offline, and `--check` fails when a result falls below the committed one.
"""


def markdown(doc: dict[str, Any]) -> str:
    """The validate section of experiments/blame.md: both tail kinds side by side."""
    cfg = doc["config"]
    kinds = list(doc["tails"])

    def iv(x: dict[str, Any]) -> str:
        if not x["n"]:
            return "n/a (0)"
        return f"{x['rate']:.3f} [{x['low']:.2f}, {x['high']:.2f}] ({x['hits']}/{x['n']})"

    def mark(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        "## Precision against injected faults, on both tail kinds",
        "",
        f"Reproduce: `{doc['command']} --out experiments` (writes `experiments/validate.json` "
        f"and this section; `{doc['command']} --check --out experiments` re-runs the committed "
        f"settings and exits 1 if a result fell more than {TOLERANCE} below them). "
        f"{cfg['fixtures']} fixtures per tail kind, 3 to {cfg['max_steps']} steps, fault "
        f"position at random; blame with `perturb='resample'`, the paired contrast, "
        f"{cfg['min_trials']} to {cfg['max_trials']} trials per step (the leader to "
        f"{4 * cfg['max_trials']}), threshold {cfg['threshold']}, confidence "
        f"{cfg['confidence']}; model temperature {cfg['temperature']}; {cfg['workers']} "
        f"workers; {doc['seconds']} s on {doc['machine']['cores']} cores.",
        "",
        "Tail kinds: **repeats**: the simulator samples a live call only when it repeats a "
        "conversation (a fork's tail is otherwise answered deterministically); **sampled**: "
        "every live call is sampled at the temperature, as a provider does.",
        "",
        "| | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    t = {k: doc["tails"][k] for k in kinds}
    for kind in next(iter(t.values()))["per_class"]:
        lines.append(
            f"| {kind} top-1 | "
            + " | ".join(iv(t[k]["per_class"][kind]["top1"]) for k in kinds)
            + " |"
        )
    lines.append(
        f"| **top-1** (target ≥ {TOP1_TARGET}) | "
        + " | ".join(
            f"**{iv(t[k]['overall']['top1'])}** {mark(t[k]['targets']['top1_met'])}" for k in kinds
        )
        + " |"
    )
    lines.append(
        f"| **top-3** (target ≥ {TOP3_TARGET}) | "
        + " | ".join(
            f"**{iv(t[k]['overall']['top3'])}** {mark(t[k]['targets']['top3_met'])}" for k in kinds
        )
        + " |"
    )
    lines.append(
        f"| **cause certified**, roots flipping ≥ 0.8 (target ≥ {CERTIFIED_TARGET}) | "
        + " | ".join(
            f"**{iv(t[k]['certified'])}** {mark(t[k]['targets']['certified_met'])}" for k in kinds
        )
        + " |"
    )
    lines.append(
        "| cause certified, all roots | "
        + " | ".join(iv(t[k]["certified"]["all_roots"]) for k in kinds)
        + " |"
    )
    lines.append(
        f"| **live calls** / uniform {cfg['max_trials']} per step (target ≤ {COST_TARGET}) | "
        + " | ".join(
            f"**{t[k]['cost']['ratio']:.3f}** ({t[k]['cost']['live_calls']}/"
            f"{t[k]['cost']['uniform_calls']}) {mark(t[k]['targets']['cost_met'])}"
            for k in kinds
        )
        + " |"
    )
    lines.append(
        "| false causes in the no-fault controls (target 0) | "
        + " | ".join(
            f"{t[k]['controls']['no_fault']['false_claims']} of {t[k]['controls']['no_fault']['runs']}"
            for k in kinds
        )
        + " |"
    )
    lines += ["", "### Controls, and what each one catches", ""]
    for k in kinds:
        ctl = t[k]["controls"]
        nf, bl, po = ctl["no_fault"], ctl["blind"], ctl["position"]
        cells = ", ".join(f"{p}: {v['hits']}/{v['n']}" for p, v in po["per_position"].items())
        lines += [
            f"**{k} tails**",
            "",
            f"- **No fault** (catches false causes: a verdict that claims what no step did): "
            f"{nf['false_claims']} of {nf['runs']} runs with a step claimed as the cause "
            f"({'behaves' if nf['ok'] else 'DOES NOT BEHAVE'}).",
            f"- **Blind engine** (catches a ranking that does not read the flips, such as one by "
            f"trials spent or by step: it scores as well on outcomes shuffled across the "
            f"fixture's trials as on the real ones): blame's ranking of shuffled outcomes "
            f"scores top-1 {bl['top1']:.3f} against {bl['chance']:.3f}, its top-1 had each root "
            f"sat at a random position its class allows, z = {bl['z']:.2f} "
            f"({'behaves' if bl['ok'] else 'DOES NOT BEHAVE'}: z ≤ {BLIND_Z}).",
            f"- **Position** (catches a ranking that favours a position, such as last step "
            f"first): top-1 by position {cells}; permutation p = {po['p_value']:.3f} "
            f"({'behaves' if po['ok'] else 'DOES NOT BEHAVE'}: p ≥ {POSITION_ALPHA}).",
            f"- **Same ranking** (catches validate scoring a ranking other than blame's): "
            f"blame's reported order equals the one recomputed from its counts: "
            f"{'yes' if ctl['ranking_agrees'] else 'NO'}.",
            "",
        ]
    lines += [
        "Broken rankings run through the same scoring, from the same counts (each must be "
        "caught by at least one control, blame's by none):",
        "",
        "| tails | ranking | top-1 | blind top-1 (its chance) | position p | caught by |",
        "|---|---|---|---|---|---|",
    ]
    for k in kinds:
        for name, row in doc["broken_rankings"][k].items():
            lines.append(
                f"| {k} | {name} | {row['top1']:.3f} | {row['blind_top1']:.3f} "
                f"({row['blind_chance']:.3f}) | "
                f"{row['position_p']:.3f} | {', '.join(row['caught_by']) or 'none'} |"
            )
    for k in kinds:
        misses = [r for r in t[k]["fixtures"] if not r["hit1"]]
        if misses:
            lines += ["", f"Top-1 misses ({k} tails):", ""]
            for r in misses:
                lines.append(
                    f"- {r['kind']} seed {r['seed']} ({r['steps']} steps): root {r['root']}, "
                    f"ranked {r['top']}; per step [step, trials, flips]: {r['trials']}"
                )
    return "\n".join(lines)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def save(
    doc: dict[str, Any], folder: Path, section: Callable[[dict[str, Any]], str], name: str
) -> None:
    """Write ``folder/<name>.json`` and the ``name`` section of ``folder/blame.md``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    write_section(folder / "blame.md", name, section(doc))
