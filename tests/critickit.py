"""Critics whose input gradient is known in closed form (``from critickit import ...``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipgan.constraints import BatchRandom, CriticBatch


class QuadraticCritic(nn.Module):
    """D(x) = a/2 * ||x||^2 per sample, so grad_x D = a * x and ||grad|| = |a| * ||x||."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * self.a * x.flatten(1).pow(2).sum(dim=1)


def batch_for(critic: nn.Module, real: Tensor, fake: Tensor, seed: int) -> CriticBatch:
    """A CriticBatch whose random draws come from ``torch.Generator().manual_seed(seed)``."""
    n = real.shape[0]
    scores = critic(torch.cat([real, fake]))
    rand = BatchRandom(torch.Generator().manual_seed(seed))
    return CriticBatch(real, fake, scores[:n], scores[n:], rand)


def squared_norms(x: Tensor) -> Tensor:
    """||x_i||^2 over all non-batch dimensions, in float64."""
    return x.double().flatten(1).pow(2).sum(dim=1)
