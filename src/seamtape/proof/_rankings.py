"""Rankings from a fixture's counts: blame's own, and broken ones that validate's controls
must catch. Each takes ``counts`` — ``[step, trials, flips]`` per step, in step order, the
tail of step i being step i + 1's counts — and returns the measured steps, best first."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from seamtape.engine.stats import confidence_sequence

__all__ = ["BROKEN", "Ranking", "blame_ranking", "shuffled"]

Counts = Sequence[Sequence[int]]
Ranking = Callable[[Counts, random.Random], list[int]]


def _laplace(trials: int, flips: int) -> float:
    return (flips + 1) / (trials + 2)


def blame_ranking(counts: Counts, rng: random.Random | None = None) -> list[int]:
    """Blame's ranking (the paired contrast): a step's flip rate less its tail's, then the
    lower end of its confidence sequence, then the step number."""
    by_step = {step: (n, f) for step, n, f in counts}
    last = max(by_step) if by_step else 0

    def key(step: int) -> tuple[float, float, int]:
        n, f = by_step[step]
        tail = _laplace(*by_step.get(step + 1, (0, 0))) if step < last else 0.0
        return -(_laplace(n, f) - tail), -confidence_sequence(f, n)[0], step

    return sorted((s for s, n, _ in counts if n), key=key)


def _reversed(counts: Counts, rng: random.Random) -> list[int]:
    return blame_ranking(counts)[::-1]


def _last_step_first(counts: Counts, rng: random.Random) -> list[int]:
    return sorted((s for s, n, _ in counts if n), reverse=True)


def _trials_spent(counts: Counts, rng: random.Random) -> list[int]:
    return [s for s, n, _ in sorted(counts, key=lambda c: (-c[1], c[0])) if n]


def _at_random(counts: Counts, rng: random.Random) -> list[int]:
    steps = [s for s, n, _ in counts if n]
    rng.shuffle(steps)
    return steps


# The broken engines: what each one ignores, and so which control has to catch it.
BROKEN: dict[str, Ranking] = {
    "reversed": _reversed,
    "last step first (flip-blind)": _last_step_first,
    "trials spent (flip-blind)": _trials_spent,
    "at random": _at_random,
}


def shuffled(counts: Counts, rng: random.Random) -> list[list[int]]:
    """The counts with every trial's outcome shuffled across the fixture's trials, each step
    keeping its number of trials: what a blind engine would see."""
    outcomes = [1] * sum(f for _, _, f in counts) + [0] * sum(n - f for _, n, f in counts)
    rng.shuffle(outcomes)
    out, at = [], 0
    for step, n, _ in counts:
        out.append([step, n, sum(outcomes[at : at + n])])
        at += n
    return out
