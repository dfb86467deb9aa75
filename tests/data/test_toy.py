from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from lipgan.constraints import BatchRandom
from lipgan.data import load
from lipgan.data.toy import ToyData, exact_w1, mode_metrics
from lipgan.errors import DataError


def test_exact_w1_of_a_shifted_set_is_the_shift():
    a = np.random.default_rng(0).normal(size=(200, 2))
    assert exact_w1(a, a) == 0.0
    assert math.isclose(exact_w1(a, a + np.array([0.3, 0.4])), 0.5, rel_tol=1e-9)


def test_exact_w1_finds_the_optimal_matching_not_the_given_order():
    a = np.array([[0.0, 0.0], [10.0, 0.0]])
    b = np.array([[10.0, 1.0], [0.0, 1.0]])  # paired in order: ~10.05 each; optimal: 1 each
    assert math.isclose(exact_w1(a, b), 1.0)


def test_8gaussians_centres_scale_and_noise_match_the_paper_script():
    data = ToyData("8gaussians")
    x = data.draw(BatchRandom(torch.Generator().manual_seed(0)), 20000)
    radius = x.norm(dim=1)
    assert_close(radius.mean(), torch.tensor(2 / 1.414), rtol=0, atol=2e-3)
    centres = data.mixture.centres
    nearest = torch.cdist(x, centres).argmin(1)
    residual = x - centres[nearest]
    assert_close(residual.std(), torch.tensor(0.02 / 1.414), rtol=0.05, atol=0)
    counts = torch.bincount(nearest, minlength=8).float() / len(x)
    assert_close(counts, torch.full((8,), 1 / 8), rtol=0, atol=0.015)


def test_25gaussians_grid_and_swissroll_range():
    grid = ToyData("25gaussians").mixture.centres
    assert grid.shape == (25, 2)
    assert_close(grid.max(), torch.tensor(4 / 2.828))
    roll = ToyData("swissroll").draw(BatchRandom(torch.Generator().manual_seed(0)), 5000)
    assert roll.shape == (5000, 2)
    # t in [1.5 pi, 4.5 pi] -> radius t/7.5 in about [0.63, 1.88] before noise
    radius = roll.norm(dim=1)
    assert 0.55 < radius.quantile(0.01) and radius.quantile(0.99) < 1.95


def test_mode_metrics_count_covered_modes_and_good_samples():
    mixture = ToyData("8gaussians").mixture
    centres = mixture.centres.numpy()
    on_three = np.repeat(centres[:3], 100, axis=0)  # 300 perfect samples on 3 modes
    far = np.full((100, 2), 5.0)  # 100 samples nowhere
    metrics = mode_metrics(np.concatenate([on_three, far]), mixture)
    assert metrics == {"quality/modes": 3.0, "quality/hq_fraction": 0.75}


def test_real_data_scores_all_modes_and_its_own_floor():
    data = ToyData("8gaussians")
    metrics = data.evaluate(data.reference(512, seed=11), seed=10)
    assert metrics["quality/modes"] == 8.0
    assert metrics["quality/hq_fraction"] > 0.98
    assert metrics["quality/w1"] == pytest.approx(metrics["quality/w1_floor"], rel=0.5)
    assert metrics["quality/w1_floor"] < 0.15


def test_w1_over_sets_is_the_mean_of_each_set_against_its_own_real_set():
    data = ToyData("8gaussians")
    fake = data.reference(4 * 128, seed=3) * 0.9  # a shrunken mixture: W1 well above 0
    metrics = data.evaluate(fake, seed=20, sets=4)
    real = data.reference(4 * 128, seed=20).numpy()
    by_hand = [exact_w1(fake[i : i + 128].numpy(), real[i : i + 128]) for i in (0, 128, 256, 384)]
    assert metrics["quality/w1"] == pytest.approx(np.mean(by_hand), rel=1e-12)
    assert len(set(by_hand)) == 4  # four different sets, not one counted four times
    one = data.evaluate(fake[:128], seed=20)  # one set: plain W1 against one real set
    expected = exact_w1(fake[:128].numpy(), data.reference(128, seed=20).numpy())
    assert one["quality/w1"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="do not split into 3 sets"):
        data.evaluate(fake, seed=20, sets=3)


def test_averaging_sets_shrinks_the_spread_of_the_noise_floor():
    data = ToyData("8gaussians")
    fake = data.reference(4 * 256, seed=99)
    one = [data.evaluate(fake[:256], seed=s)["quality/w1_floor"] for s in range(0, 24, 2)]
    four = [data.evaluate(fake, seed=s, sets=4)["quality/w1_floor"] for s in range(0, 24, 2)]
    assert np.mean(four) == pytest.approx(np.mean(one), rel=0.15)  # same quantity
    assert np.std(four) < 0.75 * np.std(one)  # ~half in theory


def test_unknown_data_lists_the_kinds():
    with pytest.raises(DataError, match="unknown data 'ten-gaussians'; available: 8gaussians"):
        load("ten-gaussians")
