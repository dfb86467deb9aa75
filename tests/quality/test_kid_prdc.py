"""KID, FD-infinity and precision/recall/density/coverage against brute force, prdc and
cases whose answer is known."""

from __future__ import annotations

import numpy as np
import prdc
import pytest
import torch

from lipgan.data.toy import ToyData
from lipgan.quality import (
    KID_SUBSETS,
    SUBSET_SEED,
    KernelDistance,
    Manifold,
    _FixedReference,
    frechet_distance,
    frechet_infinity,
    gaussian_stats,
    mmd2_unbiased,
)


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of the cubic kernel, pair by pair."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(np.dot(a, b)) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_brute_force_on_tiny_sets():
    gen = np.random.default_rng(0)
    x, y = gen.normal(size=(5, 3)), gen.normal(1.0, 2.0, size=(4, 3))
    assert mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-12)
    assert mmd2_unbiased(x, x[::-1]) == pytest.approx(brute_force_mmd2(x, x), rel=1e-12)


def test_kid_is_the_mean_over_reference_subsets():
    gen = np.random.default_rng(1)
    fake, reference = gen.normal(size=(6, 4)), gen.normal(size=(20, 4))
    pick = np.random.default_rng(SUBSET_SEED)
    subsets = [pick.choice(20, 6, replace=False) for _ in range(KID_SUBSETS)]
    expected = np.mean([brute_force_mmd2(fake, reference[s]) for s in subsets])
    assert KernelDistance(reference)(fake) == pytest.approx(expected, rel=1e-10)
    # a reference no larger than the scored set is used whole, once
    small = reference[:5]
    assert KernelDistance(small)(fake) == pytest.approx(brute_force_mmd2(fake, small), rel=1e-12)


def test_kid_near_zero_for_one_distribution_and_positive_for_a_shift():
    gen = np.random.default_rng(2)
    reference = gen.normal(size=(400, 16))
    kid = KernelDistance(reference)
    same = [kid(gen.normal(size=(200, 16))) for _ in range(20)]
    # unbiased: centred on 0, so some estimates fall below 0 (no clamping)
    assert min(same) < 0 < max(same)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    shifted = kid(gen.normal(0.5, 1.0, size=(200, 16)))
    assert shifted > 20 * max(abs(v) for v in same)
    # the shift's population MMD^2 under (x.y/d + 1)^3, by a large sample
    big = mmd2_unbiased(gen.normal(0.5, 1.0, size=(4000, 16)), gen.normal(size=(4000, 16)))
    assert shifted == pytest.approx(big, rel=0.25)


def test_frechet_infinity_removes_the_small_sample_bias():
    # N(0, I_8) scored against its exact statistics: the true distance is 0, FD at N is
    # biased up by about d(d+1)/(2N)-ish; the 1/N extrapolation lands near 0.
    d, n = 8, 400
    exact = (np.zeros(d), np.eye(d))
    gen = np.random.default_rng(3)
    fixed, extrapolated = [], []
    for _ in range(10):
        features = gen.normal(size=(n, d))
        fixed.append(frechet_distance(*gaussian_stats(features), *exact))
        extrapolated.append(frechet_infinity(features, exact))
    assert np.mean(fixed) > 0.05
    assert abs(np.mean(extrapolated)) < 0.3 * np.mean(fixed)
    assert frechet_infinity(gen.normal(size=(16, d)), exact) is None  # too few for a fit
    # its fixed-reference distance is frechet_distance by an eigenvalue problem
    other = (gen.normal(size=d), np.cov(gen.normal(size=(50, d)) * 2, rowvar=False))
    features = gen.normal(size=(n, d))
    assert _FixedReference(*other)(features) == pytest.approx(
        frechet_distance(*gaussian_stats(features), *other), rel=1e-9
    )


def test_manifold_agrees_with_the_prdc_package(capsys):
    gen = np.random.default_rng(4)
    real, fake = gen.normal(size=(120, 6)), gen.normal(0.3, 1.2, size=(120, 6))
    ours = Manifold(real, k=5)(fake)
    theirs = prdc.compute_prdc(real, fake, nearest_k=5)
    capsys.readouterr()  # prdc prints the set sizes
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(theirs[name]), abs=1e-12), name


def test_identical_sets_cover_everything():
    real = np.random.default_rng(5).normal(size=(300, 4))
    scores = Manifold(real)(real)
    assert scores["coverage"] == 1.0 and scores["precision"] == 1.0 and scores["recall"] == 1.0
    assert scores["density"] == pytest.approx(1.0, abs=0.15)


@pytest.fixture(scope="module")
def mixture() -> ToyData:
    return ToyData("8gaussians")


def toy_scores(data: ToyData, fake: torch.Tensor) -> dict[str, float]:
    return data.evaluate(fake, seed=7, sets=2)


def test_toy_real_points_score_their_floors(mixture):
    real = mixture.reference(1024, seed=123)
    metrics = toy_scores(mixture, real)
    for name in ("precision", "recall", "density", "coverage"):
        floor = metrics[f"quality/{name}_floor"]
        assert 0.8 < floor <= 1.2, name  # real against real: near 1
        assert metrics[f"quality/{name}"] == pytest.approx(floor, abs=0.08), name


def test_collapse_to_one_mode_keeps_precision_and_loses_coverage(mixture):
    real = mixture.reference(1024, seed=123)
    centres = mixture.mixture.centres
    nearest = torch.cdist(real, centres).argmin(1)
    collapsed = real[nearest == 0]  # real points of one mode, repeated to 1024
    collapsed = collapsed[torch.arange(1024) % len(collapsed)]
    metrics = toy_scores(mixture, collapsed)
    assert metrics["quality/precision"] > 0.95
    assert metrics["quality/coverage"] < 0.2  # one mode of 8: about 1/8
    assert metrics["quality/recall"] < 0.2


def test_noise_has_low_precision(mixture):
    noise = torch.rand(1024, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2
    metrics = toy_scores(mixture, noise)
    assert metrics["quality/precision"] < 0.1
    assert metrics["quality/density"] < 0.1
    assert metrics["quality/precision_floor"] > 0.8
