"""``blame``: the rounds of trials, from the parent run to the report."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, as_completed
from typing import Any

from seamtape import wire
from seamtape._agents import load_agent
from seamtape._errors import SeamtapeError
from seamtape._steps import steps_of
from seamtape.engine.fork import edited_answer
from seamtape.engine.mutations import MUTATIONS
from seamtape.tape import Tape

from ._allocation import (
    ESTIMATORS,
    _leader,
    _out_of_race,
    _plan_round,
    _rank_key,
    _Rules,
    _step_blame,
    _Tally,
)
from ._executors import _executor
from ._oracle import Oracle, RunView, oracle_from
from ._report import BlameEstimate, BlameProgress, BlameReport
from ._scratch import trials_tape
from ._trial import TrialOutcome, TrialSpec, run_trial

__all__ = ["blame", "parent_run"]


def blame(
    tape: str | os.PathLike[str],
    run: str | None = None,
    *,
    agent: Callable[..., Any] | str,
    oracle: Oracle,
    upstream: str | None = None,
    perturb: str | Callable[[Any], dict[str, Any] | None] = "resample",
    max_trials: int = 10,
    min_trials: int = 2,
    budget: float | None = None,
    workers: int | None = None,
    executor: Any = None,
    threshold: float = 0.5,
    confidence: float = 0.95,
    seed: int = 0,
    steps: Sequence[int] | None = None,
    estimator: str = "contrast",
    leader_trials: int | None = None,
    into: str | os.PathLike[str] | None = None,
    progress: Callable[[BlameProgress], None] | None = None,
) -> BlameReport:
    """Rank the steps of ``run`` (the latest unforked run by default) by how often
    perturbing them flips the outcome ``oracle`` gives the agent's result.

    ``agent`` re-runs the run in each fork (a callable or ``"pkg.mod:fn"``); ``oracle``
    grades a result (see ``oracle_from``); live requests go to ``upstream`` (default: the
    one the run was recorded against). ``perturb`` is ``"resample"`` or a mutation name from
    ``seamtape.mutations`` (or a callable ``Step -> edit | None``). Each step gets from
    ``min_trials`` to ``max_trials`` attempts, adaptively; ``budget`` caps the spend in USD;
    ``steps`` limits blame to some steps (1-based). Trials run on ``executor`` (a
    ``concurrent.futures.Executor`` or a ``distributed.Client``), else on a pool of
    ``workers`` processes (default: one per CPU; ``1``: in this process). ``seed`` orders
    the trials; ``progress`` is called with a ``BlameProgress`` before the first trial and
    after each one. ``estimator``: ``"contrast"`` (a step's flip rate less its tail's) or
    ``"flip_rate"``; ``leader_trials``: how far past ``max_trials`` the leader may go to be
    certified (default 4 × ``max_trials``). Trial runs are written into ``into``, by default
    a scratch tape beside ``tape`` (``scratch_path``), never into ``tape`` itself. The
    method: docs/blame.md.
    """
    if not 1 <= min_trials <= max_trials:
        raise SeamtapeError("need 1 <= min_trials <= max_trials")
    if not 0.0 <= threshold < 1.0:
        raise SeamtapeError("threshold must be in [0, 1)")
    if budget is not None and budget < 0:
        raise SeamtapeError("budget must be >= 0")
    if estimator not in ESTIMATORS:
        raise SeamtapeError(f"estimator must be one of {', '.join(ESTIMATORS)}")
    rules = _Rules(
        threshold, confidence, min_trials, max_trials, estimator, leader_trials or 4 * max_trials
    )
    judge = oracle_from(oracle)  # a bad shorthand fails here, before any spend
    path = os.path.abspath(os.fspath(tape))
    if isinstance(agent, str):
        load_agent(agent)  # a bad spec fails here, before any spend
    parent, tallies, perturb_name, unpriced = _prepare(path, run, perturb, steps, rules)
    parent_success = _grade_parent(judge, parent, path)
    path = str(trials_tape(path, parent.id, into))  # the forks are written there, not here
    estimate = _estimate(tallies, rules, budget, unpriced)

    spent, calls, done, planned, rounds = 0.0, 0, 0, 0, 0
    overrun = 1.0  # the largest actual/estimated cost of a trial so far
    short = False  # the budget could not pay for every attempt the last round planned
    if progress is not None:
        progress(BlameProgress(0, 0, 0, 0.0, estimate))
    rng = random.Random(seed)
    by_key = {t.key: t for t in tallies}
    keys: dict[int, int] = {}  # attempt -> the tally it was planned for
    # Never more live calls than uniform sampling of every tally would make.
    call_budget = sum(t.calls for t in tallies if not t.blocked) * max_trials
    attempt = 0
    # The trials tape is held open while the workers write to it, so that no worker's close
    # is the last one (the last close checkpoints and removes the WAL under the others).
    with Tape(path), _executor(executor, workers, (agent, oracle)) as pool:
        while True:
            short = False
            plan = _plan_round(tallies, rules)
            if not plan:
                break
            rng.shuffle(plan)
            chosen: list[TrialSpec] = []
            reserved, reserved_calls = 0.0, 0
            for key in plan:
                tally = by_key[key]
                cost = tally.estimate(overrun)
                if budget is not None and spent + reserved + cost > budget:
                    short = True
                    continue
                extra = tally.attempts >= max_trials  # the leader, past the others' cap
                if extra and calls + reserved_calls + tally.calls > call_budget:
                    continue  # the leader's extra trials stop where uniform sampling would
                reserved += cost
                reserved_calls += tally.calls
                attempt += 1
                keys[attempt] = key
                chosen.append(
                    TrialSpec(
                        attempt=attempt,
                        step=tally.step,
                        tape=path,
                        run=parent.id,
                        agent=agent,
                        oracle=oracle,
                        edit=tally.edit,
                        upstream=upstream,
                        path=os.getcwd(),
                    )
                )
            if not chosen:
                break  # the race is not over, but the budget cannot pay for any of it
            rounds += 1
            planned += len(chosen)
            outcomes = []
            for outcome in _run_round(pool, chosen):
                outcomes.append(outcome)
                done += 1
                calls += outcome.live
                spent += outcome.cost_usd
                if progress is not None:
                    progress(BlameProgress(done, planned, calls, spent, estimate, outcome.step))
            fatal = next((o for o in sorted(outcomes, key=_attempt) if o.fatal), None)
            if fatal is not None:
                raise SeamtapeError(
                    f"blame stopped: the fork at step {fatal.step} failed: {fatal.fatal}\n"
                    "a fork replays the run's prefix, so the agent must make the same requests "
                    "it made when the run was recorded"
                )
            for outcome in sorted(outcomes, key=_attempt):
                tally = by_key[keys[outcome.attempt]]
                if tally.cost > 0:
                    overrun = max(overrun, outcome.cost_usd / tally.cost)
                tally.add(outcome, parent_success)

    leader = _leader(tallies, rules)
    varies = any(t.trials for t in tallies)
    shown = [t for t in tallies if not t.hidden]
    reasons = {t.step: _out_of_race(t, leader, rules, varies) for t in shown}
    stopped = "budget" if short else "cap" if "cap" in reasons.values() else "settled"
    notes = {t.step: t.blocked for t in shown}
    for t in shown:
        if short and t.trials == 0 and not t.blocked and not t.skipped:
            notes[t.step] = "not measured: the budget ran out first"
        elif reasons[t.step] == "separated" and leader is not None:
            notes[t.step] = f"sampling stopped: clearly below step {leader.step}"
    ranked = sorted(
        (_step_blame(t, rules, notes[t.step]) for t in shown),
        key=lambda s: (s.trials == 0, *_rank_key(by_key[s.step], rules)),
    )
    return BlameReport(
        run_id=parent.id,
        parent_success=parent_success,
        steps=ranked,
        live_calls=calls,
        cost_usd=spent,
        estimated_calls=estimate.calls,
        estimated_cost=estimate.cost,
        uniform_calls=estimate.max_calls,
        stopped=stopped,
        perturb=perturb_name,
        threshold=threshold,
        confidence=confidence,
        min_trials=min_trials,
        max_trials=max_trials,
        budget=budget,
        rounds=rounds,
        estimated_min_calls=estimate.min_calls,
        estimated_min_cost=estimate.min_cost,
        estimator=estimator,
        question=_question(rules),
        tail_calls=sum(t.live_calls for t in tallies if t.hidden),
        trials_tape=path,
        upstream=upstream or parent.upstream,
    )


def _question(rules: _Rules) -> str:
    """What a "cause" verdict asserts, in words, for the report."""
    level = f"{rules.confidence:.0%} anytime-valid intervals"
    if rules.contrast:
        return (
            f"is the step's flip rate above {rules.threshold:g}, and above its tail's alone "
            f"(resampling from the next step on)? ({level}, one for the step, one for its tail)"
        )
    return f"is the step's flip rate above {rules.threshold:g}? ({level})"


def _attempt(outcome: TrialOutcome) -> int:
    return outcome.attempt


def _run_round(pool: Executor, specs: Sequence[TrialSpec]) -> Iterator[TrialOutcome]:
    """Run a round's trials on ``pool``, yielding outcomes as they finish."""
    futures = [pool.submit(run_trial, spec) for spec in specs]
    try:
        for future in as_completed(futures):
            # What a process pool could not send was refused before the first trial
            # (check_sendable); another executor's own error is its own to report.
            yield future.result()
    finally:
        for future in futures:
            future.cancel()


