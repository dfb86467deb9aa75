"""The WGAN-div penalty against a closed form."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan.constraints.wgan_div import WassersteinDivergencePenalty
from lipgan.errors import ConfigError

from critickit import QuadraticCritic, batch_for, squared_norms

SHAPE = (7, 2, 2)


def test_penalty_is_k_mean_gradient_norm_to_the_p_on_interpolates() -> None:
    g = torch.Generator().manual_seed(8)
    real, fake = torch.randn(*SHAPE, generator=g), torch.randn(*SHAPE, generator=g) + 1
    a = 1.3
    critic = QuadraticCritic(a)
    penalty = WassersteinDivergencePenalty().penalty(critic, batch_for(critic, real, fake, 21))
    eps = torch.rand(SHAPE[0], 1, 1, generator=torch.Generator().manual_seed(21))
    r = squared_norms(eps * real + (1 - eps) * fake).sqrt()
    # defaults k = 2, p = 6: 2 * E[(a r)^6]; d/da = 12 a^5 E[r^6]
    assert_close(penalty.double(), 2 * (a * r).pow(6).mean(), rtol=1e-5, atol=0)
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    assert_close(grad_a.double(), 12 * a**5 * r.pow(6).mean(), rtol=1e-5, atol=0)


def test_zero_gradient_gives_finite_gradient() -> None:
    real = torch.randn(*SHAPE)
    critic = QuadraticCritic(0.0)
    penalty = WassersteinDivergencePenalty().penalty(critic, batch_for(critic, real, real, 0))
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    assert float(penalty.detach()) < 1e-30 and float(grad_a) == 0.0


def test_defaults_are_the_papers_and_power_must_exceed_one() -> None:
    assert registry.resolve_params("wgan-div", "points") == {
        "wgan-div": {"weight": 2.0, "power": 6.0}
    }
    with pytest.raises(ConfigError, match="power"):
        registry.build("wgan-div", {"wgan-div": {"power": 1.0}})
