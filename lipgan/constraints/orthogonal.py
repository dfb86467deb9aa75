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

from lipgan.constraints.base import Constraint, attaches_critic
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ConfigError
from lipgan.models.groupsort import GroupSort, MaxMin, activation, swap_activations, swappable
from lipgan.tune.space import WIDTHS, Choice, tunable

__all__ = ["GroupSort", "MaxMin", "Orthogonal", "activation", "bjorck", "polar", "rebuild"]

ORTHONORMAL_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)
MAX_ITERATIONS = 40
"""Björck's cap per projection: measured at width 512, 2 iterations after an Adam-like step
of 1e-3 per entry, 6 after 1e-2, 22-30 after 1e-1."""


def tolerance_for(matrix: Tensor) -> float:
    """Björck's stopping tolerance on ||W^T W - I||_inf for ``matrix``: n * eps for the
    n x n Gram, about 10x the rounding floor of its row sums (measured 4e-6 at n = 512 in
    float32), so it is reachable; every singular value then lies within it of 1."""
    return max(min(matrix.shape), 8) * torch.finfo(matrix.dtype).eps


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
def bjorck(
    layer: nn.Module, tolerance: float | None = None, max_iterations: int = MAX_ITERATIONS
) -> int:
    """Björck-orthonormalise the weight in place; returns the iterations it took.

    The iteration converges for singular values in (0, sqrt(3)) and maps a value near
    sqrt(3) close to 0. ||W^T W||_inf bounds sigma_max^2; where it exceeds 2 the weight
    is divided by sqrt(bound / 2), so sigma_max <= sqrt(2) for certain (one optimiser
    step at lr 1e-2 can leave sigma_max far above sqrt(3)); a weight one small step
    from orthonormal is left unscaled and converges in one or two iterations. It then
    iterates until ||W^T W - I||_inf <= tolerance (``tolerance_for`` by default), which
    bounds every |sigma_i^2 - 1|, or ``max_iterations``.
    """
    m = _matrix(layer)
    tolerance = tolerance_for(m) if tolerance is None else tolerance
    tall = m.shape[0] >= m.shape[1]
    eye = torch.eye(min(m.shape), dtype=m.dtype, device=m.device)
    gram = m.T @ m if tall else m @ m.T
    bound = float(gram.abs().sum(dim=1).max())  # ||G||_inf >= ||G||_2 = sigma_max^2
    if bound > 2.0:
        m = m / math.sqrt(bound / 2)
        gram = gram / (bound / 2)
    iterations = 0
    while iterations < max_iterations:
        if float((gram - eye).abs().sum(dim=1).max()) <= tolerance:
            break
        step = 1.5 * eye - 0.5 * gram
        m = m @ step if tall else step @ m
        gram = m.T @ m if tall else m @ m.T
        iterations += 1
    _store(layer, m)
    return iterations


def orthonormal_layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, ORTHONORMAL_LAYERS)]


def rebuild(critic: nn.Module, group_size: int = 2, bias_scale: float = 1.0) -> None:
    """Swap activations for GroupSort (MaxMin for groups of two), orthonormalise every
    layer and multiply its bias by ``bias_scale``, in place."""
    if not swappable(critic):
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
    swap_activations(critic, group_size, "orthogonal")
    layers = orthonormal_layers(critic)
    if not layers:
        raise ConfigError("orthogonal found no Linear or Conv layer in the critic")
    for layer in layers:
        polar(layer)
        if layer.bias is not None:
            with torch.no_grad():
                layer.bias.mul_(bias_scale)


@tunable({"group_size": Choice((0, 2, 4, 16))}, by_family=WIDTHS)
@register(
    "orthogonal",
    description="By construction: orthonormal (Björck) weights + GroupSort activations",
    optimizer=ADAM,
    group="weights",
    # On 2-D points FullSort resolves the modes where MaxMin stays flat; zeroing the biases
    # as well made it worse (docs/constraints/orthogonal.md). Images and text keep MaxMin,
    # not measured there.
    family_params={"points": {"group_size": 0}},
)
class Orthogonal(Constraint):
    """``group_size``: GroupSort's group (2: MaxMin, 0: all channels, FullSort);
    ``bias_scale``: factor on PyTorch's default bias at attach (0: zero biases);
    ``bjorck_iterations``: the cap on Björck iterations per layer and step."""

    def __init__(
        self, group_size: int = 2, bias_scale: float = 1.0, bjorck_iterations: int = MAX_ITERATIONS
    ) -> None:
        if group_size < 0 or group_size == 1:
            raise ValueError(f"group_size must be 0 (all channels) or >= 2, got {group_size}")
        if not (math.isfinite(bias_scale) and bias_scale >= 0):
            raise ValueError(f"bias_scale must be a number >= 0, got {bias_scale:g}")
        if bjorck_iterations < 1:
            raise ValueError(f"bjorck_iterations must be >= 1, got {bjorck_iterations}")
        self.group_size = group_size
        self.bias_scale = bias_scale
        self.bjorck_iterations = bjorck_iterations

    requires_attach = True

    @attaches_critic
    def attach(self, critic: nn.Module) -> nn.Module:
        rebuild(critic, self.group_size, self.bias_scale)
        return critic

    def after_critic_step(self, critic: nn.Module) -> None:
        self.check_attached(critic, "after_critic_step")
        for layer in orthonormal_layers(critic):
            bjorck(layer, max_iterations=self.bjorck_iterations)