def _prepare(
    path: str,
    run: str | None,
    perturb: str | Callable[[Any], dict[str, Any] | None],
    steps: Sequence[int] | None,
    rules: _Rules,
) -> tuple[Any, list[_Tally], str, int]:
    """The parent run, a tally per blamed step (cost per trial, edit), the perturbation's
    name, and how many of the run's steps have no price."""
    if callable(perturb):
        mutate, name = perturb, getattr(perturb, "__name__", "custom")
    elif perturb == "resample":
        mutate, name = None, "resample"
    elif perturb in MUTATIONS:
        mutate, name = MUTATIONS[perturb], perturb
    else:
        raise SeamtapeError(
            f"unknown perturbation {perturb!r}; use 'resample' or one of: {', '.join(MUTATIONS)}"
        )
    with Tape(path) as t:
        parent = parent_run(t, run)
        exchanges = t.exchanges(parent.id)
        decoded = steps_of(t, parent.id)
        n = len(exchanges)
        if n == 0:
            raise SeamtapeError(f"run {parent.id} has no steps to blame")
        wanted = list(range(1, n + 1)) if steps is None else sorted(set(steps))
        bad = [s for s in wanted if not 1 <= s <= n]
        if bad:
            raise SeamtapeError(f"run {parent.id} has steps 1 to {n}; no step {bad[0]}")
        costs = [wire.cost(s) if s is not None else None for s in decoded]
        prices = [c or 0.0 for c in costs]
        tallies = []
        for number in wanted:
            first = number if mutate is None else number + 1  # the first live exchange
            tally = _Tally(step=number, calls=n - first + 1, cost=sum(prices[first - 1 :]))
            if mutate is not None:
                _plan_edit(tally, mutate, decoded[number - 1], exchanges[number - 1], edited_answer)
            tallies.append(tally)
        if rules.contrast:
            _link_tails(tallies, n, prices, resample=mutate is None)
    unpriced = sum(1 for s, c in zip(decoded, costs, strict=True) if s is not None and c is None)
    return parent, tallies, name, unpriced


