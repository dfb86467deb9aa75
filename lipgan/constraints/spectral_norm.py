"""Spectral normalisation of the critic's layers (Miyato et al. 2018).

Every Linear and Conv layer's weight W is replaced by W / sigma(W), with sigma(W) the
largest singular value estimated by power iteration. A plain stack of such layers and
ReLUs (the MLP critic) is 1-Lipschitz, with no extra forward pass (unlike a penalty);
convolutions, residual blocks and layer norm loosen or lose that bound
(``lipgan.models.lipschitz.sn_bound``, docs/constraints/sn.md). ``group_size`` other than
1 also swaps the critic's ReLUs for GroupSort (2: MaxMin, 0: FullSort), which keeps the
bound and, unlike ReLU, preserves the gradient norm through the activations.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrizations, parametrize

from lipgan.constraints.base import Constraint, attaches_critic
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ConfigError
from lipgan.models.groupsort import swap_activations, swappable
from lipgan.tune.space import WIDTHS, Choice, IntRange, tunable

NORMALISED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layer types whose weight gets the parametrisation (transposed convs are generator-side)."""


@tunable({"power_iterations": IntRange(1, 3), "group_size": Choice((1, 0, 2))}, by_family=WIDTHS)
@register(
    "sn",
    description="Spectral normalisation: each Linear/Conv weight divided by its top singular value",
    optimizer=ADAM,
    group="weights",
    # On 2-D points FullSort finds the modes ReLU misses (25gaussians 15.3 of 25 against
    # 0.3, 8gaussians 7.7 of 8 against 4.7; 3 seeds, docs/constraints/sn.md). Images and
    # text keep their ReLUs, not measured there.
    family_params={"points": {"group_size": 0}},
)
class SpectralNormalization(Constraint):
    """``power_iterations``: power-iteration steps per forward pass; ``group_size``: 1
    keeps the critic's activations, 2 swaps them for MaxMin, 0 for FullSort, n >= 2 for
    GroupSort in groups of n."""

    def __init__(self, power_iterations: int = 1, group_size: int = 1) -> None:
        if power_iterations < 1:
            raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
        if group_size < 0:
            raise ValueError(
                f"group_size must be 1 (keep ReLU), 0 (all channels) or >= 2, got {group_size}"
            )
        self.power_iterations = power_iterations
        self.group_size = group_size

    requires_attach = True

    @attaches_critic
    def attach(self, critic: nn.Module) -> nn.Module:
        """Parametrise every Linear/Conv weight; the critic's state_dict keys change to
        ``...parametrizations.weight.original`` (plus the power-iteration vectors), so a
        checkpoint loads only into a critic that was attached the same way."""
        layers = [m for m in critic.modules() if isinstance(m, NORMALISED_LAYERS)]
        if not layers:
            raise ConfigError(
                "sn found no Linear or Conv layer in the critic; use another --constraint"
            )
        if self.group_size != 1:
            if not swappable(critic):
                raise ConfigError(
                    f"sn.group_size cannot swap the activations of a {type(critic).__name__} "
                    "(the resnet critic applies F.relu inside forward); use sn.group_size 1 "
                    "or --architecture dcgan or mlp"
                )
            swap_activations(critic, self.group_size, "sn")
        for layer in layers:
            if parametrize.is_parametrized(layer, "weight"):
                raise ConfigError(
                    f"sn: a {type(layer).__name__} weight is already parametrised; "
                    "attach the strategy to a fresh critic"
                )
            parametrizations.spectral_norm(layer, n_power_iterations=self.power_iterations)
        return critic


def spectral_norm(critic: nn.Module, power_iterations: int = 1, group_size: int = 1) -> nn.Module:
    """Spectrally normalise every Linear/Conv weight of ``critic`` in place; returns it.

    ``group_size`` other than 1 also swaps its ReLUs for GroupSort (0: FullSort). Call it
    before building the critic's optimiser (the parameters change); the ``sn`` strategy's
    ``attach`` runs this same code.
    """
    SpectralNormalization(power_iterations, group_size).attach(critic)
    return critic
