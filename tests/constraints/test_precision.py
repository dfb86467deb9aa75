"""Penalties under half precision and in float64: the numbers the fp32 formulas give.

- fp16 (emulated on the CPU: ``torch.autocast("cpu", dtype=torch.float16)`` with
  ``torch.amp.GradScaler("cpu")`` at its initial scale 65536) gives every double-backward
  penalty within a stated tolerance of fp32, never NaN;
- fd under bf16 matches fp32 for a critic with a large constant offset;
- in float64 every penalty equals a per-sample reference loop to 1e-12.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from lipgan import constraints
from lipgan.constraints import BatchRandom, CriticBatch, interpolate
from lipgan.constraints.dragan import perturb

N = 64
# Penalties that back-propagate through an input gradient (gn also needs double backward,
# but it wraps the critic instead of adding a penalty; see test_gradient_normalization.py).
DOUBLE_BACKWARD = [
    n
    for n in constraints.names()
    if constraints.get(n).factory.needs_double_backward
    and constraints.get(n).factory.penalty is not constraints.Constraint.penalty
]


def mlp_critic(dim: int = 2, width: int = 32, dtype=torch.float32, gain: float = 3.0) -> nn.Module:
    """A smooth MLP (no ReLU kink for rounding to flip a sample across); ``gain`` scales
    the weights up so scores and gradient norms are far from 0 and 1."""
    torch.manual_seed(0)
    critic = nn.Sequential(
        nn.Linear(dim, width), nn.Softplus(), nn.Linear(width, width), nn.Softplus(),
        nn.Linear(width, 1), nn.Flatten(0),
    ).to(dtype)  # fmt: skip
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(gain)
    return critic


def points(dtype=torch.float32, dim: int = 2) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    real = torch.randn(N, dim, generator=g, dtype=torch.float64)
    return real.to(dtype), (torch.randn(N, dim, generator=g, dtype=torch.float64) + 1).to(dtype)


def strategy(name: str) -> constraints.Constraint:
    return constraints.build(name, {name: constraints.get(name).defaults_for("images")})


def penalty(name, critic, real, fake, dtype=None, scaler=None, seed: int = 3) -> Tensor:
    """The strategy's penalty, under autocast to ``dtype`` when given."""
    rand = BatchRandom(torch.Generator().manual_seed(seed))
    context = torch.autocast("cpu", dtype=dtype, enabled=dtype is not None)
    with context:
        scores = critic(torch.cat([real, fake]))
        batch = CriticBatch(real, fake, scores[:N], scores[N:], rand, scaler)
        return strategy(name).penalty(critic, batch)


def test_there_are_double_backward_strategies() -> None:
    assert {"gp", "gp-one-sided", "r1", "dragan", "wgan-div"} <= set(DOUBLE_BACKWARD)


# fp16 rounds to 11 significant bits (unit roundoff 4.9e-4); each gradient norm goes
# through a few fp16 matmuls forward and back, so it is off by ~1e-3 relative, and a
# penalty that raises the norm (or norm - 1) to the power p is off by ~p times that.
# Measured here: at most 6e-4 for the squared penalties, 1.3e-3 for wgan-div (p = 6).
# (A ReLU critic adds samples whose rounding flips a unit across its kink: up to 1.5%.)
FP16_RTOL = {"wgan-div": 1e-2}


@pytest.mark.parametrize("name", DOUBLE_BACKWARD)
def test_fp16_penalty_with_a_fresh_scaler_matches_fp32(name: str) -> None:
    critic = mlp_critic()
    real, fake = points()
    expected = penalty(name, critic, real, fake)
    scaler = torch.amp.GradScaler("cpu")
    assert scaler.get_scale() == 65536.0  # above fp16's max: the case that gave NaN
    got = penalty(name, critic, real, fake, torch.float16, scaler)
    assert expected.item() > 1  # a real value, not a trivially small one
    assert_close(got.float(), expected, rtol=FP16_RTOL.get(name, 3e-3), atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fd_under_half_precision_matches_fp32_with_a_large_critic_offset(dtype) -> None:
    # Scores near 300 keep ~2-3 significant digits in bf16: the difference of two rounded
    # scores was noise (0.447 against 0.0925 in fp32). fd now scores in float32.
    critic = mlp_critic(gain=0.5)
    with torch.no_grad():
        critic[4].bias.fill_(300.0)
    real, fake = points()
    expected = penalty("fd", critic, real, fake)
    got = penalty("fd", critic, real, fake, dtype)
    assert_close(got, expected, rtol=1e-5, atol=1e-7)


# --- float64: the penalties against a per-sample reference loop ----------------------------


def reference_norms(critic: nn.Module, x: Tensor) -> Tensor:
    """||grad_x D(x_i)|| one sample at a time, float64 throughout."""
    norms = []
    for row in x:
        xi = row.unsqueeze(0).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(xi).sum(), xi)
        norms.append(torch.linalg.vector_norm(grad))
    return torch.stack(norms)


def reference_fd_slopes(critic: nn.Module, real: Tensor, fake: Tensor, seed: int) -> Tensor:
    eps = BatchRandom(torch.Generator().manual_seed(seed)).uniform(N)
    slopes = []
    for r, f, e in zip(real, fake, eps, strict=True):
        x1 = f + e.double() * (r - f)
        x2 = r if e < 0.5 else f
        d = critic(torch.stack([x1]))[0] - critic(torch.stack([x2]))[0]
        slopes.append(d.abs() / torch.linalg.vector_norm(x1 - x2))
    return torch.stack(slopes)


def reference_penalty(name: str, critic: nn.Module, real: Tensor, fake: Tensor, seed: int):
    params = constraints.get(name).defaults_for("images")
    weight = params["weight"]
    rand = BatchRandom(torch.Generator().manual_seed(seed))
    if name == "fd":
        return weight * (reference_fd_slopes(critic, real, fake, seed) - 1).pow(2).mean()
    if name == "dragan":
        x = perturb(real, rand, params["noise_scale"])
    elif name in ("r1", "r2"):
        x = real if name == "r1" else fake
    else:
        x = interpolate(real, fake, rand)
    norm = reference_norms(critic, x)
    return {
        "gp": lambda: weight * (norm - 1).pow(2).mean(),
        "gp-one-sided": lambda: weight * torch.relu(norm - 1).pow(2).mean(),
        "dragan": lambda: weight * (norm - 1).pow(2).mean(),
        "gp-zero-centred": lambda: weight * norm.pow(2).mean(),
        "r1": lambda: 0.5 * weight * norm.pow(2).mean(),
        "r2": lambda: 0.5 * weight * norm.pow(2).mean(),
        "wgan-div": lambda: weight * norm.pow(params.get("power", 6.0)).mean(),
    }[name]()


@pytest.mark.parametrize("name", [*DOUBLE_BACKWARD, "fd"])
def test_float64_penalty_equals_a_per_sample_loop_to_1e_12(name: str) -> None:
    critic = mlp_critic(dim=3, dtype=torch.float64, gain=2.5)
    real, fake = points(torch.float64, dim=3)
    got = penalty(name, critic, real, fake)
    expected = reference_penalty(name, critic, real, fake, seed=3)
    assert got.dtype == torch.float64
    assert expected.item() > 1e-3
    assert_close(got, expected, rtol=1e-12, atol=1e-12)
