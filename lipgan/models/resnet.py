"""The paper's ResNet generator and critic (its CIFAR-10 models), sized from the image.

Generator: linear to (width, S/2^k, S/2^k), k up-sampling residual blocks (batch norm,
ReLU, nearest up-sampling, two 3x3 convs; 1x1 conv shortcut), batch norm, ReLU, 3x3
conv, tanh. Critic: an input block and k-1 down-sampling residual blocks (mean
pooling), two plain residual blocks, ReLU, global mean pooling, linear. For 32x32,
k = 3 as in the paper; the paper used 128 channels (``--hidden 128`` here), the
default 64 keeps CPU runs affordable. The critic honours ``critic_norm``.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from lipgan.models.conv import conv_norm, halvings
from lipgan.models.lipschitz import chain_bound, layer_bound


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=2, mode="nearest")
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return self.shortcut(up) + h


class CriticBlock(nn.Module):
    """A residual block; ``first`` skips the leading norm/ReLU (it sees the image)."""

    def __init__(self, c_in: int, c_out: int, down: bool, norm: str, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.norm1 = nn.Identity() if first else conv_norm(norm, c_in)
        self.norm2 = nn.Identity() if first else conv_norm(norm, c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        needs_projection = c_in != c_out or down
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if needs_projection else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        skip = x
        if self.down:
            h = F.avg_pool2d(h, 2)
            skip = F.avg_pool2d(skip, 2)
        return self.shortcut(skip) + h

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        branch = chain_bound([self.norm1, self.conv1, self.norm2, self.conv2], conv_factor)
        pool = 0.5 if self.down else 1.0  # 2x2 mean: ||y|| <= ||x|| / 2
        return pool * (layer_bound(self.shortcut, conv_factor) + branch)


class ResNetGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, side: int, width: int) -> None:
        super().__init__()
        k = halvings(side)
        self.start = (width, side >> k)
        self.project = nn.Linear(z_dim, width * (side >> k) ** 2)
        self.blocks = nn.Sequential(*[UpBlock(width, width) for _ in range(k)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: Tensor) -> Tensor:
        c, s = self.start
        return self.out(self.blocks(self.project(z).view(-1, c, s, s)))


class ResNetCritic(nn.Module):
    """Returns one score per sample, shape (n,)."""

    def __init__(self, channels: int, side: int, width: int, norm: str) -> None:
        super().__init__()
        k = halvings(side)
        blocks = [CriticBlock(channels, width, down=k > 0, norm=norm, first=True)]
        blocks += [CriticBlock(width, width, down=True, norm=norm) for _ in range(k - 1)]
        blocks += [CriticBlock(width, width, down=False, norm=norm) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.score = nn.Linear(width, 1)
        self.positions = (side >> k) ** 2
        """Spatial positions the final mean pools over."""

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.blocks(x)).mean(dim=(2, 3))
        return self.score(h).squeeze(1)

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        mean = 1 / math.sqrt(self.positions)  # a mean over P positions: 1/sqrt(P)
        return chain_bound([self.blocks, self.score], conv_factor) * mean
