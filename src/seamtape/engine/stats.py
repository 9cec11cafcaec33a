"""Intervals for a Bernoulli rate: a Wilson interval, and an anytime-valid confidence sequence.

Blame estimates a flip rate from a handful of trials and stops sampling a step as soon as the
answer looks clear. A Wilson interval is correct for a sample size fixed in advance; checked
after every trial and acted on, it misses the true rate far more often than its level says.
The confidence sequence below stays valid at any stopping time, so the verdicts use it; the
Wilson interval is reported beside it, and steers where trials are spent.

Pure functions of (successes, trials): no I/O, no randomness, stdlib only.
"""

from __future__ import annotations

from math import inf, lgamma, log, log1p, sqrt
from statistics import NormalDist

__all__ = ["confidence_sequence", "difference", "log_mixture", "wilson", "z_score"]

_BISECTIONS = 60  # halvings of the unit interval: endpoints to ~1e-18, beyond float spacing


def z_score(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (1.96 for 0.95)."""
    _check(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a rate seen ``successes`` times in ``trials``.

    Valid for a sample size fixed in advance; (0, 1) when there are no trials.
    """
    _check_counts(successes, trials)
    if trials == 0:
        return 0.0, 1.0
    z = z_score(confidence)
    z2 = z * z
    p = successes / trials
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # The exact endpoints at 0 and n successes are 0 and 1; rounding may miss them by an ulp.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def difference(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, confidence: float = 0.95
) -> tuple[float, float]:
    """The Agresti–Caffo interval for rate a minus rate b.

    One success and one failure are added to each sample before the Wald interval is taken
    (Agresti and Caffo 2000, "Simple and effective confidence intervals for proportions and
    differences of proportions result from adding two successes and two failures", The
    American Statistician 54), which keeps it close to its level at small samples. Valid for
    sample sizes fixed in advance.
    """
    _check_counts(successes_a, trials_a)
    _check_counts(successes_b, trials_b)
    pa = (successes_a + 1) / (trials_a + 2)
    pb = (successes_b + 1) / (trials_b + 2)
    half = z_score(confidence) * sqrt(
        pa * (1 - pa) / (trials_a + 2) + pb * (1 - pb) / (trials_b + 2)
    )
    return max(-1.0, pa - pb - half), min(1.0, pa - pb + half)


def log_mixture(p: float, successes: int, trials: int, prior: float = 0.5) -> float:
    """log M_n(p): the beta-binomial mixture martingale for the null "the rate is ``p``".

    M_n(p) = ∫ q^S (1-q)^F dBeta(q; a, a) / (p^S (1-p)^F), with S successes and F failures.
    Under a true rate ``p`` it is a nonnegative martingale starting at 1, whatever rule
    decides when to stop.
    """
    _check_counts(successes, trials)
    failures = trials - successes
    if (successes and p <= 0.0) or (failures and p >= 1.0):
        return inf
    value = _lbeta(prior + successes, prior + failures) - _lbeta(prior, prior)
    if successes:
        value -= successes * log(p)
    if failures:
        value -= failures * log1p(-p)
    return value


def confidence_sequence(
    successes: int, trials: int, confidence: float = 0.95, *, prior: float = 0.5
) -> tuple[float, float]:
    """An anytime-valid confidence sequence for a Bernoulli rate: {p : M_n(p) < 1/α}.

    M_n(p) is the beta-binomial (conjugate) mixture martingale of ``log_mixture``, the
    method of mixtures of Robbins (1970, "Statistical methods related to the law of the
    iterated logarithm", Ann. Math. Statist. 41) in the form of Howard, Ramdas, McAuliffe and
    Sekhon (2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann.
    Statist. 49, the beta-binomial conjugate mixture). By Ville's inequality,
    P(∃n: M_n(p) ≥ 1/α) ≤ α, so the true rate lies in every interval of the sequence at once
    with probability at least ``confidence``: a rule that peeks after each trial and stops
    when it likes keeps the coverage. The mixing prior Beta(a, a) defaults to Jeffreys'
    (a = 1/2, the Krichevsky–Trofimov mixture), which favours rates near 0 and 1 and so
    settles lopsided evidence quickly: 7 of 7 puts the interval above 1/2 at 95%.

    The interval depends only on the counts, not on the order of the outcomes, so parallel
    trials that finish in any order give the same answer. log M_n is convex in p with its
    minimum (≤ 0) at the observed rate, so the set is an interval found by bisection on each
    side. (0, 1) when there are no trials.
    """
    _check_counts(successes, trials)
    _check(confidence)
    if prior <= 0:
        raise ValueError("prior must be > 0")
    if trials == 0:
        return 0.0, 1.0
    limit = -log(1.0 - confidence)
    observed = successes / trials

    def outside(p: float) -> bool:
        return log_mixture(p, successes, trials, prior) >= limit

    low = 0.0
    if successes:  # p = 0 is excluded once anything succeeded; find where M crosses 1/α
        lo, hi = 0.0, observed
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            if outside(mid):
                lo = mid
            else:
                hi = mid
        low = hi
    high = 1.0
    if successes < trials:
        lo, hi = observed, 1.0
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            if outside(mid):
                hi = mid
            else:
                lo = mid
        high = lo
    return low, high


def _lbeta(a: float, b: float) -> float:
    return lgamma(a) + lgamma(b) - lgamma(a + b)


def _check(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
