"""One trial: fork the run at a step with the step perturbed, grade the result; picklable so
that any executor can run it."""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from seamtape._agents import load_agent
from seamtape._errors import DivergenceError, TapeError
from seamtape.engine.fork import fork, live_cost
from seamtape.tape import Tape

from ._oracle import RunView, oracle_from

__all__ = ["TrialOutcome", "TrialSpec", "run_trial"]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial; picklable."""

    attempt: int
    step: int
    tape: str
    run: str
    agent: Any  # a callable, or "pkg.mod:fn"
    oracle: Any  # a callable, or a string shorthand
    edit: dict[str, Any] | None  # None: resample
    upstream: str | None
    path: str  # the caller's working directory, for importing "pkg.mod:fn" specs


@dataclass
class TrialOutcome:
    attempt: int
    step: int
    run_id: str | None
    success: bool
    identical: bool
    live: int
    cost_usd: float
    error: str | None = None  # the agent or oracle raised: graded as a failure
    fatal: str | None = None  # the fork itself failed (a divergence in the prefix): stop


_OPEN_TRIES = 4


def _began(tape: str, name: str) -> bool:
    """Whether a run named ``name`` is on the tape (a fork that got as far as starting)."""
    try:
        with Tape(tape) as t:
            return any(r.name == name for r in t.runs())
    except TapeError:
        return False


def _read_back(spec: TrialSpec, run_id: str | None, name: str) -> tuple[str, Any, Any] | None:
    """The trial's run id and both runs' exchanges; None when the fork left no run."""
    with Tape(spec.tape) as t:
        if run_id is None:  # the fork raised; its run is on the tape under the name we gave
            runs = [r.id for r in t.runs() if r.name == name]
            if not runs:
                return None
            run_id = runs[-1]
        return run_id, t.exchanges(run_id), t.exchanges(spec.run)


def run_trial(spec: TrialSpec) -> TrialOutcome:
    """Fork the run at ``spec.step`` with the step perturbed, grade the result, compare bytes."""
    if spec.path and spec.path not in sys.path:
        sys.path.insert(0, spec.path)
    agent = load_agent(spec.agent) if isinstance(spec.agent, str) else spec.agent
    name = f"blame {spec.run} step {spec.step} #{spec.attempt} {uuid.uuid4().hex[:8]}"
    perturb: dict[str, Any] = {"resample": True} if spec.edit is None else {"edit": spec.edit}
    error, result, run_id, cost = None, None, None, None
    for opening in range(_OPEN_TRIES):
        try:
            forked = fork(
                spec.tape,
                spec.run,
                step=spec.step,
                agent=agent,
                upstream=spec.upstream,
                name=name,
                **perturb,
            )
            result, run_id, cost = forked.result, forked.run_id, forked.cost_usd
        except DivergenceError as exc:
            return TrialOutcome(spec.attempt, spec.step, None, False, False, 0, 0.0, fatal=str(exc))
        except TapeError as exc:
            # The tape could not be opened (another worker's checkpoint was moving pages
            # just then) and no run of ours was begun: open it again, a few times.
            error = f"agent raised {type(exc).__name__}: {exc}"
            if opening + 1 < _OPEN_TRIES and not _began(spec.tape, name):
                time.sleep(0.05 * (opening + 1))
                error = None
                continue
        except Exception as exc:  # the perturbed agent crashed: a failed run, not a failed trial
            error = f"agent raised {type(exc).__name__}: {exc}"
        break
    for opening in range(_OPEN_TRIES):
        try:
            found = _read_back(spec, run_id, name)
            break
        except TapeError:  # a checkpoint was moving pages just then: read again
            if opening + 1 == _OPEN_TRIES:
                raise
            time.sleep(0.05 * (opening + 1))
    if found is None:
        return TrialOutcome(spec.attempt, spec.step, None, False, False, 0, 0.0, fatal=error)
    run_id, mine, theirs = found
    first = spec.step if spec.edit is None else spec.step + 1  # the first live exchange
    live = sum(1 for ex in mine if ex.seq >= first)
    identical = (
        len(mine) >= spec.step
        and mine[spec.step - 1].response_body == theirs[spec.step - 1].response_body
    )
    success = False
    if error is None:
        try:
            success = oracle_from(spec.oracle)(result, RunView(spec.tape, run_id))
        except Exception as exc:
            error = f"oracle raised {type(exc).__name__}: {exc}"
    return TrialOutcome(
        attempt=spec.attempt,
        step=spec.step,
        run_id=run_id,
        success=success,
        identical=identical,
        live=live,
        # fork priced its own live tail; a fork that raised is priced from the tape
        cost_usd=cost if cost is not None else live_cost(spec.tape, run_id, after=first - 1),
        error=error,
    )
