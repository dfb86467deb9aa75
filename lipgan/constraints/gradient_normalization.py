"""Gradient normalisation (GN-GAN, Wu et al. ICCV 2021): the critic divided by its slope.

    f_hat(x) = f(x) / (||grad_x f(x)|| + |f(x)|)

For a piecewise-linear critic f (ReLU / leaky ReLU layers, no normalisation layer)
f_hat has input-gradient norm <= 1 wherever it is differentiable: inside every linear
piece, not only at sampled points, with no hyperparameter. It is *piecewise*
1-Lipschitz: where ||grad f|| changes between pieces f_hat can jump (|f_hat| < 1, so by
less than 2), which is why ``certified.certified_bound`` certifies no constant. The
price: every forward computes grad_x f (create_graph, so the loss back-propagates
through it), in critic and generator steps alike. The strategy returns a wrapper from
``attach``; the engine uses it for every critic call.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lipgan.constraints.base import Constraint, attaches_critic, per_sample_norm, scores_of
from lipgan.constraints.registry import ADAM, register
from lipgan.errors import ConfigError
from lipgan.tune.space import WIDTHS, tunable

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class GradientNormalizedCritic(nn.Module):
    """``critic`` with its output normalised by its own input gradient, per sample.

    Works under ``torch.no_grad`` too (plots, sampling): the gradient is then taken
    without a graph and the score returned detached.
    """

    def __init__(self, critic: nn.Module) -> None:
        super().__init__()
        self.critic = critic

    @torch.compiler.disable  # an input gradient inside forward: compile cannot trace it
    def forward(self, x: Tensor) -> Tensor:
        differentiable = torch.is_grad_enabled()
        with torch.enable_grad():
            # Keep x itself when it carries a graph (G(z) in a generator step), so the
            # generator's gradient flows through both f(x) and grad_x f(x).
            if not (differentiable and x.requires_grad):
                x = x.detach().requires_grad_(True)
            f = scores_of(self.critic(x), x.shape[0], "the critic's output")
            (grad,) = torch.autograd.grad(f.sum(), x, create_graph=differentiable)
            score = f / (per_sample_norm(grad).to(f.dtype) + f.abs())
        return score if differentiable else score.detach()

    def certified_lipschitz(self, bound: Callable[[nn.Module], float]) -> float | None:
        """None: ||grad f_hat|| <= 1 inside every linear piece of f, but f_hat jumps
        where ||grad f|| does (between pieces), so no global constant is certified."""
        return None


@tunable({}, by_family=WIDTHS)
@register(
    "gn",
    description="Gradient normalisation: D(x) / (||grad D(x)|| + |D(x)|), any critic (GN-GAN)",
    optimizer=ADAM,
)
class GradientNormalization(Constraint):
    # The critic loss itself back-propagates through an input gradient.
    needs_double_backward = True
    # Dropping attach's return value would train the raw, unconstrained critic.
    requires_attach = True

    @attaches_critic
    def attach(self, critic: nn.Module) -> nn.Module:
        if any(isinstance(m, BATCH_NORMS) for m in critic.modules()):
            raise ConfigError(
                "gn normalises each sample by its own gradient, and batch norm makes each "
                "score depend on the whole batch; use --critic-norm none or layer"
            )
        return GradientNormalizedCritic(critic)
