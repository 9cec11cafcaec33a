"""Where trials go: pure functions of the counts (docs/blame.md, "Allocation")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from seamtape.engine.stats import confidence_sequence, difference, wilson

from ._report import StepBlame
from ._trial import TrialOutcome

_ROUND_MIN = 4  # attempts dealt per round at least, so a lone leader still runs in parallel


@dataclass(eq=False)
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
    # The tail's reference: the tally of resampling from step + 1 on (None after the last
    # step, where nothing is left to resample and the flip rate is 0 exactly).
    ref: _Tally | None = None
    hidden: bool = False  # a reference measured for another step's contrast, not reported

    @property
    def key(self) -> int:
        """The tally's name in a plan: its step, negated for a hidden reference."""
        return -self.step if self.hidden else self.step

    @property
    def attempts(self) -> int:
        """Trials counted toward the cap: byte-identical resamples are not attempts."""
        return self.trials

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


ESTIMATORS = ("contrast", "flip_rate")
# How clearly a step must trail the leader's contrast to leave the race: a one-sided 95%
# normal bound. It steers spending only (a step out of the race re-enters if the leader
# changes); verdicts rest on the anytime-valid sequences.
STEER_Z = 1.645


@dataclass(frozen=True)
class _Rules:
    threshold: float
    confidence: float
    min_trials: int
    max_trials: int
    estimator: str = "contrast"
    leader_trials: int = 0  # the leader's cap (0: max_trials); it may go on to clear θ

    @property
    def contrast(self) -> bool:
        return self.estimator == "contrast"

    def cap(self, t: _Tally, leading: bool) -> int:
        """A step's cap: ``max_trials``; the leader's, while it looks like a cause (its
        estimate above θ), ``leader_trials``, so that it can be certified."""
        if leading and (t.flips + 1) / (t.trials + 2) > self.threshold and _could_clear(t, self):
            return max(self.max_trials, self.leader_trials)
        return self.max_trials


def _could_clear(t: _Tally, rules: _Rules) -> bool:
    """Whether the leader could be certified within ``leader_trials`` if its flip rate (and
    its tail's) held at what has been seen: extra trials are not spent on a leader whose
    interval would still straddle θ, or its tail's, at the end of them."""
    n = max(rules.max_trials, rules.leader_trials)
    if not t.trials:
        return True
    low = confidence_sequence(round(n * t.flips / t.trials), n, rules.confidence)[0]
    if low <= rules.threshold:
        return False
    ref = t.ref
    if rules.contrast and ref is not None and ref.trials:
        projected = round(n * ref.flips / ref.trials)
        if confidence_sequence(projected, n, rules.confidence)[1] >= low:
            return False
    return True


def _laplace(t: _Tally) -> float:
    return (t.flips + 1) / (t.trials + 2)


def _effect(t: _Tally, rules: _Rules) -> float:
    """The point estimate blame ranks by: the step's flip rate, less its tail's (contrast)."""
    if not rules.contrast:
        return _laplace(t)
    return _laplace(t) - (_laplace(t.ref) if t.ref is not None else 0.0)


def _rank_key(t: _Tally, rules: _Rules) -> tuple[float, float, int]:
    return -_effect(t, rules), -confidence_sequence(t.flips, t.trials, rules.confidence)[0], t.step


def _leader(tallies: Sequence[_Tally], rules: _Rules) -> _Tally | None:
    measured = [t for t in tallies if t.trials and not t.hidden]
    return min(measured, key=lambda t: _rank_key(t, rules)) if measured else None


