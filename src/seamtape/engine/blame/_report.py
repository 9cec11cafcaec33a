"""What blame hands back: per-step counts, intervals and verdicts, and the spend."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["VERDICTS", "BlameEstimate", "BlameProgress", "BlameReport", "StepBlame", "Top"]

VERDICTS = ("cause", "not the cause", "uncertain", "unmeasured")


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
    # The contrast: the trials and flips of resampling from the next step on (the tail
    # alone), and the step's flip rate less its tail's (both Laplace estimates).
    tail_trials: int = 0
    tail_flips: int = 0
    effect: float = 0.0


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


class Top(list[int]):
    """The most blamed steps, best first; ``note`` says when fewer than asked qualified."""

    def __init__(self, steps: list[int], *, wanted: int) -> None:
        super().__init__(steps)
        self.wanted = wanted

    @property
    def note(self) -> str:
        if len(self) >= self.wanted:
            return ""
        return (
            f"only {len(self)} of the {self.wanted} steps asked for flipped the outcome at "
            "least once; the rest are not blamed"
        )


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

    estimator: str = "contrast"
    question: str = ""  # what a "cause" verdict asserts
    tail_calls: int = 0  # live calls spent on hidden tail references (mutations' contrast)
    trials_tape: str = ""  # where the trial runs were written
    upstream: str | None = None  # where the live calls went (None: each run's recorded one)

    def top(self, k: int = 1) -> Top:
        """The ``k`` most blamed steps among those measured with at least one flip; fewer when
        fewer qualify (``Top.note`` then says so): a step that never flipped is not blamed."""
        flipped = [s.step for s in self.steps if s.trials and s.flips]
        return Top(flipped[:k], wanted=k)

    def step(self, number: int) -> StepBlame:
        return next(s for s in self.steps if s.step == number)

    @property
    def trials(self) -> int:
        return sum(s.trials for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "trials": self.trials}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)
