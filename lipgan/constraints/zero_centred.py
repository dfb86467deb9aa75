"""Zero-centred gradient penalties: pull ||grad_x D|| towards 0 rather than 1.

- R1 (Mescheder et al. 2018): (gamma / 2) * E_real[||grad D(x)||^2], on real data;
- R2 (same paper): the same on generated data;
- zero-centred GP (Thanh-Tung et al. 2019): lambda * E[||grad D(x_hat)||^2] on
  real-fake interpolates.

With the Wasserstein loss the critic's scale is then set by the weight: for a linear
critic D(x) = w.x the optimum is w = (E[x_real] - E[x_fake]) / gamma (R1), so a
large weight gives a flat critic on data whose real-fake distances are small
(docs/constraints/r1.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipgan.constraints.base import (
    BatchRandom,
    Constraint,
    CriticBatch,
    check_penalty_call,
    check_samples,
    input_gradient,
    interpolate,
    non_negative,
    per_sample_squared_norm,
    random_source,
)
from lipgan.constraints.registry import ADAM, register
from lipgan.tune.space import PENALTY_WEIGHT, POINTS_PENALTY_WEIGHT, tunable

# A squared norm needs no sqrt, so no sqrt(0) guard: sum of squares per sample is exact
# and its gradient at a zero input gradient is 0.


def squared_gradient_norm(
    critic: nn.Module, x: Tensor, scaler: torch.amp.GradScaler | None = None
) -> Tensor:
    """||grad_x D(x)||^2 per sample, over all non-batch dimensions, differentiable."""
    _, grad = input_gradient(critic, x, create_graph=True, scaler=scaler)
    return per_sample_squared_norm(grad)


def r1_penalty(
    critic: nn.Module,
    real: Tensor,
    *,
    weight: float = 10.0,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """R1: (gamma / 2) * E[||grad D(x_real)||^2] with gamma = ``weight``; no randomness."""
    return _r1("r1_penalty", critic, real, weight, scaler, "real")


def _r1(
    caller: str,
    critic: nn.Module,
    x: Tensor,
    weight: float,
    scaler: torch.amp.GradScaler | None,
    name: str,
) -> Tensor:
    """R1 and R2: the same penalty at the samples ``x`` (called ``name`` by the caller)."""
    check_samples(caller, x, name=name)
    check_penalty_call(caller, critic, x, scaler, name=name)
    return (0.5 * non_negative("weight", weight)) * squared_gradient_norm(critic, x, scaler).mean()


def r2_penalty(
    critic: nn.Module,
    fake: Tensor,
    *,
    weight: float = 10.0,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """R2: (gamma / 2) * E[||grad D(x_fake)||^2], R1 on generated samples."""
    return _r1("r2_penalty", critic, fake, weight, scaler, "fake")


def zero_centred_gradient_penalty(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    *,
    weight: float = 10.0,
    generator: torch.Generator | BatchRandom | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """lambda * E[||grad D(x_hat)||^2] on real-fake interpolates (note: no 1/2)."""
    check_samples("zero_centred_gradient_penalty", real, fake)
    check_penalty_call("zero_centred_gradient_penalty", critic, real, scaler)
    x_hat = interpolate(real, fake, random_source(generator, real.device))
    return non_negative("weight", weight) * squared_gradient_norm(critic, x_hat, scaler).mean()


class _ZeroCentredPenalty(Constraint):
    needs_double_backward = True

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = non_negative("weight", weight)


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "r1",
    description="R1: (gamma/2) * E[||grad D(x_real)||^2], zero-centred on real data",
    optimizer=ADAM,
    group="gradients at real samples",
    family_params={"points": {"weight": 1.0}},
)
class R1Penalty(_ZeroCentredPenalty):
    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        return r1_penalty(critic, batch.real, weight=self.weight, scaler=batch.scaler)


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "r2",
    description="R2: (gamma/2) * E[||grad D(x_fake)||^2], zero-centred on generated data",
    optimizer=ADAM,
    group="gradients at generated samples",
    family_params={"points": {"weight": 1.0}},
)
class R2Penalty(_ZeroCentredPenalty):
    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        return r2_penalty(critic, batch.fake, weight=self.weight, scaler=batch.scaler)


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "gp-zero-centred",
    description="Zero-centred gradient penalty: lambda * E[||grad D(x_hat)||^2] on interpolates",
    optimizer=ADAM,
    group="interpolates",
    family_params={"points": {"weight": 0.5}},
)
class ZeroCentredGradientPenalty(_ZeroCentredPenalty):
    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        return zero_centred_gradient_penalty(
            critic,
            batch.real,
            batch.fake,
            weight=self.weight,
            generator=batch.rand,
            scaler=batch.scaler,
        )
