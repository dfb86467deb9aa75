"""Why a strategy wins: the numbers behind the paper's Figure 1, measured on a critic.

Every measurement here takes a critic (and samples) and nothing else, so the same code
serves ``lipgan compare`` (many runs), ``lipgan diagnose RUN`` (one finished run) and
the critic-only mode (no generator at all):

- ``layer_gradient_norms``: ||dL_D/dW_k|| per sample for every weight tensor W_k of the
  critic, input to output. Under weight clipping these shrink or grow geometrically with depth
  (paper, Fig. 1 left); under a gradient penalty they stay within an order of magnitude.
- ``critic_weights`` / ``fraction_at_bound``: clipped weights pile up at +-c (Fig. 1 right).
- ``interpolate_grad_norms``: ||grad_x D(x_hat)|| on real-fake interpolates, the quantity
  the gradient penalty pulls to 1 (also the engine's ``lipschitz/grad_norm_*`` metrics).
- ``lipschitz_estimate``: max |D(x) - D(y)| / ||x - y|| over sampled pairs, a lower bound
  on the critic's true Lipschitz constant.
- ``certified.lipschitz_bounds``: the certified upper bound (product of per-layer operator
  norms) beside the largest input-gradient norm found (lower bound).
- ``w1_check``: the critic's estimate E[D(real)] - E[D(fake)] on two fixed point sets
  beside their exact W1 (optimal assignment): a 1-Lipschitz critic reaches at most the
  exact value, so the fraction it reaches says whether the critic is expressive enough
  before the generator is blamed.

``lipgan.compare.figures`` draws them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom
from lipgan.certified import LipschitzBounds, lipschitz_bounds
from lipgan.constraints.base import input_gradient, interpolate, per_sample_norm
from lipgan.data.toy import exact_w1

AT_BOUND_TOLERANCE = 1e-3
"""A weight counts as 'at +-c' when it lies within this fraction of c of the bound."""


# --- measurements ---------------------------------------------------------------------------


def weight_parameters(critic: nn.Module) -> list[tuple[str, Tensor]]:
    """The critic's weight tensors (matrices and kernels, not biases), input to output.

    Parameters are registered in forward order by every lipgan architecture, so the
    list index is the layer's depth.
    """
    return [(name, p) for name, p in critic.named_parameters() if p.dim() >= 2]


def layer_gradient_norms(
    critic: nn.Module, real: Tensor, fake: Tensor, samples: int = 16
) -> list[tuple[str, float]]:
    """(weight name, mean over samples of ||d loss_i / dW||), input layer first.

    loss_i is sample i's term of the unpenalised critic loss: D(fake_i) for a generated
    sample, -D(real_i) for a real one. Per sample, not on the batch mean: on the mean
    E[D(fake)] - E[D(real)] the input-independent part of every layer's gradient cancels
    between the two sets, which scales all layers alike and hides the geometric
    decay or growth with depth that vanishing/exploding gradients are about. The
    penalty is left out so every strategy is measured on the same quantity.
    """
    params = weight_parameters(critic)
    if not params:
        return []
    tensors = [p for _, p in params]
    totals = torch.zeros(len(tensors), dtype=torch.float64)
    count = 0
    for batch, sign in ((fake[:samples], 1.0), (real[:samples], -1.0)):
        for i in range(batch.shape[0]):
            loss = sign * critic(batch[i : i + 1]).sum()
            grads = torch.autograd.grad(loss, tensors, allow_unused=True)
            totals += torch.tensor(
                [0.0 if g is None else float(g.detach().double().norm()) for g in grads]
            )
            count += 1
    means = (totals / max(count, 1)).tolist()
    return [(name, value) for (name, _), value in zip(params, means, strict=True)]


def critic_weights(critic: nn.Module) -> np.ndarray:
    """Every weight (not bias) of the critic as one flat float array."""
    params = weight_parameters(critic)
    if not params:
        return np.zeros(0, dtype=np.float32)
    return torch.cat([p.detach().float().flatten().cpu() for _, p in params]).numpy()


def fraction_at_bound(
    weights: np.ndarray, c: float, tolerance: float = AT_BOUND_TOLERANCE
) -> float:
    """Fraction of ``weights`` with |w| >= c * (1 - tolerance): piled up at +-c."""
    if len(weights) == 0:
        return float("nan")
    return float((np.abs(weights) >= c * (1 - tolerance)).mean())


def interpolate_grad_norms(
    critic: nn.Module, real: Tensor, fake: Tensor, rand: BatchRandom
) -> Tensor:
    """||grad_x D(x_hat)|| per sample on interpolates, one eps per sample drawn from ``rand``."""
    x_hat = interpolate(real, fake.to(real.dtype), rand)
    _, grad = input_gradient(critic, x_hat, create_graph=False)
    # No 1e-6 floor (per_sample_norm's NaN guard): a dead clipped critic shows its true size.
    return grad.detach().flatten(1).double().norm(dim=1)


def lipschitz_estimate(
    critic: nn.Module, points: Tensor, seed: int, pairs: int = 4096, step: float = 1e-2
) -> float:
    """max |D(x) - D(y)| / ||x - y|| over random pairs and over short steps along grad D.

    Random pairs probe the critic globally; a step of ``step`` (relative to the points'
    spread) along each point's own gradient direction probes where the slope is
    steepest, so a linear critic D(x) = w.x gives exactly ||w||. Either way the result
    is a lower bound on the true constant: a 1-Lipschitz critic gives <= 1.
    """
    g = torch.Generator().manual_seed(seed)
    # In float64 on a copy: a dead clipped critic's differences (~1e-11 on values ~1e-2)
    # are below float32's resolution and would read as exactly 0.
    critic = copy.deepcopy(critic).double()
    points = points.detach().double()
    n = points.shape[0]
    with torch.no_grad():
        i = torch.randint(n, (pairs,), generator=g).to(points.device)
        j = torch.randint(n, (pairs,), generator=g).to(points.device)
        keep = i != j
        x, y = points[i[keep]], points[j[keep]]
        distance = per_sample_norm(x - y)
        keep = distance > 1e-6
        ratios = [((critic(x[keep]) - critic(y[keep])).abs().float() / distance[keep]).flatten()]
    _, grad = input_gradient(critic, points, create_graph=False)
    norm = per_sample_norm(grad)
    moving = norm > 1e-12
    if moving.any():
        spread = float(per_sample_norm(points - points.mean(0, keepdim=True)).mean())
        h = step * max(spread, 1e-3)
        view = (-1,) + (1,) * (points.dim() - 1)
        direction = grad[moving] / norm[moving].view(view).to(grad.dtype)
        start = points[moving]
        with torch.no_grad():
            rise = (critic(start + h * direction) - critic(start)).abs().float() / h
        ratios.append(rise.flatten())
    values = torch.cat(ratios)
    values = values[torch.isfinite(values)]
    return float(values.max()) if len(values) else float("nan")


@dataclass(frozen=True)
class W1Check:
    """A critic's W1 estimate on two fixed point sets beside their exact W1."""

    estimate: float
    """E[D(real)] - E[D(fake)] over the two sets."""
    exact: float
    """The exact W1 between the same two sets (optimal assignment)."""

    @property
    def fraction(self) -> float:
        """estimate / exact: at most 1 for a 1-Lipschitz critic, 1 for an optimal one."""
        return self.estimate / self.exact if self.exact > 0 else math.nan


