"""The compare's statistics against scipy on hand-made numbers, and the verdict sentences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lipgan.compare.stats import difference, spread
from lipgan.compare.verdicts import Metric, pairwise, sentence

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
