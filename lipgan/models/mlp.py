"""The paper's toy networks: MLPs with ReLU (3 hidden layers of 512 by default)."""

from __future__ import annotations

import math

from torch import Tensor, nn

from lipgan.models.lipschitz import chain_bound


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    return nn.Identity()


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple[int, ...], hidden: int, layers: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        blocks: list[nn.Module] = []
        width = z_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, math.prod(self.shape)))
        self.net = nn.Sequential(*blocks)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape)


class MLPCritic(nn.Module):
    """Returns one score per sample, shape (n,)."""

    def __init__(self, shape: tuple[int, ...], hidden: int, layers: int, norm: str) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = math.prod(shape)
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), _norm(norm, hidden), nn.ReLU()]
            width = hidden
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        return chain_bound(self.net, conv_factor)
