"""Lipschitz by construction (Anil, Lucas, Grosse 2019): orthogonal weights + GroupSort.

``attach`` rebuilds the critic: every ReLU / leaky ReLU becomes MaxMin (GroupSort with
groups of two), and every Linear weight is made orthonormal (all singular values 1),
first exactly (polar factor from an SVD), then after every critic step by Björck
iterations W <- W (3/2 I - 1/2 W^T W), which converge quadratically from the nearly
orthonormal weight one optimiser step leaves behind.

Bounds that hold:

- Linear: orthonormal rows or columns, spectral norm exactly 1.
- MaxMin: a per-sample permutation of its input, gradient-norm preserving, 1-Lipschitz.
- An MLP of these is 1-Lipschitz; when every layer is square (input width = hidden
  width) the input gradient has norm exactly 1 almost everywhere.
- Conv: an orthonormal *reshaped kernel* (out, in*k*k) is not an orthogonal
  convolution: each input element enters up to prod(ceil(k_i / s_i)) patches, so the
  convolution's norm is at most sqrt(prod(ceil(k_i / s_i))) times the matrix's. The
  kernel is therefore scaled by 1 / sqrt(prod(ceil(k_i / s_i))) (1/2 for the DCGAN's
  4x4 stride-2 layers, 1/3 for 3x3 stride 1): every conv is <= 1-Lipschitz, usually
  strictly, so a conv critic is 1-Lipschitz but not gradient-norm preserving.
- The text critic's residual blocks x + 0.3 h(x) are (1 + 0.3)-Lipschitz each: the
  rebuilt text critic is at most 1.3^5 = 3.71-Lipschitz.

Norm layers (layer/group/batch norm) have no useful bound and functional activations
(the ResNet critic's F.relu) cannot be swapped, so such critics are refused.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lipgan.constraints.base import Constraint
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ConfigError

ORTHONORMAL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
SWAPPED_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)
NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)
TOLERANCE = 1e-6
"""Björck stops when max |W^T W - I| is below this or no longer shrinks (float32's floor)."""


class MaxMin(nn.Module):
    """GroupSort with groups of two over the channel dimension: (max(a, b), min(a, b))."""

    def forward(self, x: Tensor) -> Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.cat([torch.maximum(a, b), torch.minimum(a, b)], dim=1)

    def certified_lipschitz(self, bound: object) -> float:
        """A permutation of each sample's entries: exactly 1."""
        return 1.0


def conv_scale(layer: nn.Module) -> float:
    """1 / sqrt(how many patches one input element enters): the factor that makes an
    orthonormal reshaped kernel a <= 1-Lipschitz convolution (1 for Linear)."""
    if isinstance(layer, nn.Linear):
        return 1.0
    pairs = zip(layer.kernel_size, layer.stride, strict=True)
    overlap = math.prod(math.ceil(k / s) for k, s in pairs)
    return 1.0 / math.sqrt(overlap)


def _matrix(layer: nn.Module) -> Tensor:
    return layer.weight.detach().flatten(1) / conv_scale(layer)


def _store(layer: nn.Module, matrix: Tensor) -> None:
    layer.weight.copy_((matrix * conv_scale(layer)).view_as(layer.weight))


@torch.no_grad()
def polar(layer: nn.Module) -> None:
    """Replace the weight by its nearest orthonormal matrix (U V^T of its SVD)."""
    u, _, vh = torch.linalg.svd(_matrix(layer).double(), full_matrices=False)
    _store(layer, (u @ vh).to(layer.weight.dtype))


@torch.no_grad()
def bjorck(layer: nn.Module, tolerance: float = TOLERANCE, max_iterations: int = 20) -> int:
    """Björck-orthonormalise the weight in place; returns the iterations it took."""
    m = _matrix(layer)
    tall = m.shape[0] >= m.shape[1]
    eye = torch.eye(min(m.shape), dtype=m.dtype, device=m.device)
    previous = float("inf")
    iterations = 0
    while iterations < max_iterations:
        gram = m.T @ m if tall else m @ m.T
        error = float((gram - eye).abs().max())
        # Quadratic convergence: an error that stops halving is float32's floor.
        if error < tolerance or error > 0.5 * previous:
            break
        previous = error
        step = 1.5 * eye - 0.5 * gram
        m = m @ step if tall else step @ m
        iterations += 1
    _store(layer, m)
    return iterations


def orthonormal_layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, ORTHONORMAL_LAYERS)]


def rebuild(critic: nn.Module) -> None:
    """Swap activations for MaxMin and orthonormalise every layer, in place."""
    from lipgan.models.conv import DCGANCritic
    from lipgan.models.mlp import MLPCritic
    from lipgan.models.text import TextCritic

    if not isinstance(critic, MLPCritic | DCGANCritic | TextCritic | nn.Sequential):
        raise ConfigError(
            f"orthogonal cannot rebuild a {type(critic).__name__} (it rebuilds the mlp, "
            "dcgan and text critics; the resnet critic applies F.relu inside forward, "
            "which cannot be swapped for GroupSort); use --architecture dcgan or mlp"
        )
    for name, module in critic.named_modules():
        if isinstance(module, NORM_LAYERS):
            raise ConfigError(
                f"orthogonal: {type(module).__name__} in the critic is not 1-Lipschitz; "
                "use --critic-norm none"
            )
        if isinstance(module, nn.Conv1d | nn.Conv2d) and (
            module.groups != 1 or any(d != 1 for d in module.dilation)
        ):
            raise ConfigError(f"orthogonal: {name} is a grouped or dilated conv; not supported")
        width = getattr(module, "out_features", None) or getattr(module, "out_channels", 1)
        if isinstance(module, ORTHONORMAL_LAYERS) and width > 1 and width % 2:
            raise ConfigError(
                f"orthogonal: layer {name} has {width} outputs; GroupSort sorts pairs, so "
                "use an even --hidden"
            )
    for parent in critic.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, SWAPPED_ACTIVATIONS):
                setattr(parent, child_name, MaxMin())
    layers = orthonormal_layers(critic)
    if not layers:
        raise ConfigError("orthogonal found no Linear or Conv layer in the critic")
    for layer in layers:
        polar(layer)


@register(
    "orthogonal",
    description="By construction: orthonormal (Björck) weights + GroupSort activations",
    optimizer=ADAM,
    group="weights",
)
class Orthogonal(Constraint):
    def attach(self, critic: nn.Module) -> None:
        rebuild(critic)

    def after_critic_step(self, critic: nn.Module) -> None:
        for layer in orthonormal_layers(critic):
            bjorck(layer)