def w1_check(critic: nn.Module, real: Tensor, fake: Tensor) -> W1Check:
    """How close ``critic``'s estimate comes to the exact W1 between ``real`` and ``fake``
    (equal sizes; the assignment costs O(n^3), so keep n to a few thousand)."""
    was_training = critic.training
    critic.eval()
    try:
        with torch.no_grad():
            estimate = float(critic(real).mean() - critic(fake.to(real.dtype)).mean())
    finally:
        critic.train(was_training)
    flat = [t.detach().double().flatten(1).cpu().numpy() for t in (real, fake)]
    return W1Check(estimate, exact_w1(*flat))


@dataclass
class CriticReport:
    """What the diagnostics measured on one critic (one strategy)."""

    layer_names: list[str]
    layer_norms: list[float]
    weights: np.ndarray
    interp_norms: np.ndarray
    lipschitz: float
    clip_value: float | None = None
    at_bound: float | None = None
    """Fraction of weights within 1e-3 * c of +-c; None when the run does not clip."""
    bounds: LipschitzBounds | None = None
    """Certified (product of layer norms) and empirical (largest gradient) constants."""
    extra: dict[str, Any] = field(default_factory=dict)

    def numbers(self) -> dict[str, Any]:
        """The plain-data part, for results.json."""
        interp = self.interp_norms
        return {
            "layer_gradient_norms": dict(zip(self.layer_names, self.layer_norms, strict=True)),
            "grad_norm_interp_mean": _num(interp.mean()) if len(interp) else None,
            "grad_norm_interp_std": _num(interp.std()) if len(interp) else None,
            "lipschitz_estimate": _num(self.lipschitz),
            "clip_value": self.clip_value,
            "weights_at_bound": None if self.at_bound is None else _num(self.at_bound),
            "weight_count": len(self.weights),
            "lipschitz_certified": _num(self.bounds.certified)
            if self.bounds and self.bounds.certified is not None
            else None,
            "lipschitz_max_grad_norm": _num(self.bounds.empirical) if self.bounds else None,
        }


def _num(value: Any) -> float | None:
    """12 significant digits (not decimals: a vanishing gradient of 1e-12 must stay > 0)."""
    value = float(value)
    return float(f"{value:.12g}") if math.isfinite(value) else None


def examine_critic(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    seed: int,
    clip_value: float | None = None,
) -> CriticReport:
    """Every diagnostic of one critic on one batch of real and generated samples."""
    was_training = critic.training
    critic.eval()
    try:
        layers = layer_gradient_norms(critic, real, fake)
        device = str(real.device)
        rand = BatchRandom(torch.Generator().manual_seed(seed), device=device)
        interp = interpolate_grad_norms(critic, real, fake, rand)
        rand = BatchRandom(torch.Generator().manual_seed(seed + 1), device=device)
        x_hat = interpolate(real, fake.to(real.dtype), rand)
        points = torch.cat([real, fake.to(real.dtype), x_hat])
        lipschitz = lipschitz_estimate(critic, points, seed)
    finally:
        critic.train(was_training)
    weights = critic_weights(critic)
    return CriticReport(
        layer_names=[name for name, _ in layers],
        layer_norms=[norm for _, norm in layers],
        weights=weights,
        interp_norms=interp.float().cpu().numpy(),
        lipschitz=lipschitz,
        clip_value=clip_value,
        at_bound=None if clip_value is None else fraction_at_bound(weights, clip_value),
        bounds=lipschitz_bounds(critic, points, seed),
    )
