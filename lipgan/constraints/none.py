"""No Lipschitz constraint: a plain WGAN critic (the baseline every strategy is compared to)."""

from __future__ import annotations

from lipgan.constraints.base import Constraint
from lipgan.constraints.registry import ADAM, register


@register(
    "none",
    description="No constraint: the critic is unbounded (baseline; expect divergence)",
    optimizer=ADAM,
)
class NoConstraint(Constraint):
    """Every hook does nothing."""
