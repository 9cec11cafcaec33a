"""Injected faults with a known root cause: the fixtures that prove blame right or wrong.

Every fixture is a failed run of the ledger agent (``_ledger``, the official ``anthropic`` SDK
pointed at the simulator on 127.0.0.1) whose model is ``_ledger_model.LedgerModel``, recorded
into a tape, with the agent and oracle that reproduce it and the one step that caused it.
What "root cause" means for each class, and why blame can see it: docs/blame.md.

Everything is a pure function of the seed: same seed, same world, same tape digest (on the
same port, since the URL is part of the digest) and the same root-cause step.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from seamtape import sim
from seamtape._agents import run_agent
from seamtape._session import record
from seamtape.sim.policies import Draws

from ._config import TAIL_KINDS as TAILS
from ._ledger import Account, LedgerAgent, TotalOracle, World
from ._ledger_model import LedgerModel

__all__ = [
    "CONTROLS",
    "KINDS",
    "TAILS",
    "Account",
    "Design",
    "Fixture",
    "LedgerAgent",
    "LedgerModel",
    "TotalOracle",
    "World",
    "design",
    "planted",
    "positions",
]

KINDS = (
    "corrupted_tool_output",
    "misleading_retrieval",
    "wrong_instruction",
    "dropped_message",
    "poisoned_tool_argument",
)
CONTROLS = ("none", "unfixable")

MIN_STEPS, MAX_STEPS = 3, 20


# --- designing and recording fixtures ---------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """A planned fixture: the world, its fault class, and the planned root-cause step."""

    seed: int
    kind: str
    world: World
    steps: int  # model calls in the recorded run
    root_cause: int | None  # 1-based step; None for the controls


def positions(kind: str, steps: int) -> range:
    """The steps at which a fault of ``kind`` can be the root cause in a run of ``steps``."""
    if kind in ("corrupted_tool_output", "misleading_retrieval", "dropped_message"):
        return range(2, steps + 1)
    if kind == "poisoned_tool_argument":
        return range(1, steps)
    if kind == "wrong_instruction":
        return range(1, steps + 1)
    return range(0)


def design(
    seed: int,
    kind: str,
    *,
    steps: int | None = None,
    position: int | None = None,
    longest: int = MAX_STEPS,
) -> Design:
    """Plan a fixture from ``seed``: run length (3 to ``longest`` steps, 20 at most) and
    fault position at random unless given."""
    if kind not in KINDS + CONTROLS:
        raise ValueError(f"unknown fault class {kind!r}; known: {', '.join(KINDS + CONTROLS)}")
    draws = Draws("seamtape.faults", seed, kind)  # a seed namespace: kept so worlds stay the same
    if steps is None:
        steps = MIN_STEPS + draws.below(min(longest, MAX_STEPS) - MIN_STEPS + 1)
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be {MIN_STEPS} to {MAX_STEPS}, not {steps}")
    allowed = positions(kind, steps)
    if kind in KINDS:
        if position is None:
            position = allowed[draws.below(len(allowed))]
        elif position not in allowed:
            raise ValueError(f"{kind} in a {steps}-step run can sit at steps {list(allowed)}")
    accounts = _accounts(draws, steps - 1)
    world = World(task=f"T-{seed:04d}", accounts=tuple(accounts))
    k = position or 0
    if kind == "corrupted_tool_output":
        target = _set(accounts, k - 1, source="ledger", status="open")
        wrong = target.balance + 90 + 10 * draws.below(40)
        world = replace(world, accounts=tuple(accounts), corrupt=((target.name, wrong),))
    elif kind == "misleading_retrieval":
        target = _set(accounts, k - 1, source="archive")
        stale = (target.balance + 60 + 10 * draws.below(30), "open")
        if target.status == "closed":
            stale = (target.balance, "open")
        world = replace(world, accounts=tuple(accounts), stale=((target.name, *stale),))
    elif kind == "dropped_message":
        _set(accounts, k - 1, status="open")
        world = replace(world, accounts=tuple(accounts), drop_at=k)
    elif kind == "poisoned_tool_argument":
        target = _set(accounts, k, source="ledger", status="open")
        twin = _lookalike(target, accounts, draws)
        world = replace(
            world, accounts=tuple(accounts), lookalikes=(twin,), traps=((target.name, twin.name),)
        )
    elif kind == "wrong_instruction":
        first = max(1, k - 1)
        _set(accounts, first + draws.below(len(accounts) - first + 1), status="closed")
        called = tuple(a.name for a in accounts[: k - 1])
        world = replace(world, accounts=tuple(accounts), slips=((k - 1, called),))
    elif kind == "unfixable":
        at = draws.below(len(accounts)) + 1
        target = _set(accounts, at, source="ledger", status="open")
        wrong = target.balance + 100 + 10 * draws.below(20)
        world = replace(world, accounts=tuple(accounts), misreported=((target.name, wrong),))
    return Design(seed, kind, world, steps, position if kind in KINDS else None)


def _accounts(draws: Any, count: int) -> list[Account]:
    numbers: set[int] = set()
    out: list[Account] = []
    while len(out) < count:
        number = 100 + draws.below(900)
        if number in numbers or len(set(str(number))) < 3:
            continue  # distinct digits, so every account has lookalikes free to plant
        numbers.add(number)
        source = "archive" if draws.uniform() < 0.3 else "ledger"
        status = "closed" if draws.uniform() < 0.2 else "open"
        out.append(Account(f"acct-{number}", source, 20 + 5 * draws.below(97), status))
    return out


def _set(accounts: list[Account], index: int, **fields: Any) -> Account:
    """Change the 1-based ``index``-th account in place (and return it)."""
    accounts[index - 1] = replace(accounts[index - 1], **fields)
    return accounts[index - 1]


def _lookalike(target: Account, accounts: list[Account], draws: Any) -> Account:
    digits = target.name.rsplit("-", 1)[-1]
    taken = {a.name for a in accounts}
    options = [f"acct-{digits[0]}{digits[2]}{digits[1]}", f"acct-{digits[1]}{digits[0]}{digits[2]}"]
    name = next(o for o in options if o not in taken and not o.startswith("acct-0"))
    balance = target.balance + (50 + 5 * draws.below(40)) * (1 if draws.below(2) else -1)
    return Account(
        name, "ledger", max(balance, 5) if balance != target.balance else balance + 5, "open"
    )


@dataclass
class Fixture:
    """A recorded fixture, live while its ``planted`` block runs (the simulator serves tails)."""

    design: Design
    tape: Path
    run_id: str
    digest: str
    steps: int
    result: Any
    failed: bool
    upstream: str
    agent: LedgerAgent
    oracle: TotalOracle
    policy: LedgerModel
    tails: str = "repeats"

    @property
    def kind(self) -> str:
        return self.design.kind

    @property
    def root_cause(self) -> int | None:
        return self.design.root_cause


@contextlib.contextmanager
def planted(
    plan: Design,
    folder: str | os.PathLike[str],
    *,
    temperature: float = 0.8,
    port: int = 0,
    world: World | None = None,
    tails: str = "repeats",
) -> Iterator[Fixture]:
    """Record ``plan``'s run into a tape in ``folder`` and keep its simulator up for the block.

    ``world`` overrides the plan's world (``plan.world.clean()`` records the clean twin).
    ``tails``: how the simulator answers live calls once the run is recorded (``TAILS``): the
    recording itself is answered greedily, so that the planted fault shows in it. Neither the
    tape's name nor the run's carries the fault class or the planted step: blame sees neither.
    """
    if tails not in TAILS:
        raise ValueError(f"tails must be one of {', '.join(TAILS)}, not {tails!r}")
    world = world or plan.world
    agent, oracle = LedgerAgent(world), TotalOracle(world.truth, world.tolerance)
    policy = LedgerModel(plan.seed, temperature, traps=world.traps, slips=world.slips)
    label = hashlib.sha256(f"{plan.kind} {plan.seed} {tails} {world}".encode()).hexdigest()
    tape = Path(folder) / f"fixture-{label[:12]}.tape"
    with sim.serve(policy, port=port) as server:
        with record(tape, name=f"audit {world.task}", upstream=server.anthropic_base_url) as rec:
            result = run_agent(rec, agent)
            steps = rec.stats["live"]
        policy.sample_every = tails == "sampled"
        yield Fixture(
            design=plan,
            tape=tape,
            run_id=rec.run_id,
            digest=rec.digest,
            steps=steps,
            result=result,
            failed=not oracle(result),
            upstream=server.anthropic_base_url,
            agent=agent,
            oracle=oracle,
            policy=policy,
            tails=tails,
        )
