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

from torch import Tensor, nn

from lipgan.constraints.base import (
    Constraint,
    CriticBatch,
    input_gradient,
    interpolate,
    non_negative,
    per_sample_squared_norm,
)
from lipgan.constraints.registry import ADAM, register

# A squared norm needs no sqrt, so no sqrt(0) guard: sum of squares per sample is exact
# and its gradient at a zero input gradient is 0.


def squared_gradient_norm(critic: nn.Module, x: Tensor, batch: CriticBatch) -> Tensor:
    """||grad_x D(x)||^2 per sample, over all non-batch dimensions, differentiable."""
    _, grad = input_gradient(critic, x, create_graph=True, scaler=batch.scaler)
    return per_sample_squared_norm(grad)


class _ZeroCentredPenalty(Constraint):
    needs_double_backward = True
    scale = 1.0
    """Constant in front of the weight (1/2 for R1/R2, the papers' gamma/2)."""

    def __init__(self, weight: float = 10.0) -> None:
        self.weight = non_negative("weight", weight)

    def points(self, batch: CriticBatch) -> Tensor:
        raise NotImplementedError

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor:
        squared = squared_gradient_norm(critic, self.points(batch), batch)
        return (self.scale * self.weight) * squared.mean()


@register(
    "r1",
    description="R1: (gamma/2) * E[||grad D(x_real)||^2], zero-centred on real data",
    optimizer=ADAM,
    group="gradients at real samples",
    family_params={"points": {"weight": 1.0}},
)
class R1Penalty(_ZeroCentredPenalty):
    scale = 0.5

    def points(self, batch: CriticBatch) -> Tensor:
        return batch.real


@register(
    "r2",
    description="R2: (gamma/2) * E[||grad D(x_fake)||^2], zero-centred on generated data",
    optimizer=ADAM,
    group="gradients at generated samples",
    family_params={"points": {"weight": 1.0}},
)
class R2Penalty(_ZeroCentredPenalty):
    scale = 0.5

    def points(self, batch: CriticBatch) -> Tensor:
        return batch.fake


@register(
    "gp-zero-centred",
    description="Zero-centred gradient penalty: lambda * E[||grad D(x_hat)||^2] on interpolates",
    optimizer=ADAM,
    group="interpolates",
    family_params={"points": {"weight": 0.5}},
)
class ZeroCentredGradientPenalty(_ZeroCentredPenalty):
    def points(self, batch: CriticBatch) -> Tensor:
        return interpolate(batch.real, batch.fake, batch.rand)
