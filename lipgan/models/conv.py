"""DCGAN-style conv generator and critic, sized from the image shape (C, S, S).

The spatial size is halved while it stays even and >= 4 (8 -> 4, 28 -> 14 -> 7,
32 -> 16 -> 8 -> 4): k stride-2 layers, channels doubling per halving from the base
width, as the paper's 32x32 DCGAN (64 -> 128 -> 256). Small images (k < 2) get
stride-1 3x3 layers at full size so each network has at least two conv layers.
The generator mirrors the critic with transposed convs, batch norm and a tanh output
in [-1, 1]; the critic uses ``critic_norm`` (never batch norm under a penalty, which
``engine.resolve`` refuses) and leaky ReLU, and returns one score per sample.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lipgan.errors import ConfigError
from lipgan.models.lipschitz import chain_bound

REFERENCE_SIDE = 32


def conv_width(hidden: int, side: int | None = None) -> int:
    """Base channels: ``hidden`` (64 by default, the paper's DCGAN width), scaled by
    side / 32 for images smaller than 32x32 (an 8x8 digit gets 16 channels: a quarter of
    the paper's width, 1/16 of the cost)."""
    width = hidden
    if side is not None and side < REFERENCE_SIDE:
        width = round(width * side / REFERENCE_SIDE)
    return max(4, width)


def image_shape(meta: dict[str, Any], architecture: str) -> tuple[int, int]:
    """(channels, side) of square image data; ConfigError for anything else."""
    shape = tuple(int(s) for s in meta["shape"])
    if meta.get("family") != "images" or len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(
            f"--architecture {architecture} needs square images (C, S, S), got "
            f"{meta.get('family')} data of shape {shape}; pick another --architecture"
        )
    return shape[0], shape[1]


def halvings(side: int) -> int:
    """How often ``side`` halves while it stays even and at least 4."""
    k = 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        k += 1
    return k


def conv_norm(kind: str, channels: int) -> nn.Module:
    """The critic's normalisation: layer norm over (C, H, W) is GroupNorm with one group."""
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, side: int, width: int) -> None:
        super().__init__()
        k = halvings(side)
        extra = max(0, 2 - k)
        self.start = (width * 2 ** max(k - 1, 0) * (2 if extra else 1), side >> k)
        c0, s0 = self.start
        self.project = nn.Sequential(
            nn.Linear(z_dim, c0 * s0 * s0), nn.BatchNorm1d(c0 * s0 * s0), nn.ReLU()
        )
        layers: list[nn.Module] = []
        c = c0
        for i in range(k):
            last = i == k - 1 and not extra
            out = channels if last else max(c // 2, width)
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        for i in range(extra):
            last = i == extra - 1
            out = channels if last else width
            layers.append(nn.Conv2d(c, out, 3, 1, 1))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        c0, s0 = self.start
        return self.net(self.project(z).view(-1, c0, s0, s0))


class DCGANCritic(nn.Module):
    """Returns one score per sample, shape (n,)."""

    def __init__(self, channels: int, side: int, width: int, norm: str) -> None:
        super().__init__()
        k = halvings(side)
        extra = max(0, 2 - k)
        layers: list[nn.Module] = []
        c = channels
        for i in range(extra):
            layers.append(nn.Conv2d(c, width, 3, 1, 1))
            if i > 0:
                layers.append(conv_norm(norm, width))
            layers.append(nn.LeakyReLU(0.2))
            c = width
        for i in range(k):
            out = width * 2 ** (i + (1 if extra else 0))
            layers.append(nn.Conv2d(c, out, 4, 2, 1))
            if extra or i > 0:  # DCGAN: no normalisation on the input layer
                layers.append(conv_norm(norm, out))
            layers.append(nn.LeakyReLU(0.2))
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.score = nn.Linear(c * (side >> k) ** 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.score(self.net(x)).squeeze(1)

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        return chain_bound([self.net, self.score], conv_factor)
