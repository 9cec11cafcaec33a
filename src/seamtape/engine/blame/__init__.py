"""Blame: rank the steps of a run by how often perturbing them flips the run's outcome.

A *trial* forks the run at step i with that step perturbed (resampled from the upstream, or
changed by a mutation from ``seamtape.mutations``), lets the agent finish live, and grades
its return value with the oracle. The trial *flips* when that grade differs from the
parent's. A perturbation whose response is byte-identical to the recorded one is no
perturbation: it is counted in ``skipped_identical``, not as a trial.

Statistics (``seamtape.stats``)
-------------------------------
Per step: the flip rate, its Wilson interval (``low``, ``high``) and an anytime-valid
confidence sequence (``cs_low``, ``cs_high``; a beta-binomial mixture, see
``stats.confidence_sequence``). Trials are added adaptively and sampling stops when the
answer looks clear, which breaks a Wilson interval's coverage; the confidence sequence keeps
it under any stopping rule, so the verdicts use it. With ``threshold`` θ:

- ``cause``: ``cs_low > θ``: the flip rate is above θ;
- ``not the cause``: ``cs_high < θ``: the flip rate is below θ;
- ``uncertain``: measured, but the sequence still straddles θ;
- ``unmeasured``: no trial ran (the budget ran out first, or no perturbation of the step
  differed from the recording). Never read as "not the cause".

Ranking: by the Laplace estimate (flips + 1) / (trials + 2), then ``cs_low``, then step
number; unmeasured steps last. The *leader* is the first-ranked measured step.

Allocation
----------
Round 1 gives every step ``min_trials`` attempts. A step other than the leader then leaves
the race when (a) its confidence sequence settles it (entirely above or below θ), (b) it is
clearly below the leader: the 95% (``confidence``) Agresti–Caffo interval for the leader's
flip rate minus its own lies above zero (``stats.difference``; a fixed-sample comparison,
which steers spending and never makes a verdict), (c) it reached ``max_trials`` attempts,
or (d) it looks unperturbable: ``min_trials`` byte-identical answers and no trial, while no
perturbation anywhere has differed yet (once one has, identical answers are chance and the
step goes on to its cap).

Each later round deals max(4, steps in the race) attempts. The leader comes first: it gets
as many as could settle its sequence and, if they all flipped, put every racing step clearly
below it (every comparison is against the leader, so one of its trials sharpens them all).
When those trials would clear the field, the round is the leader's alone: the others'
trials would be wasted if it holds up. Otherwise the rest is dealt one attempt at a time to
the racing step with the largest expected information per live call, q(1-q) / ((t+1)(t+2))
/ calls: the drop in the variance of its flip-rate estimate one more trial buys (q its
Laplace estimate, t its trials), divided by the live calls a trial there costs. Later steps
have shorter tails, so they are cheaper and get more. No step is dealt more attempts in one
round than could take it out of the race. Rounds are planned from counts alone and their
attempts issued in an order shuffled by ``seed``; outcomes are applied in that order once
the round is done, so results do not depend on which worker finishes first.

Budget
------
A trial's cost is metered from the usage in its live responses (``ForkResult.cost_usd``).
Its estimate, before it runs, is the parent's cost from that step on, scaled by the largest
ratio of actual to estimated cost among the trials so far (live tails can run longer than
the parent's), and at least the costliest trial seen at that step. A trial is started only
when its estimate fits in what remains of ``budget`` after the spend so far and the
estimates of the trials in flight; so the spend exceeds ``budget`` only if trials in flight
cost more than their estimates (a live call cannot be taken back). Models missing from the
price table cost $0 and are not limited.

Parallelism
-----------
Trials run on any ``concurrent.futures.Executor`` (``executor=``), a Dask ``distributed``
client (``executor=client``), a process pool of ``workers`` processes (the default), or
in-process when ``workers=1``. In worker processes the agent and the oracle must be
importable: pass ``"pkg.mod:fn"`` strings, or module-level functions or picklable objects.
Every fork is written into the same tape; SQLite's WAL and a busy timeout let the writers
take turns.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import random
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import asdict, dataclass
from typing import Any

from seamtape._errors import DivergenceError, SeamtapeError
from seamtape.engine.stats import confidence_sequence, difference, wilson

__all__ = [
    "BlameEstimate",
    "BlameProgress",
    "BlameReport",
    "RunView",
    "StepBlame",
    "TrialOutcome",
    "TrialSpec",
    "blame",
    "oracle_from",
    "parent_run",
    "run_trial",
]

VERDICTS = ("cause", "not the cause", "uncertain", "unmeasured")
_ROUND_MIN = 4  # attempts dealt per round at least, so a lone leader still runs in parallel
_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")  # package.module:function
_UNSENDABLE = (
    "a trial cannot be sent to a worker process ({exc}): define the agent and the oracle at "
    "module level, pass them as 'pkg.mod:fn', or run in-process with workers=1"
)


# --- the oracle -------------------------------------------------------------------------------


@dataclass
class RunView:
    """The run an oracle may look at: its tape and id, read on demand."""

    tape: str
    id: str

    def info(self) -> Any:
        """The run's ``RunInfo`` (status, result, lineage)."""
        from seamtape.tape import Tape

        with Tape(self.tape) as t:
            return t.run(self.id)

    def steps(self) -> list[Any]:
        """Each exchange decoded to a ``wire.Step`` (None where no codec applies)."""
        from seamtape._steps import steps_of
        from seamtape.tape import Tape

        with Tape(self.tape) as t:
            return steps_of(t, self.id)