def _link_tails(tallies: list[_Tally], n: int, prices: list[float], *, resample: bool) -> None:
    """Give each step its tail's reference: resampling from the next step on. When blame
    resamples, that is the next step's own tally (added hidden if not blamed); a mutation's
    references are hidden resample tallies."""
    own = {t.step: t for t in tallies} if resample else {}
    for t in list(tallies):
        nxt = t.step + 1
        if nxt > n:
            continue  # nothing after the last step: its tail flips nothing
        ref = own.get(nxt)
        if ref is None:
            ref = _Tally(step=nxt, calls=n - nxt + 1, cost=sum(prices[nxt - 1 :]), hidden=True)
            own[nxt] = ref
            tallies.append(ref)
        t.ref = ref


def _plan_edit(
    tally: _Tally,
    mutate: Callable[[Any], dict[str, Any] | None],
    step: Any,
    exchange: Any,
    edited_answer: Callable[..., Any],
) -> None:
    """The step's edit, or why it has none; an edit that re-encodes to the recorded bytes
    is skipped here, before any live call."""
    if step is None:
        tally.blocked = "not a model call a wire codec can read"
        return
    edit = mutate(step)
    if edit is None:
        tally.blocked = "the mutation does not apply to this step"
        return
    original = exchange.response_bytes()
    _, _, chunks = edited_answer(exchange, (exchange.request_bytes(), original), edit)
    if b"".join(chunks) == original:
        tally.skipped = 1
        tally.blocked = "the mutation leaves the response byte-identical"
        return
    tally.edit = edit


def parent_run(tape: Any, run: str | None) -> Any:
    """The run to blame: ``run`` (an id, prefix or name), else the latest run that is not
    itself a fork, which is what "the run" means to a user."""
    if run:
        return tape.run(run)
    roots = [r for r in tape.runs() if r.parent is None]
    return roots[-1] if roots else tape.run()


def _grade_parent(judge: Callable[[Any, RunView | None], bool], parent: Any, path: str) -> bool:
    """The oracle on the parent's stored result; a run that raised failed. A run that
    finished without storing a result can be graded only by an oracle that reads the run."""
    if not parent.has_result:
        if parent.status == "failed":
            return False
        if not getattr(judge, "reads_run", False):
            raise SeamtapeError(
                f"run {parent.id} recorded no result, so the oracle has nothing to grade: set "
                "session.result in the agent (or return it from the agent), or pass an oracle "
                "that reads the run, (result, run) -> bool"
            )
    return judge(parent.result, RunView(path, parent.id))


def _estimate(
    tallies: Sequence[_Tally], rules: _Rules, budget: float | None, unpriced: int
) -> BlameEstimate:
    open_ = [t for t in tallies if not t.blocked]
    shown = [t for t in open_ if not t.hidden]  # uniform sampling blames these alone
    return BlameEstimate(
        steps=len([t for t in tallies if not t.hidden]),
        min_trials=rules.min_trials,
        max_trials=rules.max_trials,
        min_calls=sum(t.calls for t in open_) * rules.min_trials,
        max_calls=sum(t.calls for t in shown) * rules.max_trials,
        min_cost=sum(t.cost for t in open_) * rules.min_trials,
        max_cost=sum(t.cost for t in shown) * rules.max_trials,
        budget=budget,
        unpriced=unpriced,
    )
