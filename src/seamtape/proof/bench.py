"""`seamtape bench`: competing causes in one longer run, and how blame reads each of them.

(Not ``scripts/bench_seam.py``, which measures the seam's speed.) Each scenario is one run of
the ledger agent of ``seamtape.proof.faults`` (18 to 19 steps) with several things planted in it:

- **root and echo**: a poisoned tool argument (the root cause) whose next step could notice
  the wrong record but rarely does (its echo), beside two decoys that look alarming and do
  not matter: a lookup that times out and is retried, and a corrupted record of a closed
  account (closed accounts are not counted). Expected: the root ranked first and read as the
  cause; the echo ranked below it and not read as a cause; the decoys not read as causes.
- **conjunction**: two faults that fail the run only together: a closed account's record is
  corrupted to a large balance (harmless while closed accounts are left out; closed accounts
  truly hold 0 EUR), and a model slip restates the rule as "sum all accounts" a few steps
  before (harmless while every closed account is 0). Expected: both parts read as causes,
  the top two steps, since fixing either one alone fixes the run.
- **overdetermined**: two faults each enough on its own (a corrupted open account and a
  stale retrieval). Expected: *no* step read as a cause: fixing one leaves the other, so no
  single step flips the outcome. That is what one-step counterfactual blame can say; a
  report that claimed a cause here would be wrong.

The planted steps are located in the recorded run by what its requests carry, not assumed.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from seamtape._steps import steps_of
from seamtape.engine.stats import confidence_sequence, wilson
from seamtape.proof import faults
from seamtape.proof._config import Settings
from seamtape.proof.validate import blame_fixture, pool
from seamtape.sim.policies import Draws
from seamtape.tape import Tape

__all__ = ["SCENARIOS", "BenchConfig", "check", "markdown", "run_bench"]

SCENARIOS = ("root_and_echo", "conjunction", "overdetermined")
ACCOUNTS = 17  # 18 model calls, 19 with the retried lookup


@dataclass(frozen=True)
class BenchConfig(Settings):
    """The bench's settings: the shared ones, nothing more."""

    experiment: ClassVar[str] = "bench"


# --- the worlds -------------------------------------------------------------------------------


def _world(seed: int, scenario: str) -> tuple[Any, dict[str, str]]:
    """The scenario's world and the planted things, by account: {account: role}."""
    draws = Draws("seamtape.bench", seed, scenario)
    accounts = faults._accounts(draws, ACCOUNTS)
    rng = random.Random(draws.u64())
    # No scenario name in the task: the model sees it, and so does every input blame reads.
    # Closed accounts hold 0 EUR (a closed account's money has moved out): a rule slip alone
    # is then harmless, which is what the conjunction needs; the others do not mind.
    accounts = [replace(a, balance=0) if a.status == "closed" else a for a in accounts]
    world = faults.World(
        task=f"B-{seed}-{SCENARIOS.index(scenario) if scenario in SCENARIOS else 9}",
        accounts=tuple(accounts),
    )
    slots = rng.sample(range(2, ACCOUNTS), 6)  # 1-based account positions, none the first

    def put(i: int, **fields: Any) -> Any:
        accounts[i - 1] = replace(accounts[i - 1], **fields)
        return accounts[i - 1]

    roles: dict[str, str] = {}
    flaky = put(slots[0], source="ledger", status="open")
    roles[flaky.name] = "decoy: timed-out lookup, retried"
    if scenario == "root_and_echo":
        root = put(slots[1], source="ledger", status="open")
        twin = faults._lookalike(root, accounts, draws)
        harmless = put(slots[2], source="ledger", status="closed", balance=0)
        roles[root.name] = "root"
        roles[harmless.name] = "decoy: corrupted record of a closed account"
        world = replace(
            world,
            accounts=tuple(accounts),
            lookalikes=(twin,),
            traps=((root.name, twin.name),),
            corrupt=((harmless.name, 300 + 10 * rng.randrange(20)),),
            flaky=(flaky.name,),
        )
    elif scenario == "conjunction":
        first, second = sorted(slots[1:3])
        slip_at = first  # the slip is written at step `first`, before the record is read
        closed = put(second, source="ledger", status="closed", balance=0)
        called = tuple(a.name for a in accounts[: slip_at - 1])
        roles[closed.name] = "part: corrupted record of a closed account"
        roles["slip"] = "part: rule restated as 'sum all accounts'"
        world = replace(
            world,
            accounts=tuple(accounts),
            corrupt=((closed.name, 300 + 10 * rng.randrange(20)),),
            slips=((slip_at - 1, called),),
            flaky=(flaky.name,),
        )
    elif scenario == "overdetermined":
        bad = put(slots[1], source="ledger", status="open")
        stale = put(slots[2], source="archive", status="open")
        roles[bad.name] = "part: corrupted record of an open account"
        roles[stale.name] = "part: stale retrieval ranked first"
        world = replace(
            world,
            accounts=tuple(accounts),
            corrupt=((bad.name, bad.balance + 150 + 10 * rng.randrange(20)),),
            stale=((stale.name, stale.balance + 80 + 10 * rng.randrange(20), "open"),),
            flaky=(flaky.name,),
        )
    else:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    return world, roles


