"""Weight clipping (Arjovsky et al. 2017): clamp every critic parameter into [-c, c]."""

from __future__ import annotations

import torch
from torch import nn

from lipgan.constraints.base import Constraint, check_number
from lipgan.constraints.registry import RMSPROP, register
from lipgan.errors import ArgumentError, ArgumentTypeError
from lipgan.tune.space import LogUniform, tunable


@tunable({"c": LogUniform(1e-3, 1.0)})  # compare_gan: c 10^U[-3, 0]
@register(
    "clip",
    description="Weight clipping: every critic parameter clamped into [-c, c] after each step",
    optimizer=RMSPROP,
    group="weights",
)
class WeightClipping(Constraint):
    def __init__(self, c: float = 0.01) -> None:
        if not check_number("c", c) > 0:
            raise ArgumentError(f"c must be > 0, got {c:g}")
        self.c = c

    def attach(self, critic: nn.Module) -> nn.Module:
        # Start inside the box so the first critic step already sees a clipped critic.
        self.after_critic_step(critic)
        return critic

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        params = [p for p in critic.parameters() if p.is_floating_point()]
        if params:
            torch._foreach_clamp_min_(params, -self.c)
            torch._foreach_clamp_max_(params, self.c)


def clip_weights(critic: nn.Module, c: float) -> nn.Module:
    """Clamp every floating-point parameter of ``critic`` into [-c, c], in place.

    Call it after every critic optimiser step; the ``clip`` strategy runs this same code.
    """
    if not isinstance(critic, nn.Module):
        raise ArgumentTypeError(
            f"clip_weights: critic must be an nn.Module, got {type(critic).__name__}"
        )
    WeightClipping(c).after_critic_step(critic)
    return critic
