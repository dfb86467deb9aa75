"""2-D toy distributions of the WGAN-GP paper, sampled exactly on the fly.

Centres, scales and noise follow the paper's toy script:

- ``8gaussians``: 8 centres at angles k*45 degrees on a circle of radius 2, std 0.02,
  all divided by 1.414 (radius ~1.414, std ~0.0141);
- ``25gaussians``: centres on the 5x5 grid {-4,-2,0,2,4}^2, std 0.05, divided by 2.828
  (spacing ~0.707, std ~0.0177);
- ``swissroll``: t = 1.5*pi*(1 + 2u), point (t cos t, t sin t) + N(0, 0.25^2) noise,
  divided by 7.5 (the 2-D slice of scikit-learn's make_swiss_roll).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom


@dataclass(frozen=True)
class GaussianMixture:
    centres: Tensor
    std: float


def _mixture(name: str) -> GaussianMixture | None:
    if name == "8gaussians":
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        centres = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        return GaussianMixture((centres / 1.414).float(), 0.02 / 1.414)
    if name == "25gaussians":
        grid = torch.arange(-2, 3, dtype=torch.float64) * 2
        centres = torch.cartesian_prod(grid, grid)
        return GaussianMixture((centres / 2.828).float(), 0.05 / 2.828)
    return None


TOY_NAMES = ("8gaussians", "25gaussians", "swissroll")


class ToyData:
    """An infinite 2-D data set; every draw is exact, nothing is stored."""

    family = "points"
    shape = (2,)

    def __init__(self, name: str) -> None:
        if name not in TOY_NAMES:
            raise ValueError(name)
        self.name = name
        self.mixture = _mixture(name)
        self._references: dict[tuple[int, int, int], _Reference] = {}

    def draw(self, rand: BatchRandom, n: int) -> Tensor:
        """This process's n samples (see BatchRandom)."""
        if self.mixture is not None:
            centres = self.mixture.centres.to(rand.device)
            which = rand.integers(n, len(centres))
            return centres[which] + self.mixture.std * rand.normal(n, 2)
        t = 1.5 * math.pi * (1 + 2 * rand.uniform(n))
        roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
        return (roll + 0.25 * rand.normal(n, 2)) / 7.5

    def reference(self, n: int, seed: int) -> Tensor:
        """n real samples from their own seeded generator (for metrics)."""
        return self.draw(BatchRandom(torch.Generator().manual_seed(seed)), n)

    def meta(self) -> dict[str, Any]:
        return {"kind": "toy", "name": self.name, "family": self.family, "shape": [2]}

    # -- quality ------------------------------------------------------------------------

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]:
        """W1 to real data and precision, recall, density and coverage on the raw points,
        each with its floor (another real sample's value), each the mean over ``sets``
        equal parts of ``fake`` (each against its own real set); for mixtures, modes and
        quality.

        One set's W1 is a noisy estimate (at 512 points its spread between real sets is
        ~0.03, the size of the differences users compare), so several are averaged.
        """
        n = fake.shape[0] // sets
        if n * sets != fake.shape[0]:
            raise ValueError(f"{fake.shape[0]} samples do not split into {sets} sets")
        if (n, sets, seed) not in self._references:
            self._references[n, sets, seed] = _Reference(self, n, sets, seed)
        reference = self._references[n, sets, seed]
        fake_np = fake.detach().float().cpu().numpy()
        metrics = {
            "quality/w1": _mean_w1(fake_np, reference.real, n),
            "quality/w1_floor": reference.w1_floor,
        }
        for name, value in reference.prdc(fake_np).items():
            metrics[f"quality/{name}"] = value
            metrics[f"quality/{name}_floor"] = reference.prdc_floor[name]
        if self.mixture is not None:
            metrics.update(mode_metrics(fake_np, self.mixture))
        return metrics

    def save_samples(self, fake: Tensor, path: Path, critic: nn.Module | None = None) -> Path:
        from lipgan.plots import plot_points

        path = path.with_suffix(".png")
        real = self.reference(fake.shape[0], seed=0)
        plot_points(path, real, fake, critic, title=self.name)
        return path


class _Reference:
    """What scoring ``sets`` sets of n points with one seed needs, computed once: the real
    points, each set's k-NN manifold, and the floors (another real sample's scores)."""

    def __init__(self, data: ToyData, n: int, sets: int, seed: int) -> None:
        from lipgan.quality import NEAREST_K, Manifold

        self.n = n
        self.real = data.reference(n * sets, seed).numpy()
        other = data.reference(n * sets, seed + 1).numpy()
        self.w1_floor = _mean_w1(other, self.real, n)
        self.manifolds = (
            [Manifold(self.real[i : i + n]) for i in range(0, len(self.real), n)]
            if n > NEAREST_K
            else []
        )
        self.prdc_floor = self.prdc(other)

    def prdc(self, fake: np.ndarray) -> dict[str, float]:
        """Precision, recall, density, coverage: means over the sets (none below k + 1)."""
        scores = [manifold(fake[i * self.n : (i + 1) * self.n]) for i, manifold in
                  enumerate(self.manifolds)]  # fmt: skip
        return (
            {name: float(np.mean([s[name] for s in scores])) for name in scores[0]}
            if scores
            else {}
        )


def exact_w1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two equal-size point sets (optimal matching)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    if len(a) != len(b):
        raise ValueError("exact_w1 needs two sets of the same size")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    cost = cdist(a.reshape(len(a), -1), b.reshape(len(b), -1))
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def _mean_w1(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """The mean exact W1 over consecutive sets of n points of a and b."""
    values = [exact_w1(a[i : i + n], b[i : i + n]) for i in range(0, len(a), n)]
    return float(np.mean(values))


def mode_metrics(fake: np.ndarray, mixture: GaussianMixture) -> dict[str, float]:
    """Modes covered and the fraction of high-quality samples.

    A sample is high quality when it lies within 3 std of its nearest centre; a mode
    is covered when it holds at least 10% of its fair share (n / modes) of them.
    """
    centres = mixture.centres.numpy()
    if not np.isfinite(fake).all():
        return {"quality/modes": 0.0, "quality/hq_fraction": 0.0}
    distance = np.linalg.norm(fake[:, None, :] - centres[None, :, :], axis=2)
    nearest = distance.argmin(axis=1)
    good = distance[np.arange(len(fake)), nearest] <= 3 * mixture.std
    counts = np.bincount(nearest[good], minlength=len(centres))
    threshold = max(1.0, 0.1 * len(fake) / len(centres))
    return {
        "quality/modes": float((counts >= threshold).sum()),
        "quality/hq_fraction": float(good.mean()),
    }