Oracle = Callable[..., bool] | str


def oracle_from(spec: Oracle) -> Callable[[Any, RunView | None], bool]:
    """A judge ``(result, run) -> success`` from a callable or one of the string shorthands.

    - a callable ``(result) -> bool`` or ``(result, run: RunView) -> bool``;
    - ``"pkg.mod:fn"``: that callable, imported;
    - a JSON-path test: ``PATH``, ``PATH == VALUE``, ``PATH != VALUE`` or ``PATH ~= REGEX``,
      where PATH is ``$`` followed by ``.key``, ``[0]`` or ``["key"]`` steps, VALUE is a JSON
      literal (``true``, ``3``, ``"Lisbon"``; bare text is a string) and ``~=`` searches the
      value (a string as is, anything else as JSON). A bare PATH tests truthiness. A path
      that is missing from the result fails every test. ``"$.answer ~= Lisbon"``,
      ``"$.ok == true"``;
    - anything else is a regex searched in ``json.dumps(result)`` (prefix ``re:`` to force a
      regex that looks like one of the forms above).
    """
    if callable(spec):
        return _judge(spec)
    if not isinstance(spec, str):
        raise SeamtapeError(f"an oracle is a callable or a string, not {type(spec).__name__}")
    if spec.startswith("re:"):
        return _regex_judge(spec[3:])
    if _SPEC.match(spec):
        from seamtape._agents import load_agent

        return _judge(load_agent(spec))
    if spec.lstrip().startswith("$"):
        return _path_judge(spec)
    return _regex_judge(spec)


def _judge(fn: Callable[..., Any]) -> Callable[[Any, RunView | None], bool]:
    if _wants_run(fn):
        return lambda result, run: bool(fn(result, run))
    return lambda result, run: bool(fn(result))


def _wants_run(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def _regex_judge(pattern: str) -> Callable[[Any, RunView | None], bool]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SeamtapeError(f"oracle {pattern!r} is not a valid regex: {exc}") from None
    return lambda result, run: compiled.search(_as_json(result)) is not None


_TEST = re.compile(r"^\s*(\$\S*?)\s*(?:(==|!=|~=)\s*(.*?))?\s*$", re.S)
_SEGMENT = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\"([^\"]*)\"\]|\['([^']*)'\]")
_MISSING: Any = object()


