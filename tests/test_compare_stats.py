"""The compare's statistics against scipy on hand-made numbers, and the verdict sentences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lipgan.compare.stats import difference, ratio, spread
from lipgan.compare.verdicts import Metric, compare_values, pairwise, sentence

W1 = Metric("final_quality", "final W1", lower_is_better=True)
MODES = Metric("modes", "modes covered", lower_is_better=False)
GP = [0.15, 0.16, 0.14, 0.155, 0.145]
CLIP = [0.31, 0.30, 0.33, 0.29, 0.32]


def test_spread_is_the_mean_the_sample_std_and_the_t_interval():
    values = [1.0, 2.0, 4.0, 7.0]
    result = spread(values)
    assert result.n == 4
    assert result.mean == pytest.approx(3.5, abs=1e-12)
    assert result.std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    low, high = scipy_stats.t.interval(
        0.95, 3, loc=3.5, scale=np.std(values, ddof=1) / math.sqrt(4)
    )
    assert result.ci95 == pytest.approx((low, high), abs=1e-12)
    # by hand: t(0.975, 3) = 3.182446, std = 2.645751, half width = 4.2099
    assert result.ci95[1] - 3.5 == pytest.approx(3.182446 * 2.645751 / 2, abs=1e-4)


def test_spread_drops_missing_values_and_needs_two_for_an_interval():
    result = spread([0.2, None, float("nan")])
    assert (result.n, result.mean, result.std, result.ci95) == (1, 0.2, None, None)
    assert spread([]).mean is None


def test_difference_matches_welchs_t_test_and_its_interval():
    result = difference(GP, CLIP)
    welch = scipy_stats.ttest_ind(CLIP, GP, equal_var=False)
    assert result.test == "welch"
    assert result.diff == pytest.approx(np.mean(CLIP) - np.mean(GP), abs=1e-12)
    assert result.p == pytest.approx(welch.pvalue, rel=1e-9)
    interval = welch.confidence_interval(0.95)
    assert result.ci95 == pytest.approx((interval.low, interval.high), rel=1e-9)
    assert result.significant


def test_difference_with_unequal_variances_uses_welch_satterthwaite():
    a, b = [1.0, 1.1, 0.9], [2.0, 3.5, 0.5, 2.4, 1.6]
    result = difference(a, b)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 4)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = np.mean(b) - np.mean(a)
    assert result.ci95 == pytest.approx((diff - half, diff + half), rel=1e-12)
    assert not result.significant  # p ~ 0.1: the interval contains 0
    assert result.ci95[0] < 0 < result.ci95[1]


def test_no_spread_at_all_falls_back_to_the_exact_permutation_test():
    result = difference([8.0] * 5, [6.0] * 5)
    assert result.test == "permutation"
    assert result.p == pytest.approx(2 / math.comb(10, 5), abs=1e-12)  # 2 of 252 splits
    assert result.ci95 == (-2.0, -2.0)
    assert difference([8.0] * 3, [8.0] * 3).p == 1.0


def test_below_two_seeds_there_is_no_difference_to_test():
    assert difference([0.1], [0.2, 0.3]) is None
    assert difference([0.1, None], [0.2, 0.3]) is None


def test_sentence_for_a_clear_win_of_the_baseline():
    text = sentence(W1, "gp", "clip@0.01", difference(GP, CLIP), 5)
    assert text == "gp beats clip@0.01 on final W1 by 0.16 (95% CI 0.14-0.18, p < 0.001, 5 seeds)"


def test_sentence_for_a_clear_loss_of_the_baseline():
    text = sentence(W1, "clip@0.01", "gp", difference(CLIP, GP), 5)
    assert text == "gp beats clip@0.01 on final W1 by 0.16 (95% CI 0.14-0.18, p < 0.001, 5 seeds)"
    # higher is better: the baseline with fewer modes loses, the interval stays positive
    # (by hand: diff 1.4, se sqrt(0.3/5 + 0.2/5) = 0.316, Welch df 7.7, t 2.32: 0.67-2.13)
    text = sentence(MODES, "clip", "gp", difference([6, 7, 6, 6, 7], [8, 8, 7, 8, 8]), 5)
    assert text == "gp beats clip on modes covered by 1.4 (95% CI 0.67-2.1, p = 0.0024, 5 seeds)"


def test_sentence_for_no_detectable_difference_gives_the_interval():
    fd = [0.16, 0.15, 0.14, 0.15, 0.16]
    text = sentence(W1, "gp", "fd", difference(GP, fd), 5)
    assert text == (
        "no detectable difference between gp and fd on final W1 at 5 seeds "
        "(fd - gp: 0.002, 95% CI -0.0099 to 0.014, p = 0.71)"
    )
    same = sentence(MODES, "gp", "fd", difference([8] * 3, [8] * 3), 3)
    assert same == (
        "no detectable difference between gp and fd on modes covered at 3 seeds "
        "(every seed gave 8 on both sides)"
    )


def test_sentence_with_one_seed_says_no_verdict_is_possible():
    text = sentence(W1, "gp", "clip", difference([0.1], [0.2]), 1)
    assert text.startswith("no verdict is possible between gp and clip on final W1")
    assert "at least 2" in text


def test_pairwise_orients_every_outcome_from_the_baseline():
    values = {
        "gp": {"final_quality": GP, "modes": [8] * 5},
        "clip": {"final_quality": CLIP, "modes": [8] * 5},
        "fd": {"final_quality": [0.10, 0.11, 0.09, 0.10, 0.105], "modes": [8] * 5},
    }
    verdicts = pairwise("gp", ["clip", "fd"], values, [W1, MODES])
    outcomes = {(v["metric"], v["other"]): v["outcome"] for v in verdicts}
    assert outcomes == {
        ("final_quality", "clip"): "better",
        ("final_quality", "fd"): "worse",
        ("modes", "clip"): "no difference",
        ("modes", "fd"): "no difference",
    }


def test_seed_band_is_mean_min_and_max_at_the_steps_every_seed_logged():
    from lipgan.compare.figures import seed_band

    curves = [
        ([2, 4, 6], [1.0, 2.0, 3.0], [0.5, 0.4, 0.3]),
        ([2, 4], [1.5, 2.5], [0.7, 0.2]),  # a run that stopped early
    ]
    (steps, mean, low, high), (seconds, *_) = seed_band(curves)
    np.testing.assert_array_equal(steps, [2, 4])
    np.testing.assert_allclose(mean, [0.6, 0.3], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(low, [0.5, 0.2])
    np.testing.assert_array_equal(high, [0.7, 0.4])
    np.testing.assert_allclose(seconds, [1.25, 2.25], rtol=0, atol=1e-12)


def test_holm_adjusts_by_rank_and_keeps_the_order():
    from lipgan.compare.stats import holm

    # sorted: 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> kept at 0.06
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=0, atol=1e-15)
    assert holm([0.6, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_pairwise_says_which_beats_survive_holms_correction():
    gp = [0.10, 0.11, 0.09, 0.10, 0.105]
    values = {
        "gp": {"final_quality": gp, "modes": [8] * 5},
        "clip": {"final_quality": [0.31, 0.30, 0.33, 0.29, 0.32], "modes": [8] * 5},
        # a pure shift: Welch's p = 0.034 alone, x3 (second smallest of 4) after Holm
        "fd": {"final_quality": [v + 0.012 for v in gp], "modes": [8] * 5},
    }
    found = pairwise("gp", ["clip", "fd"], values, [W1, MODES])
    verdicts = {(v["metric"], v["other"]): v for v in found}
    near = verdicts[("final_quality", "fd")]
    assert near["p"] == pytest.approx(0.03373039, abs=1e-7)
    assert near["significant"] and near["outcome"] == "better"
    assert near["p_holm"] == pytest.approx(3 * near["p"], rel=1e-9)
    assert not near["significant_holm"]
    assert near["sentence"].endswith(
        "does not hold after Holm's correction for 4 tests, adjusted p = 0.10)"
    )
    far = verdicts[("final_quality", "clip")]
    assert far["p_holm"] == pytest.approx(4 * far["p"], rel=1e-9)
    assert far["significant_holm"]
    assert far["sentence"].endswith(
        "holds after Holm's correction for 4 tests, adjusted p < 0.001)"
    )
    same = verdicts[("modes", "clip")]  # every seed 8 on both sides: p = 1, no 'beats'
    assert same["p_holm"] == 1.0 and not same["significant_holm"]
    assert "Holm" not in same["sentence"]


# --- the ratio test (Welch's t on log values) ---------------------------------------------

FRECHET = Metric("final_quality", "final Fréchet", lower_is_better=True, ratio=True)
DIGITS_GP = [67.0, 69.1, 92.1]  # docs/results.md, digits at the default budget, seeds 0-2
DIGITS_CLIP = [763.5, 633.1, 1133.2]


def test_ratio_is_welchs_t_on_log_values():
    result = ratio(DIGITS_GP, DIGITS_CLIP)
    logs_gp, logs_clip = np.log(DIGITS_GP), np.log(DIGITS_CLIP)
    welch = scipy_stats.ttest_ind(logs_clip, logs_gp, equal_var=False)
    assert result.test == "welch-log"
    assert result.p == pytest.approx(welch.pvalue, rel=1e-9)
    assert result.p == pytest.approx(0.000855, abs=1e-6)
    assert result.ratio == pytest.approx(math.exp(logs_clip.mean() - logs_gp.mean()), rel=1e-12)
    assert result.ratio == pytest.approx(818.206 / 75.2669, rel=1e-5)  # geometric means
    interval = welch.confidence_interval(0.95)
    assert result.ci95 == pytest.approx((math.exp(interval.low), math.exp(interval.high)))
    assert result.significant
    # the raw difference is kept beside it: Welch's t on raw values, p = 0.036
    assert result.raw.p == pytest.approx(0.03573, abs=1e-5)
    assert result.to_dict()["difference"]["diff"] == pytest.approx(767.2, abs=0.05)


def test_ratio_needs_positive_values_and_two_seeds():
    assert ratio([1.0, 2.0], [0.5, -0.1]) is None
    assert ratio([1.0], [2.0, 3.0]) is None
    # KID's unbiased estimate can fall below 0: its verdict falls back to the difference
    kid = Metric("kid", "final KID", lower_is_better=True, ratio=True)
    fallback = compare_values(kid, [1.0, 2.0, 1.5], [-0.2, 0.1, 0.3])
    assert fallback.test == "welch" and fallback.diff == pytest.approx(0.2 / 3 - 1.5, abs=1e-12)


def _digits_values(gp: list[float], clip: list[float]) -> dict[str, dict[str, list[float]]]:
    """Issue 14's digits compare: 5 strategies against gp on final and best: 10 tests."""
    values = {"gp": {"final_quality": gp, "best_quality": gp}}
    for name, seeds in {
        "sn": [107.6, 79.4, 109.9],
        "orthogonal": [124.5, 103.9, 87.0],
        "gn": [104.6, 107.2, 97.4],
        "alr": [76.9, 74.1, 63.9],
        "clip@0.01": clip,
    }.items():
        values[name] = {"final_quality": seeds, "best_quality": seeds}
    return values


