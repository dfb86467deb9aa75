"""Certified and empirical Lipschitz constants of a critic, side by side.

- ``certified_bound``: an upper bound, the product of per-layer operator norms along the
  critic's structure (a residual block x + s h(x) counts 1 + s Lip(h)). Linear layers:
  the exact spectral norm (SVD). Convolutions: the operator norm at the input shape
  the layer actually sees, exact (SVD of the conv's matrix) up to 4M matrix entries
  (every lipgan conv on digits and text), else by power iteration on conv^T conv,
  which approaches from below: for large images the last digits are not a guarantee.
  ReLU, leaky ReLU (slope <= 1), GroupSort, identity, flatten: 1. Batch norm (eval
  mode): its affine map, max |gamma| / sqrt(running_var + eps). Layer/group norm: only
  the trivial max |gamma| / sqrt(eps), which no useful critic approaches. A module may
  state its own bound with a method ``certified_lipschitz(bound) -> float | None``
  (``bound`` bounds a child; None: there is none), as GroupSort and the gradient-
  normalised critic do. A layer without a bound makes the result None, with the reason.
- ``largest_gradient_norm``: a lower bound, the largest ||grad_x D(x)|| found on the
  given points and by hill-climbing the gradient norm from them (gradient ascent
  where the critic is curved; random steps where it is piecewise linear and the
  gradient of the gradient norm vanishes).

For an orthogonal + GroupSort critic with square layers both are 1 and the gap closes;
for a spectrally normalised ReLU critic the product is 1 while the critic's real slope
is far smaller; for a clipped or penalised critic the product can be orders of
magnitude above the truth.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipgan.constraints.base import input_gradient, per_sample_norm

ONE_LIPSCHITZ = (nn.ReLU, nn.Identity, nn.Flatten, nn.Tanh, nn.Dropout)


class Unbounded(Exception):
    """A layer ``certified_bound`` has no bound for; the message says which and why."""


@dataclass
class LipschitzBounds:
    certified: float | None
    """Upper bound: product of per-layer operator norms (None: some layer has none)."""
    empirical: float
    """Lower bound: the largest input-gradient norm found."""
    notes: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """certified / empirical: 1 when the bound is tight."""
        if self.certified is None or not self.empirical > 0:
            return None
        return self.certified / self.empirical

    def describe(self) -> str:
        certified = "none" if self.certified is None else f"{self.certified:.4g}"
        gap = "" if self.gap is None else f" (gap x{self.gap:.3g})"
        reason = f"; {self.notes[0]}" if self.certified is None and self.notes else ""
        return (
            f"Lipschitz: certified <= {certified}, empirical >= {self.empirical:.4g}{gap}{reason}"
        )


DENSE_LIMIT = 4_000_000
"""Convs whose matrix has at most this many entries get an exact SVD; larger ones power
iteration."""


def conv_operator_norm(conv: nn.Module, shape: torch.Size) -> float:
    """||conv|| without bias at input shape (C, ...): exact (SVD of the conv's matrix)
    when that matrix is small, else by power iteration on conv^T conv."""
    weight = conv.weight.detach().double()
    forward = {4: F.conv2d, 3: F.conv1d}[weight.dim()]

    def apply(v: Tensor) -> Tensor:
        return forward(v, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)

    size = math.prod(shape)
    out_size = math.prod(apply(torch.zeros(1, *shape, dtype=torch.float64)).shape)
    if size * out_size <= DENSE_LIMIT:
        basis = torch.eye(size, dtype=torch.float64, device=weight.device).view(-1, *shape)
        return float(torch.linalg.svdvals(apply(basis).flatten(1))[0])
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, *shape, generator=g, dtype=torch.float64).to(weight.device)
    value = previous = 0.0
    for _ in range(500):
        v = (v / v.norm()).requires_grad_(True)
        (v,) = torch.autograd.grad(0.5 * apply(v).pow(2).sum(), v)  # conv^T conv v
        value = math.sqrt(float(v.norm()))
        if abs(value - previous) <= 1e-9 * value:
            break
        previous = value
    return value


def _norm_bound(layer: nn.Module, notes: list[str]) -> float:
    gamma = layer.weight.detach().abs().max() if layer.weight is not None else torch.tensor(1.0)
    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.running_var is not None:
        return float((gamma / (layer.running_var + layer.eps).sqrt()).max())
    notes.append(f"{type(layer).__name__}: only the trivial bound |gamma| / sqrt(eps)")
    return float(gamma / math.sqrt(layer.eps))


def _composite(module: nn.Module, bound: Callable[[nn.Module], float], shapes) -> float | None:
    """Bounds of lipgan's critic classes, from their forward's structure (None: not one)."""
    from lipgan.models import conv, mlp, resnet, text

    if isinstance(module, mlp.MLPCritic):
        return bound(module.net)
    if isinstance(module, conv.DCGANCritic):
        return bound(module.net) * bound(module.score)
    if isinstance(module, text.TextCritic):  # the transpose is an isometry
        return bound(module.inp) * bound(module.blocks) * bound(module.score)
    if isinstance(module, text.ResBlock1d):
        return 1 + text.RESIDUAL_SCALE * bound(module.net)
    if isinstance(module, resnet.CriticBlock):
        branch = bound(module.conv2) * bound(module.norm2) * bound(module.conv1)
        branch *= 1 if module.first else bound(module.norm1)
        return (bound(module.shortcut) + branch) * (0.5 if module.down else 1)  # 2x2 mean
    if isinstance(module, resnet.ResNetCritic):  # ReLU, then the mean over H x W
        height, width = shapes[module.blocks][-2:]
        return bound(module.blocks) * bound(module.score) / math.sqrt(height * width)
    return None


def certified_bound(critic: nn.Module, example: Tensor) -> tuple[float | None, list[str]]:
    """(product of per-layer operator norms, notes); None when a layer has no bound.

    ``example`` (one or more samples) fixes the input shape every conv sees.
    """
    shapes: dict[nn.Module, torch.Size] = {}

    def record(module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            shapes[module] = inputs[0].shape[1:]
        elif isinstance(output, Tensor):  # a block's output shape (ResNet's final mean)
            shapes[module] = output.shape[1:]

    hooks = [m.register_forward_hook(record) for m in critic.modules()]
    try:
        with torch.enable_grad():  # a gradient-normalised critic differentiates inside
            critic(example[:1])
    finally:
        for hook in hooks:
            hook.remove()
    notes: list[str] = []

    def bound(module: nn.Module) -> float:
        if hasattr(module, "certified_lipschitz"):
            stated = module.certified_lipschitz(bound)
            if stated is None:
                raise Unbounded(f"a {type(module).__name__} has no global Lipschitz bound")
            return float(stated)
        known = _composite(module, bound, shapes)
        if known is not None:
            return known
        if isinstance(module, nn.Sequential):
            return math.prod(bound(child) for child in module)
        if isinstance(module, nn.Linear):
            return float(torch.linalg.matrix_norm(module.weight.detach().double(), ord=2))
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            return conv_operator_norm(module, shapes[module])
        if isinstance(module, nn.LeakyReLU):
            return max(1.0, abs(module.negative_slope))
        if isinstance(module, ONE_LIPSCHITZ):
            return 1.0
        if isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.modules.batchnorm._BatchNorm):
            return _norm_bound(module, notes)
        raise Unbounded(f"no bound for a {type(module).__name__} layer")

    try:
        return bound(critic), notes
    except Unbounded as exc:
        return None, [str(exc)]


def largest_gradient_norm(
    critic: nn.Module, points: Tensor, steps: int = 20, climbers: int = 32, seed: int = 0
) -> float:
    """max ||grad_x D(x)|| over ``points`` and a hill-climb of the norm from the
    ``climbers`` points where it is largest."""
    critic = copy.deepcopy(critic).double()
    x = points.detach().double()
    spread = float(per_sample_norm(x - x.mean(0, keepdim=True)).mean()) or 1.0
    g = torch.Generator().manual_seed(seed)
    view = (-1,) + (1,) * (x.dim() - 1)
    norm = _grad_norm(critic, x, create_graph=False).detach()
    best = float(norm.max())
    x = x[norm.argsort(descending=True)[:climbers]]
    for step in range(steps):
        x = x.detach().requires_grad_(True)
        current = _grad_norm(critic, x, create_graph=True)
        (ascent,) = torch.autograd.grad(current.sum(), x, allow_unused=True)
        noise = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
        if ascent is None:  # piecewise linear: the gradient norm has no gradient
            ascent = torch.zeros_like(noise)
        flat = (per_sample_norm(ascent) < 1e-12).view(view)
        direction = torch.where(flat, noise, ascent)
        direction = direction / per_sample_norm(direction).view(view).to(x.dtype)
        size = 0.05 * spread * 0.5 ** (step // 10)
        candidate = x.detach() + size * direction
        new = _grad_norm(critic, candidate, create_graph=False).detach()
        better = new > current.detach()
        x = torch.where(better.view(view), candidate, x.detach())
        best = max(best, float(new.max()))
    return best


def _grad_norm(critic: nn.Module, x: Tensor, create_graph: bool) -> Tensor:
    if not create_graph:
        x = x.detach().requires_grad_(True)
        _, grad = input_gradient(critic, x, create_graph=False)
        return per_sample_norm(grad).double()
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).clamp_min(1e-24).sqrt()


def lipschitz_bounds(critic: nn.Module, points: Tensor, seed: int = 0) -> LipschitzBounds:
    """The certified upper and the empirical lower bound of one critic on ``points``."""
    was_training = critic.training
    critic.eval()
    try:
        certified, notes = certified_bound(critic, points)
        empirical = largest_gradient_norm(critic, points, seed=seed)
    finally:
        critic.train(was_training)
    return LipschitzBounds(certified, empirical, notes)