def _path_judge(test: str) -> Callable[[Any, RunView | None], bool]:
    found = _TEST.match(test)
    path = _path(found.group(1)) if found else None
    if found is None or path is None or (found.group(2) and not found.group(3)):
        raise SeamtapeError(
            f"oracle {test!r} is not a JSON-path test; write e.g. '$.answer ~= Lisbon' or "
            "'$.ok == true' (prefix 're:' for a regex)"
        )
    op, raw = found.group(2), found.group(3)
    if op == "~=":
        try:
            pattern = re.compile(raw)
        except re.error as exc:
            raise SeamtapeError(f"oracle {test!r}: {raw!r} is not a valid regex: {exc}") from None
    else:
        try:
            expected = json.loads(raw) if op else None
        except ValueError:
            expected = raw  # bare text is a string: $.city == Lisbon

    def judge(result: Any, run: RunView | None) -> bool:
        value = _follow(result, path)
        if value is _MISSING:
            return False
        if op is None:
            return bool(value)
        if op == "~=":
            return pattern.search(value if isinstance(value, str) else _as_json(value)) is not None
        return (value == expected) == (op == "==")

    return judge


def _path(text: str) -> list[str | int] | None:
    rest, out = text[1:], []
    while rest:
        found = _SEGMENT.match(rest)
        if found is None:
            return None
        key, index, dq, sq = found.groups()
        out.append(int(index) if index is not None else (key or dq or sq or ""))
        rest = rest[found.end() :]
    return out


def _follow(value: Any, path: list[str | int]) -> Any:
    for part in path:
        in_list = isinstance(part, int) and isinstance(value, list) and part < len(value)
        in_dict = isinstance(part, str) and isinstance(value, dict) and part in value
        if not (in_list or in_dict):
            return _MISSING
        value = value[part]
    return value


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# --- one trial, run wherever the executor puts it ---------------------------------------------


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


def run_trial(spec: TrialSpec) -> TrialOutcome:
    """Fork the run at ``spec.step`` with the step perturbed, grade the result, compare bytes."""
    from seamtape._agents import load_agent
    from seamtape.engine.fork import fork, live_cost
    from seamtape.tape import Tape

    if spec.path and spec.path not in sys.path:
        sys.path.insert(0, spec.path)
    agent = load_agent(spec.agent) if isinstance(spec.agent, str) else spec.agent
    name = f"blame {spec.run} step {spec.step} #{spec.attempt} {uuid.uuid4().hex[:8]}"
    perturb: dict[str, Any] = {"resample": True} if spec.edit is None else {"edit": spec.edit}
    error, result, run_id, cost = None, None, None, None
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
    except Exception as exc:  # the perturbed agent crashed: a failed run, not a failed trial
        error = f"agent raised {type(exc).__name__}: {exc}"
    with Tape(spec.tape) as t:
        if run_id is None:  # the fork raised; its run is on the tape under the name we gave
            runs = [r.id for r in t.runs() if r.name == name]
            if not runs:
                return TrialOutcome(
                    spec.attempt, spec.step, None, False, False, 0, 0.0, fatal=error
                )
            run_id = runs[-1]
        mine, theirs = t.exchanges(run_id), t.exchanges(spec.run)
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


# --- the report -------------------------------------------------------------------------------


@dataclass
class StepBlame:
    step: int
    trials: int = 0
    flips: int = 0
    flip_rate: float = 0.0
    low: float = 0.0  # Wilson interval
    high: float = 1.0
    cs_low: float = 0.0  # anytime-valid confidence sequence
    cs_high: float = 1.0
    verdict: str = "unmeasured"
    live_calls: int = 0
    cost_usd: float = 0.0
    skipped_identical: int = 0
    errors: int = 0  # trials whose agent or oracle raised (graded as failures)
    note: str = ""  # why a step was not measured, when it was not


@dataclass
class BlameEstimate:
    """What blame expects to spend, before it starts: every step at ``min_trials`` attempts
    (the least) and at ``max_trials`` (the most, and what uniform sampling would spend),
    from the parent run's tail lengths and per-step costs."""

    steps: int
    min_trials: int
    max_trials: int
    min_calls: int
    max_calls: int
    min_cost: float
    max_cost: float
    budget: float | None
    unpriced: int  # steps of the parent whose model is missing from the price table

    @property
    def calls(self) -> int:
        """The most live calls blame may make, within the budget."""
        if self.budget is None or self.max_cost <= self.budget or self.max_cost == 0:
            return self.max_calls
        return min(self.max_calls, int(self.max_calls * self.budget / self.max_cost))

    @property
    def cost(self) -> float:
        return self.max_cost if self.budget is None else min(self.max_cost, self.budget)