def _verdict(t: _Tally, rules: _Rules, more: int = 0, flipping: bool = True) -> str:
    """The step's verdict from its counts (after ``more`` trials all flipping, or none).

    With the contrast, "cause" asks two things of the anytime-valid intervals: the step's
    flip rate is above θ, and above its tail's alone (resampling from the next step on).
    "Not the cause": its flip rate is below θ, or below its tail's alone.
    """
    flips = t.flips + (more if flipping else 0)
    trials = t.trials + more
    if trials == 0:
        return "unmeasured"
    low, high = confidence_sequence(flips, trials, rules.confidence)
    if high < rules.threshold:
        return "not the cause"
    tail_low, tail_high = 0.0, 0.0  # after the last step the tail flips nothing
    if rules.contrast and t.ref is not None:
        tail_low, tail_high = confidence_sequence(t.ref.flips, t.ref.trials, rules.confidence)
        if high < tail_low:
            return "not the cause"  # resampling the tail alone flips the outcome more often
    if low > rules.threshold and low > tail_high:
        return "cause"
    return "uncertain"


def _settled(t: _Tally, rules: _Rules) -> bool:
    return _verdict(t, rules) in ("cause", "not the cause")


def _spread(t: _Tally | None, more: int = 0) -> float:
    """The variance of a tally's Laplace estimate (after ``more`` trials); 0 for no tally."""
    if t is None:
        return 0.0
    q = (t.flips + 1) / (t.trials + 2)
    return q * (1 - q) / (t.trials + more + 2)


def _below(t: _Tally, more: int, leader: _Tally, rules: _Rules, lead_more: int = 0) -> bool:
    """Whether ``t`` is clearly below the leader, after ``more`` trials of ``t`` that do not
    flip and ``lead_more`` of the leader's that do: the fixed-sample interval for the
    difference of their estimates (flip rates, or contrasts) lies above zero."""
    if not rules.contrast:
        low, _ = difference(
            leader.flips + lead_more,
            leader.trials + lead_more,
            t.flips,
            t.trials + more,
            rules.confidence,
        )
        return low > 0
    lead = replace(leader, flips=leader.flips + lead_more, trials=leader.trials + lead_more)
    mine = replace(t, trials=t.trials + more)
    gap = _effect(lead, rules) - _effect(mine, rules)
    # A shared tally (the leader is the tail of the step before it) is counted twice: the
    # interval errs wide, which only keeps a step racing longer.
    var = sum(_spread(x) for x in (lead, mine, leader.ref, t.ref))
    return gap - STEER_Z * var**0.5 > 0


def _out_of_race(t: _Tally, leader: _Tally | None, rules: _Rules, varies: bool) -> str:
    """Why a step other than the leader needs no more trials ("" while it does).

    ``varies``: some perturbation anywhere differed from the recording. Until one has, an
    upstream that answered ``min_trials`` resamples of a step byte for byte is taken to be
    deterministic there; once one has, identical answers are chance and the step goes on
    to its cap."""
    if t.blocked:
        return "blocked"
    if t.hidden:  # a reference is measured for its step's sake only
        return ""
    if _settled(t, rules):
        return "settled"
    ahead = leader is not None and t is not leader and t.trials >= rules.min_trials
    if ahead and leader is not None and _below(t, 0, leader, rules):
        return "separated"
    if t.attempts >= rules.cap(t, t is leader) or t.skipped >= rules.cap(t, t is leader):
        return "cap"
    if t.trials == 0 and t.skipped >= rules.min_trials and not varies:
        return "identical"
    return ""


