"""Finite-difference penalty: the gradient penalty without a double backward.

Two points x1, x2 on the same real-fake line; the slope |D(x1) - D(x2)| / ||x1 - x2||
replaces the gradient norm. Only first-order gradients are needed, so it works where
double backward is unavailable (torch.compile) or slow.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipgan.constraints.base import Constraint, CriticBatch, per_sample_norm
from lipgan.constraints.gradient_penalty import TOY_WEIGHT
from lipgan.constraints.registry import ADAM, register


@register(
    "fd",
    description="Finite-difference penalty: lambda * E[(|D(x1)-D(x2)| / ||x1-x2|| - 1)^2]",
    optimizer=ADAM,
    group="interpolates",
    family_params=TOY_WEIGHT,
)
class FiniteDifferencePenalty(Constraint):
    def __init__(self, weight: float = 10.0) -> None:
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight:g}")
        self.weight = weight

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        real, fake = batch.real, batch.fake
        n = real.shape[0]
        eps = batch.rand.uniform(n, 2).to(real.dtype)
        view = (n,) + (1,) * (real.dim() - 1)
        e1, e2 = eps[:, 0].view(view), eps[:, 1].view(view)
        direction = real - fake
        x1, x2 = fake + e1 * direction, fake + e2 * direction
        # One forward for both points; ||x1 - x2|| is |e1 - e2| * ||real - fake||.
        out = critic(torch.cat([x1, x2]))
        distance = (e1 - e2).flatten().abs() * per_sample_norm(direction)
        slope = (out[:n] - out[n:]).abs() / distance.clamp_min(1e-12)
        return self.weight * (slope - 1).pow(2).mean()