@dataclass
class BlameProgress:
    """Handed to ``progress`` once before the first trial and after every attempt."""

    done: int  # attempts finished (trials and identical perturbations)
    planned: int  # attempts finished or scheduled so far; grows as rounds are planned
    live_calls: int
    cost_usd: float
    estimate: BlameEstimate
    step: int | None = None  # the step of the attempt just finished


@dataclass
class BlameReport:
    run_id: str
    parent_success: bool
    steps: list[StepBlame]  # most blamed first
    live_calls: int
    cost_usd: float
    estimated_calls: int
    estimated_cost: float
    uniform_calls: int  # what max_trials attempts at every step would make, in live calls
    stopped: str  # "settled" | "budget" | "cap"
    perturb: str = "resample"
    threshold: float = 0.5
    confidence: float = 0.95
    min_trials: int = 2
    max_trials: int = 10
    budget: float | None = None
    rounds: int = 0
    estimated_min_calls: int = 0
    estimated_min_cost: float = 0.0

    def top(self, k: int = 1) -> list[int]:
        """The ``k`` most blamed measured steps."""
        return [s.step for s in self.steps if s.trials][:k]

    def step(self, number: int) -> StepBlame:
        return next(s for s in self.steps if s.step == number)

    @property
    def trials(self) -> int:
        return sum(s.trials for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trials": self.trials}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


# --- allocation: pure functions of the counts -------------------------------------------------


@dataclass
class _Tally:
    step: int
    calls: int  # live calls a trial here makes, from the parent's tail
    cost: float  # USD a trial here costs, from the parent's tail
    trials: int = 0
    flips: int = 0
    skipped: int = 0
    errors: int = 0
    live_calls: int = 0
    cost_usd: float = 0.0
    dearest: float = 0.0  # the costliest attempt seen here
    blocked: str = ""  # why this step cannot be perturbed at all
    edit: dict[str, Any] | None = None

    @property
    def attempts(self) -> int:
        return self.trials + self.skipped

    def estimate(self, overrun: float) -> float:
        """USD a trial here is expected to cost; ``overrun``: the worst actual/estimate so far."""
        return max(self.cost * overrun, self.dearest)

    def add(self, outcome: TrialOutcome, parent_success: bool) -> None:
        self.live_calls += outcome.live
        self.cost_usd += outcome.cost_usd
        self.dearest = max(self.dearest, outcome.cost_usd)
        if outcome.identical:
            self.skipped += 1
            return
        self.trials += 1
        self.flips += outcome.success != parent_success
        self.errors += outcome.error is not None


@dataclass(frozen=True)
class _Rules:
    threshold: float
    confidence: float
    min_trials: int
    max_trials: int


def _rank_key(t: _Tally, rules: _Rules) -> tuple[float, float, int]:
    laplace = (t.flips + 1) / (t.trials + 2)
    return -laplace, -confidence_sequence(t.flips, t.trials, rules.confidence)[0], t.step


def _leader(tallies: Sequence[_Tally], rules: _Rules) -> _Tally | None:
    measured = [t for t in tallies if t.trials]
    return min(measured, key=lambda t: _rank_key(t, rules)) if measured else None


def _settled(flips: int, trials: int, rules: _Rules) -> bool:
    """Whether the confidence sequence lies entirely above or below the threshold."""
    if trials == 0:
        return False
    low, high = confidence_sequence(flips, trials, rules.confidence)
    return low > rules.threshold or high < rules.threshold


def _below(t: _Tally, more: int, leader: _Tally, rules: _Rules, lead_more: int = 0) -> bool:
    """Whether ``t`` is clearly below the leader, after ``more`` trials of ``t`` that do not
    flip and ``lead_more`` of the leader's that do: the interval for the difference of their
    flip rates lies above zero."""
    low, _ = difference(
        leader.flips + lead_more,
        leader.trials + lead_more,
        t.flips,
        t.trials + more,
        rules.confidence,
    )
    return low > 0


def _out_of_race(t: _Tally, leader: _Tally | None, rules: _Rules, varies: bool) -> str:
    """Why a step other than the leader needs no more trials ("" while it does).

    ``varies``: some perturbation anywhere differed from the recording. Until one has, an
    upstream that answered ``min_trials`` resamples of a step byte for byte is taken to be
    deterministic there; once one has, identical answers are chance and the step goes on
    to its cap."""
    if t.blocked:
        return "blocked"
    if _settled(t.flips, t.trials, rules):
        return "settled"
    ahead = leader is not None and t is not leader and t.trials >= rules.min_trials
    if ahead and leader is not None and _below(t, 0, leader, rules):
        return "separated"
    if t.attempts >= rules.max_trials:
        return "cap"
    if t.trials == 0 and t.skipped >= rules.min_trials and not varies:
        return "identical"
    return ""


def _plan_round(tallies: Sequence[_Tally], rules: _Rules) -> list[int]:
    """The steps to attempt next, one entry per attempt; empty when the race is over."""
    leader = _leader(tallies, rules)
    varies = any(t.trials for t in tallies)
    racing = [t for t in tallies if t is not leader and not _out_of_race(t, leader, rules, varies)]
    topping = [t.step for t in racing for _ in range(rules.min_trials - t.attempts)]
    if topping:
        return topping
    lead, clears = _leader_room(leader, racing, rules) if leader is not None else (0, False)
    size = max(len(racing) + (lead > 0), _ROUND_MIN)
    plan: list[int] = []
    if leader is not None and lead:
        plan += [leader.step] * min(size, lead)
        if clears:
            return plan  # if the leader holds up, the others' trials would be wasted
    room = {t.step: _room(t, leader, rules) for t in racing}
    extra = {t.step: 0 for t in racing}
    while len(plan) < size:
        best, best_value = None, -1.0
        for t in racing:
            if extra[t.step] >= room[t.step]:
                continue
            q = (t.flips + 1) / (t.trials + 2)
            n = t.trials + extra[t.step]
            value = q * (1 - q) / ((n + 1) * (n + 2)) / max(t.calls, 1)
            if value > best_value:
                best, best_value = t, value
        if best is None:
            break
        extra[best.step] += 1
        plan.append(best.step)
    return plan


def _room(t: _Tally, leader: _Tally | None, rules: _Rules) -> int:
    """The fewest further trials that could take ``t`` out of the race (all going one way),
    within its cap: more in one round would be spent even when the first ones settle it."""
    cap = rules.max_trials - t.attempts
    for more in range(1, cap + 1):
        if _settled(t.flips + more, t.trials + more, rules) or _settled(
            t.flips, t.trials + more, rules
        ):
            return more
        counted = t.trials + more >= rules.min_trials
        if leader is not None and counted and _below(t, more, leader, rules):
            return more
    return cap


def _leader_room(leader: _Tally, racing: Sequence[_Tally], rules: _Rules) -> tuple[int, bool]:
    """Trials the leader still needs, and whether, flipping, they would clear the field.

    It needs trials until its sequence settles and, while other steps race it, until flips
    would lift its Wilson lower bound above all their upper bounds (one of its trials
    sharpens every comparison at once). Within its cap."""
    cap = rules.max_trials - leader.attempts
    need = 0 if _settled(leader.flips, leader.trials, rules) else _room(leader, None, rules)
    clears = False
    if racing and leader.flips:
        for more in range(cap + 1):
            if all(_below(t, 0, leader, rules, lead_more=more) for t in racing):
                need, clears = max(need, more), True
                break
    return max(0, min(need, cap)), clears


def _step_blame(t: _Tally, rules: _Rules, note: str = "") -> StepBlame:
    out = StepBlame(
        step=t.step,
        trials=t.trials,
        flips=t.flips,
        live_calls=t.live_calls,
        cost_usd=t.cost_usd,
        skipped_identical=t.skipped,
        errors=t.errors,
        note=note,
    )
    if t.trials == 0:
        if not out.note and t.skipped:
            out.note = "every perturbation was identical to the recorded response"
        return out
    out.flip_rate = t.flips / t.trials
    out.low, out.high = wilson(t.flips, t.trials, rules.confidence)
    out.cs_low, out.cs_high = confidence_sequence(t.flips, t.trials, rules.confidence)
    if out.cs_low > rules.threshold:
        out.verdict = "cause"
    elif out.cs_high < rules.threshold:
        out.verdict = "not the cause"
    else:
        out.verdict = "uncertain"
    return out


# --- executors --------------------------------------------------------------------------------


class _InProcess(Executor):
    """Runs each trial as it is submitted, in this process: ``workers=1``."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def _executor(executor: Any, workers: int | None, trial_args: Sequence[Any]) -> Iterator[Executor]:
    """The executor trials run on; ``trial_args`` (agent, oracle) name modules to preload."""
    if executor is not None:
        if isinstance(executor, Executor):
            yield executor
        elif hasattr(executor, "get_executor"):  # a distributed.Client
            yield executor.get_executor(pure=False)
        else:
            raise SeamtapeError(
                f"executor must be a concurrent.futures.Executor or a distributed.Client, "
                f"not {type(executor).__name__}"
            )
        return
    if workers is not None and workers <= 1:
        yield _InProcess()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.reduction import ForkingPickler

    for arg in trial_args:
        # What the pool would send, checked up front (serialized only, never loaded): a
        # failure inside the pool's feeder thread can leave its shutdown waiting forever.
        try:
            ForkingPickler.dumps(arg)
        except Exception as exc:
            raise SeamtapeError(_UNSENDABLE.format(exc=exc)) from None
    methods = multiprocessing.get_all_start_methods()
    # A fresh server process to fork from: this process runs threads (the simulator, the
    # tape writer), and forking a threaded process can copy a held lock into the child.
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        # Workers fork from the server with these already imported, instead of each
        # importing the agent's module (and its SDK) on its first trial.
        context.set_forkserver_preload(["seamtape.engine.blame", *_modules(trial_args)])
    pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=context)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _modules(things: Sequence[Any]) -> list[str]:
    """The importable modules that define these callables or ``pkg.mod:fn`` specs."""
    names = []
    for thing in things:
        if isinstance(thing, str):
            name = thing.partition(":")[0] if _SPEC.match(thing) else ""
        else:
            name = getattr(thing, "__module__", None) or getattr(type(thing), "__module__", "")
        if name and name != "__main__":
            names.append(name)
    return names


# --- blame ------------------------------------------------------------------------------------


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
    after each one. See the module docstring for the statistics, the allocation and the
    budget rule.
    """
    if not 1 <= min_trials <= max_trials:
        raise SeamtapeError("need 1 <= min_trials <= max_trials")
    if not 0.0 <= threshold < 1.0:
        raise SeamtapeError("threshold must be in [0, 1)")
    if budget is not None and budget < 0:
        raise SeamtapeError("budget must be >= 0")
    rules = _Rules(threshold, confidence, min_trials, max_trials)
    judge = oracle_from(oracle)  # a bad shorthand fails here, before any spend
    path = os.path.abspath(os.fspath(tape))
    if isinstance(agent, str):
        from seamtape._agents import load_agent

        load_agent(agent)  # a bad spec fails here, before any spend
    parent, tallies, perturb_name, unpriced = _prepare(path, run, perturb, steps)
    parent_success = _grade_parent(judge, parent, path)
    estimate = _estimate(tallies, rules, budget, unpriced)

    spent, calls, done, planned, rounds = 0.0, 0, 0, 0, 0
    overrun = 1.0  # the largest actual/estimated cost of a trial so far
    short = False  # the budget could not pay for every attempt the last round planned
    if progress is not None:
        progress(BlameProgress(0, 0, 0, 0.0, estimate))
    rng = random.Random(seed)
    by_step = {t.step: t for t in tallies}
    attempt = 0
    with _executor(executor, workers, (agent, oracle)) as pool:
        while True:
            short = False
            plan = _plan_round(tallies, rules)
            if not plan:
                break
            rng.shuffle(plan)
            chosen: list[TrialSpec] = []
            reserved = 0.0
            for number in plan:
                cost = by_step[number].estimate(overrun)
                if budget is not None and spent + reserved + cost > budget:
                    short = True
                    continue
                reserved += cost
                attempt += 1
                chosen.append(
                    TrialSpec(
                        attempt=attempt,
                        step=number,
                        tape=path,
                        run=parent.id,
                        agent=agent,
                        oracle=oracle,
                        edit=by_step[number].edit,
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
                tally = by_step[outcome.step]
                if tally.cost > 0:
                    overrun = max(overrun, outcome.cost_usd / tally.cost)
                tally.add(outcome, parent_success)

    leader = _leader(tallies, rules)
    varies = any(t.trials for t in tallies)
    reasons = {t.step: _out_of_race(t, leader, rules, varies) for t in tallies}
    stopped = "budget" if short else "cap" if "cap" in reasons.values() else "settled"
    notes = {t.step: t.blocked for t in tallies}
    for t in tallies:
        if short and t.trials == 0 and not t.blocked and not t.skipped:
            notes[t.step] = "not measured: the budget ran out first"
        elif reasons[t.step] == "separated" and leader is not None:
            notes[t.step] = f"sampling stopped: clearly below step {leader.step}"
    ranked = sorted(
        (_step_blame(t, rules, notes[t.step]) for t in tallies),
        key=lambda s: (s.trials == 0, *_rank_key(by_step[s.step], rules)),
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
    )


def _attempt(outcome: TrialOutcome) -> int:
    return outcome.attempt


def _run_round(pool: Executor, specs: Sequence[TrialSpec]) -> Iterator[TrialOutcome]:
    """Run a round's trials on ``pool``, yielding outcomes as they finish."""
    from concurrent.futures import as_completed

    futures = [pool.submit(run_trial, spec) for spec in specs]
    try:
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as exc:
                if "pickl" not in f"{type(exc).__name__} {exc}".lower():
                    raise
                raise SeamtapeError(_UNSENDABLE.format(exc=exc)) from None
            yield outcome
    finally:
        for future in futures:
            future.cancel()


def _prepare(
    path: str,
    run: str | None,
    perturb: str | Callable[[Any], dict[str, Any] | None],
    steps: Sequence[int] | None,
) -> tuple[Any, list[_Tally], str, int]:
    """The parent run, a tally per blamed step (cost per trial, edit), the perturbation's
    name, and how many of the run's steps have no price."""
    from seamtape import wire
    from seamtape._steps import steps_of
    from seamtape.engine.fork import edited_answer
    from seamtape.engine.mutations import MUTATIONS
    from seamtape.tape import Tape

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
    unpriced = sum(1 for s, c in zip(decoded, costs, strict=True) if s is not None and c is None)
    return parent, tallies, name, unpriced


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
    """The oracle on the parent's stored result; a run that stored none (it raised) failed."""
    if not parent.has_result:
        return False
    return judge(parent.result, RunView(path, parent.id))


def _estimate(
    tallies: Sequence[_Tally], rules: _Rules, budget: float | None, unpriced: int
) -> BlameEstimate:
    open_ = [t for t in tallies if not t.blocked]
    return BlameEstimate(
        steps=len(tallies),
        min_trials=rules.min_trials,
        max_trials=rules.max_trials,
        min_calls=sum(t.calls for t in open_) * rules.min_trials,
        max_calls=sum(t.calls for t in open_) * rules.max_trials,
        min_cost=sum(t.cost for t in open_) * rules.min_trials,
        max_cost=sum(t.cost for t in open_) * rules.max_trials,
        budget=budget,
        unpriced=unpriced,
    )