def _locate(tape: Path, run_id: str, world: Any, roles: dict[str, str]) -> dict[str, int]:
    """The step of each planted thing in the recorded run, found from what the steps carry."""
    with Tape(tape) as t:
        steps = steps_of(t, run_id)
    calls: dict[str, Any] = {}
    found: dict[str, int] = {}
    traps = dict(world.traps)
    for number, step in enumerate(steps, start=1):
        if step is None:  # an exchange no codec reads holds no role
            continue
        for message in step.messages:
            for call in message.tool_calls:
                calls[call.id] = call
        for result in step.tool_results:  # what this step consumes
            asked = calls.get(result.call_id)
            who = (
                str(asked.arguments.get("account") or asked.arguments.get("query", ""))
                if asked
                else ""
            )
            who = who.split()[0] if who else ""
            role = roles.get(who, "")
            consumed = role.startswith(("decoy: corrupted", "part:")) and not result.is_error
            if consumed or (role.startswith("decoy: timed-out") and result.is_error):
                found.setdefault(role, number)
        for call in step.tool_calls:  # what this step does
            target = str(call.arguments.get("account", ""))
            for account, twin in traps.items():
                if target == twin:
                    found.setdefault(roles[account], number)
                    found.setdefault("echo", number + 1)
        if "Rule: sum all accounts" in step.text and "slip" in roles:
            found.setdefault(roles["slip"], number)
    return found


# --- the run ----------------------------------------------------------------------------------


