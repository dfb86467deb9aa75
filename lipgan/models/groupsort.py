"""GroupSort activations (Anil, Lucas, Grosse 2019) and the swap that puts them in a critic.

GroupSort sorts each sample's channels in groups; MaxMin is its group of two. Both
permute each sample's entries, so they are 1-Lipschitz and preserve the gradient norm,
where ReLU halves it on average. ``orthogonal`` always swaps a critic's ReLUs for one of
them; ``sn`` does where its ``group_size`` asks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.errors import ConfigError

SWAPPED_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)
CHANNEL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Permutation(nn.Module):
    """An activation that permutes each sample's entries: Lipschitz constant exactly 1."""

    def certified_lipschitz(self, bound: object) -> float:
        return 1.0

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """The same, as ``lipgan.models.lipschitz.sn_bound`` asks for it."""
        return 1.0


class MaxMin(_Permutation):
    """GroupSort with groups of two over the channel dimension: (max(a, b), min(a, b))."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.cat([torch.maximum(a, b), torch.minimum(a, b)], dim=1)


class GroupSort(_Permutation):
    """Sorts each sample's channels (dim 1) in groups of ``group_size`` consecutive
    channels, descending; ``group_size`` 0 sorts all channels at once (FullSort)."""

    def __init__(self, group_size: int) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        size = self.group_size or x.shape[1]
        groups = x.unflatten(1, (x.shape[1] // size, size))
        return groups.gather(2, descending_order(groups)).flatten(1, 2)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size or 'full'}"


def descending_order(groups: Tensor) -> Tensor:
    """The indices that sort ``groups`` along dim 2, descending, computed without a graph:
    the values are then a gather, which autograd differentiates to any order.

    On the CPU, torch's sort is a stable sort: 6.2 ms for 256 rows of 512 on one thread,
    where NumPy's (unstable) introsort takes 2.2 ms (docs/performance.md). Stability only
    orders ties, whose values are equal, so the CPU path uses NumPy; CUDA, low-precision
    dtypes and torch.compile keep torch's sort."""
    if (
        groups.device.type == "cpu"
        and groups.dtype in (torch.float32, torch.float64)
        and not torch.compiler.is_compiling()
    ):
        keys = np.negative(groups.detach().numpy())
        return torch.from_numpy(np.argsort(keys, axis=2))
    return groups.detach().argsort(dim=2, descending=True)


def activation(group_size: int) -> nn.Module:
    """MaxMin for groups of two (the layout lipgan always had), else GroupSort."""
    return MaxMin() if group_size == 2 else GroupSort(group_size)


def swappable(critic: nn.Module) -> bool:
    """Whether ``critic``'s activations are modules ``swap_activations`` can replace (the
    resnet critic applies F.relu inside forward)."""
    from lipgan.models.conv import DCGANCritic
    from lipgan.models.mlp import MLPCritic
    from lipgan.models.text import TextCritic

    return isinstance(critic, MLPCritic | DCGANCritic | TextCritic | nn.Sequential)


def swap_activations(critic: nn.Module, group_size: int, owner: str) -> None:
    """Replace every ReLU / leaky ReLU of ``critic`` by GroupSort(``group_size``) in place.

    Every layer's output width must be a multiple of the group (0, all channels, fits
    any); ``owner`` names the strategy parameter in the error."""
    for name, module in critic.named_modules():
        width = getattr(module, "out_features", None) or getattr(module, "out_channels", 1)
        if isinstance(module, CHANNEL_LAYERS) and width > 1 and group_size:
            if width % group_size:
                raise ConfigError(
                    f"{owner}: layer {name} has {width} outputs, not a multiple of "
                    f"{owner}.group_size {group_size}; use a --hidden divisible by it "
                    "or group_size 0 (sort all channels)"
                )
    for parent in critic.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, SWAPPED_ACTIVATIONS):
                setattr(parent, child_name, activation(group_size))
