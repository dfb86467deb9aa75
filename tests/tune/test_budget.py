"""The expected best of k trials (Dodge et al. 2019) against brute force over k-subsets."""

from __future__ import annotations

import itertools
import math

import pytest

from lipgan.tune.budget import (
    BudgetPoint,
    budget_curve,
    crossings,
    crossings_in_seconds,
    expected_best,
)

VALUES = [0.31, 0.12, 0.5, 0.12, 0.9, 0.27, 2.0]  # with a tie


def brute_force(values, k, best=min):
    subsets = list(itertools.combinations(values, k))
    return sum(best(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("k", range(1, len(VALUES) + 1))
def test_expected_best_equals_the_mean_over_all_k_subsets(k):
    assert expected_best(VALUES, k) == pytest.approx(brute_force(VALUES, k), rel=1e-12)
    assert expected_best(VALUES, k, lower_is_better=False) == pytest.approx(
        brute_force(VALUES, k, max), rel=1e-12
    )


def test_hand_computed_values():
    # [1, 2, 3]: best of 2 is 1 in 2 of 3 pairs, 2 in one: (1 + 1 + 2) / 3
    assert expected_best([3.0, 1.0, 2.0], 2) == pytest.approx(4 / 3, rel=1e-15)
    assert expected_best(VALUES, 1) == pytest.approx(sum(VALUES) / len(VALUES), rel=1e-15)
    assert expected_best(VALUES, len(VALUES)) == 0.12


def test_a_failed_trial_counts_as_the_worst():
    values = [0.2, math.inf, 0.4]
    assert expected_best(values, 1) == math.inf  # one draw may give nothing
    assert expected_best(values, 2) == pytest.approx(brute_force([0.2, 1e300, 0.4], 2))
    assert expected_best([math.inf, math.inf, 0.1], 3) == 0.1
    with pytest.raises(ValueError):
        expected_best(values, 4)


def test_budget_curve_costs_k_mean_trials_and_never_gets_worse():
    curve = budget_curve(VALUES, [10.0, 20.0, None, 30.0, 20.0, 20.0, 20.0])
    assert [p.trials for p in curve] == list(range(1, 8))
    assert [p.seconds for p in curve] == pytest.approx([20.0 * k for k in range(1, 8)])
    assert all(a.expected_best >= b.expected_best for a, b in itertools.pairwise(curve))


def test_crossings_find_where_the_ranking_changes():
    a = [BudgetPoint(k, v, None) for k, v in enumerate([1.0, 0.8, 0.5, 0.4], start=1)]
    b = [BudgetPoint(k, v, None) for k, v in enumerate([0.9, 0.8, 0.6, 0.45], start=1)]
    assert crossings(a, b) == [3]  # b ahead at 1, tie at 2, a ahead from 3
    assert crossings(a, a) == []


def test_crossings_in_seconds_compare_what_each_strategy_affords_in_that_time():
    # a: 10 s a trial, worse per trial; b: 30 s a trial. At 30-50 s a affords 3-5 trials
    # against b's one and is ahead; at 60 s b's two trials (0.3) beat a's six (0.32).
    a = [BudgetPoint(k, v, 10.0 * k) for k, v in enumerate([0.9, 0.6, 0.4, 0.35, 0.33, 0.32], 1)]
    b = [BudgetPoint(k, v, 30.0 * k) for k, v in enumerate([0.5, 0.3], 1)]
    assert crossings(a, b) == []  # per trial b is ahead at every k
    assert crossings_in_seconds(a, b) == [60.0]
    assert crossings_in_seconds(b, a) == [60.0]
    assert crossings_in_seconds(a, a) == []
