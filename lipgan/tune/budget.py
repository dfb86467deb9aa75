"""Expected best result of k trials, from all N trials of a study (Dodge et al. 2019).

"Show Your Work" (Dodge, Gururangan, Card, Schwartz, Smith; EMNLP 2019) reports, for each
budget k, the expected best score of k hyperparameter draws. Estimated from the N draws a
study made, the unbiased estimate is the expectation over the k-subsets of the N values
drawn without replacement, which the order statistics give exactly: with the values sorted
best first, v_(1) <= ... <= v_(N) (lower is better), the best of k is v_(i) when the subset
holds v_(i) and k - 1 of the N - i worse values:

    E[min of k] = sum_i v_(i) C(N - i, k - 1) / C(N, k)

(and E[max of k] = sum_i v_(i) C(i - 1, k - 1) / C(N, k) for higher-is-better). Ties need no
care: any order of equal values gives the same sum. A failed or pruned trial counts as
infinitely bad (``math.inf``): it was drawn and gave nothing, so the budget it cost counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


def expected_best(values: Sequence[float], k: int, lower_is_better: bool = True) -> float:
    """The expected best of ``k`` values drawn without replacement from ``values``."""
    n = len(values)
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}], got {k}")
    ordered = sorted(values, reverse=not lower_is_better)  # best first
    expectation = Fraction(0)  # exact, then rounded once: the curve cannot wobble
    for i, value in enumerate(ordered, start=1):
        ways = math.comb(n - i, k - 1)  # subsets whose best is the i-th best value
        if not ways:  # a value that can never be the best adds nothing, even when infinite
            continue
        if math.isinf(value):
            return value
        expectation += Fraction(value) * ways
    return float(expectation / math.comb(n, k))


@dataclass(frozen=True)
class BudgetPoint:
    """The expected best of ``trials`` draws and what that many draws cost on average."""

    trials: int
    expected_best: float
    seconds: float | None
    """trials x the mean seconds of a trial (None when no time was recorded)."""


def budget_curve(
    values: Sequence[float], seconds: Sequence[float | None] = ()
) -> list[BudgetPoint]:
    """Expected best against the number of trials, k = 1..N, with the seconds it takes."""
    timed = [s for s in seconds if s is not None]
    mean_seconds = sum(timed) / len(timed) if timed else None
    return [
        BudgetPoint(k, expected_best(values, k), None if mean_seconds is None else k * mean_seconds)
        for k in range(1, len(values) + 1)
    ]


def crossings(first: Sequence[BudgetPoint], second: Sequence[BudgetPoint]) -> list[int]:
    """The budgets k at which the better of two curves changes (lower is better):
    the first k where the sign of first - second differs from the previous nonzero one."""
    changes, previous = [], 0
    for a, b in zip(first, second, strict=False):
        if not (math.isfinite(a.expected_best) and math.isfinite(b.expected_best)):
            continue
        sign = (a.expected_best > b.expected_best) - (a.expected_best < b.expected_best)
        if sign and previous and sign != previous:
            changes.append(a.trials)
        previous = sign or previous
    return changes


def crossings_in_seconds(
    first: Sequence[BudgetPoint], second: Sequence[BudgetPoint]
) -> list[float]:
    """The budgets in seconds at which the better of two curves changes: at a budget of
    T seconds a strategy affords floor(T / its mean seconds per trial) trials, so a cheap
    strategy's curve is compared at more trials than an expensive one's."""
    if not first or not second or first[0].seconds is None or second[0].seconds is None:
        return []
    per_trial = first[0].seconds, second[0].seconds
    budgets = sorted({p.seconds for p in (*first, *second) if p.seconds is not None})
    changes, previous = [], 0
    for budget in budgets:
        ka = min(len(first), math.floor(budget / per_trial[0] + 1e-9))
        kb = min(len(second), math.floor(budget / per_trial[1] + 1e-9))
        if ka < 1 or kb < 1:
            continue
        a, b = first[ka - 1].expected_best, second[kb - 1].expected_best
        if not (math.isfinite(a) and math.isfinite(b)):
            continue
        sign = (a > b) - (a < b)
        if sign and previous and sign != previous:
            changes.append(budget)
        previous = sign or previous
    return changes