def test_digits_clip_against_gp_fails_raw_and_holds_as_a_ratio():
    others = ["sn", "orthogonal", "gn", "alr", "clip@0.01"]
    values = _digits_values(DIGITS_GP, DIGITS_CLIP)
    best = Metric("best_quality", "best Fréchet", lower_is_better=True, ratio=True)
    raw_metrics = [Metric(m.key, m.label, True) for m in (FRECHET, best)]
    raw = {(v["metric"], v["other"]): v for v in pairwise("gp", others, values, raw_metrics)}
    clip_raw = raw[("final_quality", "clip@0.01")]
    assert clip_raw["p"] == pytest.approx(0.0357, abs=1e-4) and clip_raw["significant"]
    assert not clip_raw["significant_holm"]  # adjusted 0.36: the published verdict
    assert clip_raw["p_holm"] == pytest.approx(0.357, abs=1e-3)
    logs = {(v["metric"], v["other"]): v for v in pairwise("gp", others, values, [FRECHET, best])}
    clip_log = logs[("final_quality", "clip@0.01")]
    assert clip_log["test"] == "welch-log" and clip_log["significant_holm"]
    # the two smallest p (final and best, equal) are multiplied by 10 and 9 -> both 0.0086
    assert clip_log["p_holm"] == pytest.approx(10 * clip_log["p"], rel=1e-9)
    assert clip_log["ratio"] == pytest.approx(10.8707, abs=1e-4)
    assert clip_log["difference"]["p"] == pytest.approx(clip_raw["p"], rel=1e-9)
    assert clip_log["sentence"] == (
        "gp's final Fréchet is 11x lower than clip@0.01's (95% CI 5.9-20x, p < 0.001, "
        "3 seeds; holds after Holm's correction for 10 tests, adjusted p = 0.0086)"
    )
    sn = logs[("final_quality", "sn")]
    assert sn["outcome"] == "no difference" and sn["sentence"].startswith(
        "no detectable difference between gp and sn on final Fréchet at 3 seeds (sn / gp: 1.3x"
    )


