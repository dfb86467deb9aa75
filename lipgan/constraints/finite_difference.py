"""Finite-difference penalty: the gradient penalty without a double backward.

Two points on the same real-fake line; the slope |D(x1) - D(x2)| / ||x1 - x2||
replaces the gradient norm. Only first-order gradients are needed, so it works where
double backward is unavailable (torch.compile) or slow.

x1 = eps * real + (1 - eps) * fake with eps ~ U[0, 1] per sample, and x2 is the end of
the line farther from x1 (real when eps < 1/2, else fake). The critic's score at x2 is
already in the batch (the loss needed it), so the penalty costs one extra forward and
first-order backward of n samples, and |x1 - x2| >= ||real - fake|| / 2 keeps the
quotient well conditioned.

Under autocast (bf16, fp16) both scores are recomputed in float32 with autocast off: the
quotient subtracts two scores, and nothing pins the critic's constant offset, so once
|D| is large two separately rounded half-precision scores leave only rounding noise in
the difference (offset 300 in bf16: penalty 0.447 against 0.0925 in fp32). That costs
one more forward pass of n samples, under low precision only.
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
    non_negative,
    per_sample_norm,
    scores_of,
)
from lipgan.constraints.gradient_penalty import TOY_WEIGHT
from lipgan.constraints.registry import ADAM, register
from lipgan.tune.space import PENALTY_WEIGHT, POINTS_PENALTY_WEIGHT, tunable


@tunable(PENALTY_WEIGHT, by_family=POINTS_PENALTY_WEIGHT)
@register(
    "fd",
    description="Finite-difference penalty: lambda * E[(|D(x1)-D(x2)| / ||x1-x2|| - 1)^2]",
    optimizer=ADAM,
    group="interpolates",
    family_params=TOY_WEIGHT,
)
class FiniteDifferencePenalty(Constraint):
    def __init__(self, weight: float = 10.0) -> None:
        self.weight = non_negative("weight", weight)

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        real, fake = batch.real, batch.fake
        n = real.shape[0]
        eps = batch.rand.uniform(n)
        view = (n,) + (1,) * (real.dim() - 1)
        x1 = torch.lerp(fake, real, eps.view(view).to(real.dtype))
        towards_real = eps < 0.5
        device = real.device.type
        if torch.is_autocast_enabled(device):
            x2 = torch.where(towards_real.view(view), real, fake)
            with torch.autocast(device, enabled=False):
                both = critic(torch.cat([x1, x2]))
            d1, d2 = scores_of(both, 2 * n, "the critic's output").chunk(2)
        else:
            d1 = scores_of(critic(x1), n, "the critic's output")
            d2 = torch.where(towards_real, batch.critic_real, batch.critic_fake)
        # |x1 - x2| = distance in eps to the chosen end, times ||real - fake||.
        gap = torch.where(towards_real, 1 - eps, eps)
        distance = gap * per_sample_norm(real - fake)
        slope = (d1 - d2).abs() / distance.clamp_min(1e-12)
        return self.weight * (slope - 1).pow(2).mean()


def finite_difference_penalty(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    *,
    weight: float = 10.0,
    critic_real: Tensor | None = None,
    critic_fake: Tensor | None = None,
    generator: torch.Generator | BatchRandom | None = None,
) -> Tensor:
    """The ``fd`` strategy's penalty from plain tensors (the strategy's own code).

    It reads D at the line's ends: pass the scores your loss computed as ``critic_real``
    and ``critic_fake`` (with gradient), or they are computed here. ``generator`` as in
    ``gradient_penalty``.
    """
    check_samples("finite_difference_penalty", real, fake)
    check_penalty_call("finite_difference_penalty", critic, real)
    return FiniteDifferencePenalty(weight).penalty_on(
        critic, real, fake, critic_real=critic_real, critic_fake=critic_fake, generator=generator
    )
