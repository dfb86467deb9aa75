"""Pairwise verdicts against a baseline, as sentences that claim what the interval supports.

A strategy "beats" another only when Welch's test gives p < 0.05 (and so the 95% interval
excludes no difference); otherwise the sentence says there is no detectable difference at
that many seeds, with the interval that shows how large a difference could still hide
there. With one seed no verdict is possible and the sentence says so.

Positive metrics whose spread grows with their value (W1, Fréchet, KID, JS: ``ratio``)
are tested on log values and stated as a ratio ("11x lower"); counts and fractions
(modes, high-quality fraction, precision, coverage) as a difference (docs/compare.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lipgan.compare.stats import (
    ALPHA,
    Difference,
    Ratio,
    difference,
    finite,
    holm,
    ratio,
    round_for_json,
)


@dataclass(frozen=True)
class Metric:
    """A number compared between strategies."""

    key: str
    """Key of the per-run row."""
    label: str
    """As written in sentences: 'final W1'."""
    lower_is_better: bool
    ratio: bool = False
    """Tested on log values and stated as a ratio (positive metrics whose spread grows
    with their value); else as a difference of means."""


QUALITY_LABELS = {"quality/w1": "W1", "quality/frechet": "Fréchet", "quality/js4": "JS4"}


def verdict_metrics(quality_metric: str | None, has_modes: bool) -> list[Metric]:
    """What the verdicts compare: final and best quality (ratios); on mixtures modes and
    hq; with the classifier's features (images scored by Fréchet) KID (a ratio),
    precision and coverage, where the runs logged them."""
    short = QUALITY_LABELS.get(quality_metric or "", "quality")
    metrics = [
        Metric("final_quality", f"final {short}", True, ratio=True),
        Metric("best_quality", f"best {short}", True, ratio=True),
    ]
    if has_modes:
        metrics += [
            Metric("modes", "modes covered", False),
            Metric("hq_fraction", "high-quality fraction", False),
        ]
    if quality_metric == "quality/frechet":  # pairwise skips them for runs without them
        metrics += [
            Metric("kid", "final KID", True, ratio=True),
            Metric("precision", "precision", False),
            Metric("coverage", "coverage", False),
        ]
    return metrics


def compare_values(
    metric: Metric, baseline: list[float | None], other: list[float | None]
) -> Ratio | Difference | None:
    """The ratio test for a ratio metric whose values are all positive, else the
    difference (KID's unbiased estimate can fall below 0: then its difference is tested)."""
    if metric.ratio:
        result = ratio(baseline, other)
        if result is not None:
            return result
    return difference(baseline, other)


def number(value: float) -> str:
    """Two significant digits, no exponent for ordinary magnitudes."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2g}" if abs(value) >= 1e-4 else f"{value:.1e}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}" if p < 0.1 else f"p = {p:.2f}"


def _interval(low: float, high: float) -> str:
    joiner = "-" if low >= 0 and high >= 0 else " to "
    return f"{number(low)}{joiner}{number(high)}"


def _seeds(n_a: int, n_b: int) -> str:
    return f"{n_a} seeds" if n_a == n_b else f"{n_a} and {n_b} seeds"


def sentence(
    metric: Metric,
    baseline: str,
    other: str,
    result: Ratio | Difference | None,
    n: int,
    correction: str = "",
) -> str:
    """One verdict in words; ``n`` is the smaller seed count when ``result`` is None.

    ``correction`` (e.g. Holm's verdict on a 'beats') closes the parenthesis of a 'beats'.
    """
    if isinstance(result, Ratio):
        return _ratio_sentence(metric, baseline, other, result, correction)
    if result is None:
        return (
            f"no verdict is possible between {baseline} and {other} on {metric.label}: {n} "
            "seed(s) with a value on one side, and a verdict needs at least 2 each (--seeds)"
        )
    seeds = _seeds(result.n_baseline, result.n_other)
    if result.test == "permutation" and result.diff == 0:
        return (
            f"no detectable difference between {baseline} and {other} on {metric.label} at "
            f"{seeds} (every seed gave {number(result.mean_baseline)} on both sides)"
        )
    if result.test == "permutation":  # no spread at all: the interval is the point itself
        test = f"no spread over seeds, exact permutation {p_text(result.p)}"
    else:
        test = f"95% CI {{ci}}, {p_text(result.p)}"
    if not result.significant:
        low, high = result.ci95
        test = test.replace("{ci}", _interval(low, high))
        return (
            f"no detectable difference between {baseline} and {other} on {metric.label} at "
            f"{seeds} ({other} - {baseline}: {number(result.diff)}, {test})"
        )
    # The winner's advantage, positive, with its interval in the same orientation.
    other_better = (result.diff < 0) == metric.lower_is_better
    winner, loser = (other, baseline) if other_better else (baseline, other)
    sign = -1 if other_better == metric.lower_is_better else 1
    low, high = sorted((sign * result.ci95[0], sign * result.ci95[1]))
    test = test.replace("{ci}", _interval(low, high))
    return (
        f"{winner} beats {loser} on {metric.label} by {number(abs(result.diff))} "
        f"({test}, {seeds}{correction})"
    )


def _factor(value: float) -> str:
    return f"{number(value)}x"


def _ratio_sentence(
    metric: Metric, baseline: str, other: str, result: Ratio, correction: str
) -> str:
    """'gp's final Fréchet is 11x lower than clip's (95% CI 5.1-24x, p < 0.001, 3 seeds)'."""
    seeds = _seeds(result.n_baseline, result.n_other)
    low, high = result.ci95
    if result.test == "permutation-log":
        test = f"no spread over seeds, exact permutation {p_text(result.p)}"
    else:
        test = f"95% CI {number(low)}-{_factor(high)}, {p_text(result.p)}"
    if not result.significant:
        if result.test == "permutation-log" and result.ratio == 1:
            return (
                f"no detectable difference between {baseline} and {other} on {metric.label} "
                f"at {seeds} (every seed gave {number(result.geomean_baseline)} on both sides)"
            )
        return (
            f"no detectable difference between {baseline} and {other} on {metric.label} at "
            f"{seeds} ({other} / {baseline}: {_factor(result.ratio)}, {test})"
        )
    other_better = (result.ratio < 1) == metric.lower_is_better
    winner, loser = (other, baseline) if other_better else (baseline, other)
    factor = result.ratio
    if factor < 1:  # state the factor > 1, its interval in the same orientation
        factor, low, high = 1 / factor, 1 / high, 1 / low
    if result.test != "permutation-log":
        test = f"95% CI {number(low)}-{_factor(high)}, {p_text(result.p)}"
    way = "lower" if metric.lower_is_better else "higher"
    return (
        f"{winner}'s {metric.label} is {_factor(factor)} {way} than {loser}'s "
        f"({test}, {seeds}{correction})"
    )


def pairwise(
    baseline: str,
    others: Sequence[str],
    values: dict[str, dict[str, list[float | None]]],
    metrics: Sequence[Metric],
) -> list[dict[str, Any]]:
    """Every (metric, other) verdict against ``baseline``; ``values[name][key]`` per seed.

    With many (metric, strategy) pairs some p < 0.05 come by chance, so every tested
    verdict also gets Holm's adjusted p over all of them (which keeps the chance of even
    one false 'beats' at 5%), and each 'beats' says whether it survives it.
    """
    tests = []
    for metric in metrics:
        for other in others:
            a, b = values[baseline].get(metric.key, []), values[other].get(metric.key, [])
            if not finite(a) and not finite(b):
                continue  # the metric does not exist for this data
            n = min(len(finite(a)), len(finite(b)))
            tests.append((metric, other, compare_values(metric, a, b), n))
    tested = [result.p for _, _, result, _ in tests if result is not None]
    adjusted = iter(holm(tested))
    verdicts = []
    for metric, other, result, n in tests:
        verdict: dict[str, Any] = {
            "metric": metric.key,
            "label": metric.label,
            "baseline": baseline,
            "other": other,
            "lower_is_better": metric.lower_is_better,
            "outcome": _outcome(metric, result),
            **(result.to_dict() if result is not None else {"n": n}),
        }
        correction = ""
        if result is not None:
            p_holm = next(adjusted)
            verdict["p_holm"] = round_for_json(p_holm)
            verdict["significant_holm"] = result.significant and p_holm < ALPHA
            holds = "holds" if verdict["significant_holm"] else "does not hold"
            correction = (
                f"; {holds} after Holm's correction for {len(tested)} tests, "
                f"adjusted {p_text(p_holm)}"
            )
        verdict["sentence"] = sentence(metric, baseline, other, result, n, correction)
        verdicts.append(verdict)
    return verdicts


def _outcome(metric: Metric, result: Ratio | Difference | None) -> str:
    """From the baseline's side: 'better', 'worse', 'no difference' or 'no verdict'."""
    if result is None:
        return "no verdict"
    if not result.significant:
        return "no difference"
    lower = result.ratio < 1 if isinstance(result, Ratio) else result.diff < 0
    other_better = lower == metric.lower_is_better
    return "worse" if other_better else "better"