def test_ratio_sentence_when_the_other_strategy_wins():
    text = sentence(FRECHET, "clip", "gp", ratio(DIGITS_CLIP, DIGITS_GP), 3)
    assert text == (
        "gp's final Fréchet is 11x lower than clip's (95% CI 5.9-20x, p < 0.001, 3 seeds)"
    )


def test_compare_table_shows_each_feature_metric_beside_its_floor():
    from lipgan.compare.table import columns_for

    def cell(mean: float, std: float) -> dict:
        return {"n": 2, "mean": mean, "std": std, "ci95": None}

    row = {
        "name": "gp",
        "quality_metric": "quality/frechet",
        "frechet_floor": cell(39.55, 0.0),
        "kid": cell(1.5e5, 2e4),
        "kid_floor": cell(-1864.0, 0.0),
        "coverage": cell(0.61, 0.04),
        "coverage_floor": cell(0.973, 0.0),
    }
    columns = [c for c in columns_for("compare", [row]) if c.key != "status"]
    rendered = {c.key: c.render(row) for c in columns}
    assert rendered["quality_floor"] == "39.55"
    assert rendered["kid"] == "1.5e+05 ± 2e+04 (floor -1.86e+03)"
    assert rendered["coverage"] == "0.610 ± 0.04 (floor 0.973)"
    assert "precision" not in rendered  # only the metrics the runs logged
    toy = {"name": "gp", "quality_metric": "quality/w1", "final_quality": cell(0.1, 0.01)}
    assert "kid" not in {c.key for c in columns_for("compare", [toy])}
