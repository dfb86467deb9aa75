"""Adversarial Lipschitz regularisation (ALR, Terjék, ICLR 2020).

The finite-difference penalty with its direction chosen adversarially: from every real
and generated sample x, a random unit direction d is refined by k power-iteration
steps toward the direction of largest slope (as in virtual adversarial training),

    d <- normalise(grad_d |D(x) - D(x + xi * d)|),

then r = eps * d with eps ~ U[eps_min, eps_max] per sample, and only the excess of the
slope over K is penalised:

    lambda * E[max(0, |D(x) - D(x + r)| / ||r|| - K)^2].

On a linear critic D(x) = w.x the first step already gives d = +-w / ||w|| (the top
right-singular vector) and the penalty is lambda * max(0, ||w|| - K)^2 exactly. Only
first-order gradients: no double backward. The paper's CIFAR-10 settings (pixels in
[-1, 1], 3072 dimensions): lambda 10, K 1, k 1, xi 10, eps ~ U[0.1, 10]. Our data are
smaller vectors, so the distances scale down with them (docs/constraints/alr.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipgan.constraints.base import (
    Constraint,
    CriticBatch,
    non_negative,
    per_sample_norm,
    scores_of,
)
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ArgumentError
from lipgan.tune.space import PENALTY_WEIGHT, POINTS_PENALTY_WEIGHT, tunable

# Distances relative to a sample's norm: ~55 for a CIFAR image, ~2 for a toy point, ~5
# for an 8x8 digit or a 32-character one-hot line.
FAMILY_PARAMS = {
    "points": {"weight": 0.1, "xi": 0.5, "eps_min": 0.01, "eps_max": 0.5},
    "images": {"xi": 1.0, "eps_min": 0.01, "eps_max": 1.0},
    "text": {"xi": 1.0, "eps_min": 0.01, "eps_max": 1.0},
}


def unit(t: Tensor) -> Tensor:
    """Each sample scaled to L2 norm 1 over its non-batch dimensions."""
    view = (-1,) + (1,) * (t.dim() - 1)
    return t / per_sample_norm(t).view(view).to(t.dtype)


def adversarial_direction(
    critic: nn.Module,
    x: Tensor,
    scores: Tensor,
    start: Tensor,
    xi: float,
    steps: int,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """Unit directions of steepest |D(x) - D(x + xi d)|, by ``steps`` power iterations
    from ``start``; detached (a direction, not a path for the critic's gradient)."""
    d = unit(start.detach())
    scores = scores.detach()
    for _ in range(steps):
        d.requires_grad_(True)
        moved = scores_of(critic(x + xi * d), x.shape[0], "the critic's output")
        gap = (scores - moved).abs().sum()
        if scaler is not None and scaler.is_enabled():
            gap = scaler.scale(gap)  # the scale cancels in the normalisation below
        (grad,) = torch.autograd.grad(gap, d)
        d = unit(grad.detach())
    return d


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "alr",
    description="Adversarial Lipschitz: lambda * E[max(0, |D(x)-D(x+r)|/||r|| - K)^2], "
    "r by power iteration",
    optimizer=ADAM,
    group="interpolates",
    family_params=FAMILY_PARAMS,
)
class AdversarialLipschitz(Constraint):
    def __init__(
        self,
        weight: float = 10.0,
        K: float = 1.0,
        steps: int = 1,
        xi: float = 10.0,
        eps_min: float = 0.1,
        eps_max: float = 10.0,
    ) -> None:
        self.weight = non_negative("weight", weight)
        self.K = non_negative("K", K)
        if steps < 1:
            raise ArgumentError(f"steps must be >= 1, got {steps}")
        if not xi > 0:
            raise ArgumentError(f"xi must be > 0, got {xi:g}")
        if not 0 < eps_min <= eps_max:
            raise ArgumentError(f"need 0 < eps_min <= eps_max, got {eps_min:g} and {eps_max:g}")
        self.steps, self.xi, self.eps_min, self.eps_max = steps, xi, eps_min, eps_max

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        real, fake = batch.real, batch.fake.to(batch.real.dtype)
        n, shape = real.shape[0], real.shape[1:]
        x = torch.cat([real, fake])
        scores = torch.cat([batch.critic_real, batch.critic_fake])
        # Two draws of n, not one of 2n: the sharding of data-parallel runs stays per sample.
        start = torch.cat([batch.rand.normal(n, *shape), batch.rand.normal(n, *shape)])
        d = adversarial_direction(
            critic, x, scores, start.to(x.dtype), self.xi, self.steps, batch.scaler
        )
        u = torch.cat([batch.rand.uniform(n), batch.rand.uniform(n)])
        eps = self.eps_min + (self.eps_max - self.eps_min) * u
        view = (-1,) + (1,) * len(shape)
        moved = scores_of(critic(x + eps.view(view).to(x.dtype) * d), 2 * n, "the critic's output")
        slope = (scores - moved).abs() / eps.to(scores.dtype)
        return self.weight * torch.relu(slope - self.K).pow(2).mean()
