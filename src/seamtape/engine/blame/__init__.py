"""Blame: rank the steps of a run by how often perturbing them flips the run's outcome.

The method (statistics, allocation, budget, parallelism) is written up in ``docs/blame.md``.
"""

from __future__ import annotations

from ._allocation import _plan_round, _Rules, _Tally
from ._blame import blame, parent_run
from ._executors import process_pool, shutdown_pools
from ._oracle import Oracle, RunView, oracle_from, passed
from ._report import VERDICTS, BlameEstimate, BlameProgress, BlameReport, StepBlame, Top
from ._scratch import scratch_path, trials_tape
from ._trial import TrialOutcome, TrialSpec, run_trial
from ._upstream import live_upstream

__all__ = [
    "VERDICTS",
    "BlameEstimate",
    "BlameProgress",
    "BlameReport",
    "Oracle",
    "RunView",
    "StepBlame",
    "Top",
    "TrialOutcome",
    "TrialSpec",
    "blame",
    "live_upstream",
    "oracle_from",
    "parent_run",
    "passed",
    "process_pool",
    "run_trial",
    "scratch_path",
    "shutdown_pools",
    "trials_tape",
]

# The allocation's internals, for tests that plan rounds from counts alone.
_internals = (_plan_round, _Rules, _Tally)
