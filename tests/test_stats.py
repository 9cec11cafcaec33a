"""Wilson intervals and the anytime-valid confidence sequence blame's verdicts rest on."""

from __future__ import annotations

import math
import random
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamtape.engine.stats import confidence_sequence, difference, log_mixture, wilson, z_score


@st.composite
def counts(draw: st.DrawFn, most: int = 400) -> tuple[int, int]:
    trials = draw(st.integers(0, most))
    return draw(st.integers(0, trials)), trials


levels = st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99])


@given(counts(), levels)
def test_intervals_hold_the_observed_rate_inside_the_unit_interval(
    sn: tuple[int, int], confidence: float
) -> None:
    s, n = sn
    for low, high in (wilson(s, n, confidence), confidence_sequence(s, n, confidence)):
        assert 0.0 <= low <= high <= 1.0
        if n:
            assert low <= s / n <= high
        assert (low == 0.0) == (s == 0)
        assert (high == 1.0) == (s == n)


@given(counts(), levels)
def test_intervals_are_symmetric_in_successes_and_failures(
    sn: tuple[int, int], confidence: float
) -> None:
    s, n = sn
    for interval in (wilson, confidence_sequence):
        low, high = interval(s, n, confidence)
        mirror_low, mirror_high = interval(n - s, n, confidence)
        assert low == pytest.approx(1 - mirror_high, abs=1e-12)
        assert high == pytest.approx(1 - mirror_low, abs=1e-12)


@given(counts())
def test_more_confidence_gives_wider_intervals(sn: tuple[int, int]) -> None:
    s, n = sn
    for interval in (wilson, confidence_sequence):
        narrow, wide = interval(s, n, 0.8), interval(s, n, 0.99)
        assert wide[0] <= narrow[0] + 1e-12 and narrow[1] <= wide[1] + 1e-12


@given(counts(), levels)
def test_the_sequence_is_wider_than_wilson_at_the_same_level(
    sn: tuple[int, int], confidence: float
) -> None:
    # Coverage at every sample size at once costs width at each one.
    s, n = sn
    cs, w = confidence_sequence(s, n, confidence), wilson(s, n, confidence)
    assert cs[0] <= w[0] + 1e-9 and w[1] <= cs[1] + 1e-9


@given(counts(), levels)
def test_the_sequence_ends_where_the_mixture_martingale_crosses_one_over_alpha(
    sn: tuple[int, int], confidence: float
) -> None:
    s, n = sn
    low, high = confidence_sequence(s, n, confidence)
    limit = -math.log(1 - confidence)
    for end, inside in ((low, s > 0), (high, s < n)):
        if inside:
            assert log_mixture(end, s, n) == pytest.approx(limit, abs=1e-6)
    if n:
        assert log_mixture(s / n, s, n) <= 0.0  # the observed rate is never excluded


@given(counts(60), counts(60), levels)
def test_the_difference_interval_holds_the_adjusted_difference(
    a: tuple[int, int], b: tuple[int, int], confidence: float
) -> None:
    low, high = difference(*a, *b, confidence)
    shifted = (a[0] + 1) / (a[1] + 2) - (b[0] + 1) / (b[1] + 2)
    assert -1.0 <= low <= shifted <= high <= 1.0
    mirror = difference(*b, *a, confidence)
    assert low == pytest.approx(-mirror[1]) and high == pytest.approx(-mirror[0])
    assert difference(*a, *b, 0.99)[0] <= low + 1e-12


def test_no_trials_tell_nothing_and_bad_counts_are_refused() -> None:
    assert wilson(0, 0) == confidence_sequence(0, 0) == (0.0, 1.0)
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)
    for bad in ((3, 2), (-1, 2), (0, -1)):
        with pytest.raises(ValueError):
            wilson(*bad)
        with pytest.raises(ValueError):
            confidence_sequence(*bad)
    with pytest.raises(ValueError):
        confidence_sequence(1, 2, 1.0)


def test_lopsided_evidence_settles_quickly() -> None:
    # What blame's verdicts rely on at the default level: 7 of 7 clears one half.
    assert confidence_sequence(7, 7)[0] > 0.5 > confidence_sequence(6, 6)[0]
    assert confidence_sequence(0, 7)[1] < 0.5 < confidence_sequence(0, 6)[1]


def test_peeking_breaks_wilson_but_not_the_confidence_sequence() -> None:
    """Optional stopping, measured: check the interval after every trial and stop the first
    time it misses the true rate. The confidence sequence's miss rate stays within alpha (up
    to sampling noise); the naive, repeatedly-peeked Wilson interval's does not."""
    alpha, streams, horizon = 0.05, 600, 100
    cs = cache(lambda s, n: confidence_sequence(s, n, 1 - alpha))
    naive = cache(lambda s, n: wilson(s, n, 1 - alpha))
    rng = random.Random(20260)
    missed = {"cs": 0, "wilson": 0}
    total = 0
    for p in (0.1, 0.3, 0.5, 0.8):
        for _ in range(streams):
            total += 1
            successes, hit = 0, {"cs": False, "wilson": False}
            for n in range(1, horizon + 1):
                successes += rng.random() < p
                for name, interval in (("cs", cs), ("wilson", naive)):
                    if not hit[name]:
                        low, high = interval(successes, n)
                        hit[name] = not low <= p <= high
                if all(hit.values()):
                    break
            for name in missed:
                missed[name] += hit[name]
    noise = 3 * math.sqrt(alpha * (1 - alpha) / total)
    cs_rate, wilson_rate = missed["cs"] / total, missed["wilson"] / total
    assert cs_rate <= alpha + noise
    assert wilson_rate > alpha + noise
    assert wilson_rate > 3 * cs_rate
