"""Where trials go: pure functions of the counts (docs/blame.md, "Allocation")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seamtape.engine.stats import confidence_sequence, difference, wilson

from ._report import StepBlame
from ._trial import TrialOutcome

_ROUND_MIN = 4  # attempts dealt per round at least, so a lone leader still runs in parallel


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
