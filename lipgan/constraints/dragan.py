"""DRAGAN-style gradient penalty around real data (Kodali et al. 2017).

The penalty of WGAN-GP, lambda * E[(||grad D(x_p)|| - 1)^2], taken at points near
the real data instead of on real-fake lines. The perturbation follows the authors'
released code exactly:

    x_p = x + alpha * c * std(x) * u,    u ~ U[0, 1) per element,  alpha ~ U[0, 1) per sample

with std(x) the population standard deviation of every element of the real batch
(numpy's ``minibatch.std()``; over the global batch in data-parallel runs) and c = 0.5,
the ``noise_scale`` parameter (not named ``c``: that name belongs to ``--clip``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lipgan.constraints.base import (
    BatchRandom,
    Constraint,
    CriticBatch,
    check_penalty_call,
    check_samples,
    input_gradient,
    non_negative,
    per_sample_norm,
    random_source,
)
from lipgan.constraints.gradient_penalty import TOY_WEIGHT
from lipgan.constraints.registry import ADAM, register
from lipgan.tune.space import PENALTY_WEIGHT, POINTS_PENALTY_WEIGHT, tunable


def batch_std(x: Tensor, rand: BatchRandom) -> Tensor:
    """Population std of all elements of the global batch (every process's shard).

    Summed across processes so N processes with B/N samples each use the std one process
    with B samples uses (the data-parallel exactness BatchRandom guarantees for draws).
    """
    flat = x.detach().double().flatten()
    stats = torch.stack([flat.sum(), flat.pow(2).sum(), flat.new_tensor(flat.numel())])
    if rand.world > 1 and dist.is_initialized():
        dist.all_reduce(stats, op=dist.ReduceOp.SUM)
    total, squares, count = stats
    mean = total / count
    return (squares / count - mean * mean).clamp_min(0).sqrt().to(x.dtype)


def perturb(real: Tensor, rand: BatchRandom, c: float) -> Tensor:
    """x + alpha * c * std(x) * u: u per element, then alpha per sample (draw order fixed)."""
    n = real.shape[0]
    u = rand.uniform(n, *real.shape[1:]).to(real.dtype)
    alpha = rand.uniform(n, *([1] * (real.dim() - 1))).to(real.dtype)
    return real + alpha * (c * batch_std(real, rand)) * u


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "dragan",
    description="DRAGAN: lambda * E[(||grad D(x_p)|| - 1)^2] at points perturbed around real data",
    optimizer=ADAM,
    group="gradients at real samples",
    family_params=TOY_WEIGHT,
)
class DraganPenalty(Constraint):
    needs_double_backward = True

    def __init__(self, weight: float = 10.0, noise_scale: float = 0.5) -> None:
        self.weight = non_negative("weight", weight)
        self.noise_scale = non_negative("noise_scale", noise_scale)

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        return dragan_penalty(
            critic,
            batch.real,
            weight=self.weight,
            noise_scale=self.noise_scale,
            generator=batch.rand,
            scaler=batch.scaler,
        )


def dragan_penalty(
    critic: nn.Module,
    real: Tensor,
    *,
    weight: float = 10.0,
    noise_scale: float = 0.5,
    generator: torch.Generator | BatchRandom | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """lambda * E[(||grad D(x_p)|| - 1)^2] at x_p perturbed around ``real`` (see above).

    The ``dragan`` strategy calls this function; ``generator`` as in ``gradient_penalty``.
    """
    check_samples("dragan_penalty", real)
    check_penalty_call("dragan_penalty", critic, real, scaler)
    non_negative("weight", weight)
    rand = random_source(generator, real.device)
    x_p = perturb(real, rand, non_negative("noise_scale", noise_scale))
    _, grad = input_gradient(critic, x_p, create_graph=True, scaler=scaler)
    return weight * (per_sample_norm(grad) - 1).pow(2).mean()