def _plan_round(tallies: Sequence[_Tally], rules: _Rules) -> list[int]:
    """The tallies to attempt next, by key, one entry per attempt; empty when the race is over.

    A hidden reference gets trials when the step it serves does: at least ``min_trials``
    while that step races, and what the leader's verdict needs of it."""
    leader = _leader(tallies, rules)
    varies = any(t.trials for t in tallies)
    visible = [t for t in tallies if not t.hidden]
    racing = [t for t in visible if t is not leader and not _out_of_race(t, leader, rules, varies)]
    alive = [t for t in visible if t is leader or t in racing]
    refs = [t.ref for t in alive if t.ref is not None and t.ref.hidden and not t.ref.blocked]
    topping = [
        t.key
        for t in [*racing, *refs]
        for _ in range(max(0, rules.min_trials - t.attempts))
        if t.skipped < rules.max_trials
    ]
    if topping:
        return topping
    lead, clears = _leader_room(leader, racing, rules) if leader is not None else (0, False)
    ref_need = _ref_room(leader, rules) if leader is not None else 0
    size = max(len(racing) + (lead > 0) + (ref_need > 0), _ROUND_MIN)
    plan: list[int] = []
    if leader is not None and (lead or ref_need):
        plan += [leader.key] * min(size, lead)
        if ref_need and leader.ref is not None:
            plan += [leader.ref.key] * min(size, ref_need)
        if clears:
            return plan  # if the leader holds up, the others' trials would be wasted
    room = {t.key: _room(t, leader, rules) for t in racing}
    extra = {t.key: 0 for t in racing}
    while len(plan) < size:
        best, best_value = None, -1.0
        for t in racing:
            if extra[t.key] >= room[t.key]:
                continue
            q = (t.flips + 1) / (t.trials + 2)
            n = t.trials + extra[t.key]
            value = q * (1 - q) / ((n + 1) * (n + 2)) / max(t.calls, 1)
            if value > best_value:
                best, best_value = t, value
        if best is None:
            break
        extra[best.key] += 1
        plan.append(best.key)
    return plan


def _room(t: _Tally, leader: _Tally | None, rules: _Rules, *, leading: bool = False) -> int:
    """The fewest further trials that could take ``t`` out of the race (all going one way),
    within its cap: more in one round would be spent even when the first ones settle it."""
    cap = rules.cap(t, leading) - t.attempts
    for more in range(1, cap + 1):
        if _verdict(t, rules, more, True) != "uncertain" or (
            _verdict(t, rules, more, False) != "uncertain"
        ):
            return more
        counted = t.trials + more >= rules.min_trials
        if leader is not None and counted and t is not leader and _below(t, more, leader, rules):
            return more
    return max(cap, 0)


def _ref_room(leader: _Tally, rules: _Rules) -> int:
    """Trials the leader's tail reference needs before the leader's verdict can settle: as
    many non-flips as bring its interval below the leader's, within the leader's cap."""
    ref = leader.ref
    if not rules.contrast or ref is None or ref.blocked or _settled(leader, rules):
        return 0
    if _laplace(leader) <= rules.threshold:
        return 0  # the leader itself does not look like a cause: no need to clear its tail
    low = confidence_sequence(leader.flips, leader.trials, rules.confidence)[0]
    target = max(low, rules.threshold)  # the leader's lower end, as it may yet rise to θ
    rate = ref.flips / ref.trials if ref.trials else 0.0
    cap = rules.cap(leader, True) - ref.attempts
    for more in range(0, cap + 1):
        n = ref.trials + more
        flips = ref.flips + round(rate * more)
        if n and confidence_sequence(flips, n, rules.confidence)[1] < target:
            return more
    return max(cap, 0)


def _leader_room(leader: _Tally, racing: Sequence[_Tally], rules: _Rules) -> tuple[int, bool]:
    """Trials the leader still needs, and whether, flipping, they would clear the field.

    It needs trials until its verdict settles and, while other steps race it, until flips
    would put it clearly above all of them (one of its trials sharpens every comparison at
    once). Past ``max_trials`` it goes on (to ``leader_trials``) only while it looks like a
    cause, so that a leader that flips often is certified within the budget."""
    cap = rules.cap(leader, True) - leader.attempts
    need = 0 if _settled(leader, rules) else _room(leader, None, rules, leading=True)
    clears = False
    if racing and leader.flips:
        for more in range(min(cap, rules.max_trials) + 1):
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
    if t.ref is not None and rules.contrast:
        out.tail_trials, out.tail_flips = t.ref.trials, t.ref.flips
        out.effect = _effect(t, rules)
    elif rules.contrast:
        out.effect = _effect(t, rules)
    if t.trials == 0:
        if not out.note and t.skipped:
            out.note = "every perturbation was identical to the recorded response"
        return out
    out.flip_rate = t.flips / t.trials
    out.low, out.high = wilson(t.flips, t.trials, rules.confidence)
    out.cs_low, out.cs_high = confidence_sequence(t.flips, t.trials, rules.confidence)
    out.verdict = _verdict(t, rules)
    return out