def run_bench(cfg: BenchConfig, *, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Record and blame each scenario; the readings as a JSON-ready dict."""
    say = progress or (lambda line: None)
    started = time.perf_counter()
    out = []
    with tempfile.TemporaryDirectory(prefix="seamtape-bench-") as folder, pool(cfg.workers) as ex:
        for tails in cfg.tail_kinds:
            for i, scenario in enumerate(SCENARIOS):
                world, roles = _world(cfg.seed, scenario)
                plan = faults.Design(cfg.seed, scenario, world, ACCOUNTS + 1, None)
                t0 = time.perf_counter()
                with faults.planted(plan, folder, temperature=cfg.temperature, tails=tails) as fx:
                    if not fx.failed:
                        raise RuntimeError(f"bench scenario {scenario} did not fail")
                    where = _locate(fx.tape, fx.run_id, world, roles)
                    row = blame_fixture(fx, cfg, ex, seed=cfg.seed + i)
                out.append({"tails": tails, **_readings(scenario, where, row, cfg)})
                out[-1]["seconds"] = round(time.perf_counter() - t0, 2)
                say(
                    f"{tails} {scenario}: {row['steps']} steps, ranked {row['top']}, claims "
                    f"{row['claims']}, {sum(r['ok'] for r in out[-1]['readings'])}/"
                    f"{len(out[-1]['readings'])} readings as expected, {out[-1]['seconds']}s"
                )
    return {
        "what": "competing causes in one run and how blame reads them (seamtape bench)",
        "command": cfg.command(),
        "config": asdict(cfg),
        "scenarios": out,
        "expected": sum(r["ok"] for s in out for r in s["readings"]),
        "readings": sum(len(s["readings"]) for s in out),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _readings(
    scenario: str, where: dict[str, int], row: dict[str, Any], cfg: BenchConfig
) -> dict[str, Any]:
    counts = {step: (n, f) for step, n, f in row["trials"]}
    ranked = row["top"]
    order = row["ranking"]

    def read(step: int) -> dict[str, Any]:
        n, f = counts.get(step, (0, 0))
        low, high = wilson(f, n, cfg.confidence) if n else (0.0, 1.0)
        cs = confidence_sequence(f, n, cfg.confidence) if n else (0.0, 1.0)
        verdict = row["verdicts"][str(step)]
        return {
            "step": step,
            "rank": order.index(step) + 1 if step in order else None,
            "trials": n,
            "flips": f,
            "flip_rate": f / n if n else None,
            "wilson": [low, high],
            "cs": list(cs),
            "verdict": verdict,
            "tail": "/".join(map(str, counts.get(step + 1, (0, 0))[::-1]))
            if step < row["steps"]
            else "none",
        }

    readings = []
    parts = sorted(step for role, step in where.items() if role.startswith("part:"))
    root = where.get("root")
    for role, step in sorted(where.items(), key=lambda kv: kv[1]):
        r = read(step)
        checks: list[tuple[str, bool]] = []
        if role == "root":
            checks.append(("ranked first", r["rank"] == 1))
            checks.append(("read as the cause", r["verdict"] == "cause"))
        elif role == "echo":
            below = root is not None and (r["rank"] or 99) > 1
            checks.append(
                ("ranked below the root, not read as a cause", below and r["verdict"] != "cause")
            )
        elif role.startswith("decoy"):
            checks.append(("not read as a cause", r["verdict"] != "cause"))
        elif scenario == "conjunction":
            # Fixing either part alone fixes the run: each is a but-for cause.
            checks.append(("in the top two", step in ranked[:2]))
            checks.append(("read as a cause", r["verdict"] == "cause"))
        else:
            checks.append(
                (
                    "not read as a cause (the other part still fails the run)",
                    r["verdict"] != "cause",
                )
            )
        for expect, ok in checks:
            readings.append({"role": role, "expect": expect, "ok": ok, **r})
    if scenario == "overdetermined":
        readings.append(
            {
                "role": "whole run",
                "expect": "no step claimed as the cause",
                "ok": not row["claims"],
                "step": None,
                "claims": row["claims"],
            }
        )
    return {
        "scenario": scenario,
        "steps": row["steps"],
        "parts": parts,
        "ranked": ranked,
        "claims": row["claims"],
        "live_calls": row["live_calls"],
        "uniform_calls": row["uniform_calls"],
        "trials": row["trials"],
        "readings": readings,
    }


# --- check and markdown -----------------------------------------------------------------------


def check(fresh: dict[str, Any], committed: dict[str, Any]) -> list[str]:
    """Readings that held in the committed report and no longer do."""
    if any("tails" not in s for s in committed["scenarios"]):
        return ["the committed report predates the tail kinds: regenerate it with --out"]
    held = {
        (s.get("tails", "repeats"), s["scenario"], r["role"], r["expect"])
        for s in committed["scenarios"]
        for r in s["readings"]
        if r["ok"]
    }
    problems = []
    for s in fresh["scenarios"]:
        for r in s["readings"]:
            if not r["ok"] and (s["tails"], s["scenario"], r["role"], r["expect"]) in held:
                problems.append(
                    f"{s['tails']} tails, {s['scenario']}: {r['role']} is no longer {r['expect']}"
                )
    return problems


def _one_miss(cfg: dict[str, Any]) -> str:
    """How many trials with a single non-flip the confidence sequence needs to clear θ."""
    for n in range(2, 200):
        if confidence_sequence(n - 1, n, cfg["confidence"])[0] > cfg["threshold"]:
            return f"{n - 1} of {n}"
    return "more than 200"


def markdown(doc: dict[str, Any]) -> str:
    """The bench section of experiments/blame.md."""
    lines = [
        "## Competing causes in one run",
        "",
        f"Reproduce: `{doc['command']} --out experiments` (writes `experiments/bench.json` and "
        f"this section; `{doc['command']} --check --out experiments` fails if a reading that "
        "held here no longer does). Both tail kinds, as in validate. "
        f"{doc['expected']} of {doc['readings']} readings as expected, {doc['seconds']} s.",
        "",
        "| tails | scenario | planted | step | rank | flips / trials | tail's flips / trials | anytime 95% | verdict | expected | as expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in doc["scenarios"]:
        for r in s["readings"]:
            if r.get("step") is None:
                lines.append(
                    f"| {s['tails']} | {s['scenario']} | {r['role']} | | | | | | claims {r['claims']} | "
                    f"{r['expect']} | {'yes' if r['ok'] else '**no**'} |"
                )
                continue
            cs = f"[{r['cs'][0]:.2f}, {r['cs'][1]:.2f}]"
            lines.append(
                f"| {s['tails']} | {s['scenario']} | {r['role']} | {r['step']} | {r['rank']} | "
                f"{r['flips']}/{r['trials']} | {r['tail']} | {cs} | {r['verdict']} | {r['expect']} | "
                f"{'yes' if r['ok'] else '**no**'} |"
            )
    lines.append("")
    cap = doc["config"]["max_trials"]
    for s in doc["scenarios"]:
        for r in s["readings"]:
            if r["ok"] or r.get("step") is None or r["verdict"] != "uncertain":
                continue
            cs = f"[{r['cs'][0]:.2f}, {r['cs'][1]:.2f}]"
            why = (
                f"its anytime-valid interval {cs} still holds {doc['config']['threshold']}"
                if r["cs"][0] <= doc["config"]["threshold"]
                else f"its interval {cs} clears {doc['config']['threshold']} but its tail's "
                f"({r['tail']} flips) is not yet clearly below it: only the leader's tail gets "
                "the trials that would settle it"
            )
            lines.append(
                f"- Not as expected: {s['tails']} tails, {s['scenario']}, {r['role']} "
                f"(step {r['step']}): {r['flips']}/{r['trials']} flips"
                + (f" at the cap of {cap} trials" if r["trials"] >= cap else "")
                + f"; {why}, so blame says uncertain rather than cause."
            )
    for s in doc["scenarios"]:
        lines.append(
            f"- {s['tails']} tails, {s['scenario']}: {s['steps']} steps, ranked {s['ranked']}, causes claimed "
            f"{s['claims'] or 'none'}, {s['live_calls']}/{s['uniform_calls']} live calls of "
            f"uniform; per step [step, trials, flips]: {s['trials']}"
        )
    return "\n".join(lines)
