"""R1, R2 and the zero-centred gradient penalty against closed forms.

With D(x) = a/2 ||x||^2 the input gradient is a*x, so each penalty and its derivative
in a are known exactly; the sample shape (n, 3, 4, 4) checks that the norm is taken
per sample over every non-batch dimension.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan.constraints.zero_centred import (
    R1Penalty,
    R2Penalty,
    ZeroCentredGradientPenalty,
)
from lipgan.errors import ConfigError

from critickit import QuadraticCritic, batch_for, squared_norms

SHAPE = (6, 3, 4, 4)
A = 0.7


def samples() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(11)
    return torch.randn(*SHAPE, generator=g), torch.randn(*SHAPE, generator=g) * 2 + 1


@pytest.mark.parametrize(
    ("strategy", "where"), [(R1Penalty(weight=3.0), "real"), (R2Penalty(weight=3.0), "fake")]
)
def test_r1_r2_are_half_gamma_mean_squared_gradient_norm(strategy, where: str) -> None:
    real, fake = samples()
    critic = QuadraticCritic(A)
    penalty = strategy.penalty(critic, batch_for(critic, real, fake, seed=0))
    points = real if where == "real" else fake
    mean_sq = squared_norms(points).mean()
    # (gamma/2) * E[a^2 ||x||^2]; d/da = gamma * a * E[||x||^2]
    assert_close(penalty.double(), 1.5 * A**2 * mean_sq, rtol=1e-5, atol=0)
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    assert_close(grad_a.double(), 3.0 * A * mean_sq, rtol=1e-5, atol=0)


def test_zero_centred_gp_uses_one_eps_per_sample_on_interpolates() -> None:
    real, fake = samples()
    critic = QuadraticCritic(A)
    penalty = ZeroCentredGradientPenalty(weight=2.0).penalty(
        critic, batch_for(critic, real, fake, seed=5)
    )
    eps = torch.rand(SHAPE[0], 1, 1, 1, generator=torch.Generator().manual_seed(5))
    x_hat = eps * real + (1 - eps) * fake
    expected = 2.0 * A**2 * squared_norms(x_hat).mean()
    assert_close(penalty.double(), expected, rtol=1e-5, atol=0)
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    assert_close(grad_a.double(), 4.0 * A * squared_norms(x_hat).mean(), rtol=1e-5, atol=0)


def test_flat_critic_gives_zero_penalty_and_finite_gradient() -> None:
    real, fake = samples()
    for strategy in (R1Penalty(), R2Penalty(), ZeroCentredGradientPenalty()):
        critic = QuadraticCritic(0.0)
        penalty = strategy.penalty(critic, batch_for(critic, real, fake, seed=0))
        (grad_a,) = torch.autograd.grad(penalty, critic.a)
        assert float(penalty.detach()) == 0.0
        assert float(grad_a) == 0.0  # no NaN from a zero gradient


def test_family_defaults_and_lambda_override() -> None:
    assert registry.resolve_params("r1", "images") == {"r1": {"weight": 10.0}}
    assert registry.resolve_params("r1", "points") == {"r1": {"weight": 1.0}}
    assert registry.resolve_params("r1+r2", "points", penalty_weight=0.3) == {
        "r1": {"weight": 0.3},
        "r2": {"weight": 0.3},
    }


@pytest.mark.parametrize("name", ["r1", "r2", "gp-zero-centred"])
def test_negative_weight_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="weight must be >= 0"):
        registry.build(name, {name: {"weight": -1.0}})
