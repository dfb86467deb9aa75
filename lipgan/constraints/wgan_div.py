"""WGAN-div (Wu et al. 2018): k * E[||grad D(x_hat)||^p] on real-fake interpolates.

The paper's critic minimises E[D(real)] - E[D(fake)] + k E[||grad||^p], the negation of
lipgan's L_D = E[D(fake)] - E[D(real)]. The penalty depends on ||grad D|| only, which is
the same for D and -D, so lipgan's critic is the paper's critic negated and every
update is identical (docs/constraints/wgan-div.md). Defaults k = 2, p = 6 (the paper's).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lipgan.constraints.base import (
    BatchRandom,
    Constraint,
    CriticBatch,
    check_number,
    check_penalty_call,
    check_samples,
    non_negative,
)
from lipgan.constraints.gradient_penalty import interpolate_gradient_norm
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ArgumentError
from lipgan.tune.space import PENALTY_WEIGHT, Choice, tunable


def check_power(weight: float, power: float) -> None:
    """The paper's conditions: k >= 0 and p > 1."""
    non_negative("weight (k)", weight)
    if not check_number("power (p)", power) > 1:
        raise ArgumentError(f"power (p) must be > 1, got {power:g}")


def wgan_div_penalty(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    *,
    weight: float = 2.0,
    power: float = 6.0,
    generator: torch.Generator | BatchRandom | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """k * E[||grad D(x_hat)||^p] on real-fake interpolates (``weight`` is k, ``power`` p).

    The ``wgan-div`` strategy calls this function; ``generator`` as in ``gradient_penalty``.
    """
    check_samples("wgan_div_penalty", real, fake)
    check_penalty_call("wgan_div_penalty", critic, real, scaler)
    check_power(weight, power)
    norm = interpolate_gradient_norm(critic, real, fake, generator=generator, scaler=scaler)
    return weight * norm.pow(power).mean()


@tunable({**PENALTY_WEIGHT, "power": Choice((2.0, 4.0, 6.0))})
@register(
    "wgan-div",
    description="WGAN-div: k * E[||grad D(x_hat)||^p] on interpolates (k=2, p=6)",
    optimizer=ADAM,
    group="interpolates",
)
class WassersteinDivergencePenalty(Constraint):
    needs_double_backward = True

    def __init__(self, weight: float = 2.0, power: float = 6.0) -> None:
        check_power(weight, power)
        self.weight = weight
        self.power = power

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        return wgan_div_penalty(
            critic,
            batch.real,
            batch.fake,
            weight=self.weight,
            power=self.power,
            generator=batch.rand,
            scaler=batch.scaler,
        )
