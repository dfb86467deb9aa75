"""The DRAGAN penalty against a closed form, with the authors' perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan.constraints import BatchRandom
from lipgan.constraints.dragan import DraganPenalty, batch_std, perturb
from lipgan.errors import ConfigError

from critickit import QuadraticCritic, batch_for, squared_norms

SHAPE = (5, 2, 3)


def test_perturbation_is_alpha_times_c_std_times_uniform() -> None:
    real = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(1)) * 3 + 2
    x_p = perturb(real, BatchRandom(torch.Generator().manual_seed(4)), c=0.5)
    g = torch.Generator().manual_seed(4)
    u = torch.rand(*SHAPE, generator=g)  # per element, drawn first
    alpha = torch.rand(SHAPE[0], 1, 1, generator=g)  # per sample, drawn second
    std = float(np.std(real.numpy().astype(np.float64)))  # numpy's population std
    assert_close(x_p, real + alpha * 0.5 * std * u, rtol=1e-6, atol=1e-6)
    assert_close(batch_std(real, BatchRandom(torch.Generator())).double(),
                 torch.tensor(std, dtype=torch.float64), rtol=1e-6, atol=0)  # fmt: skip


@pytest.mark.parametrize("a", [0.3, 2.5])  # gradient norms below and above 1
def test_penalty_is_lambda_mean_squared_deviation_from_one(a: float) -> None:
    g = torch.Generator().manual_seed(2)
    real, fake = torch.randn(*SHAPE, generator=g), torch.randn(*SHAPE, generator=g)
    critic = QuadraticCritic(a)
    penalty = DraganPenalty(weight=7.0, noise_scale=0.5).penalty(
        critic, batch_for(critic, real, fake, seed=9)
    )
    x_p = perturb(real, BatchRandom(torch.Generator().manual_seed(9)), c=0.5)
    norm = a * squared_norms(x_p).sqrt()
    assert_close(penalty.double(), 7.0 * (norm - 1).pow(2).mean(), rtol=1e-5, atol=0)
    # d/da of lambda * E[(a r - 1)^2] = 2 lambda E[(a r - 1) r]
    (grad_a,) = torch.autograd.grad(penalty, critic.a)
    expected = 2 * 7.0 * ((norm - 1) * norm / a).mean()
    assert_close(grad_a.double(), expected, rtol=1e-5, atol=0)


def test_zero_noise_scale_penalises_at_the_real_points() -> None:
    real = torch.randn(*SHAPE, generator=torch.Generator().manual_seed(3))
    critic = QuadraticCritic(1.5)
    penalty = DraganPenalty(weight=1.0, noise_scale=0.0).penalty(
        critic, batch_for(critic, real, real + 5, seed=0)
    )
    norm = 1.5 * squared_norms(real).sqrt()
    assert_close(penalty.double(), (norm - 1).pow(2).mean(), rtol=1e-5, atol=0)


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="noise_scale must be >= 0"):
        registry.build("dragan", {"dragan": {"noise_scale": -0.1}})
    with pytest.raises(ConfigError, match="weight must be >= 0"):
        registry.build("dragan", {"dragan": {"weight": -1}})
    # 'c' is --clip's parameter name; dragan's perturbation scale is not called that
    with pytest.raises(ConfigError, match="--clip has no effect"):
        registry.resolve_params("dragan", "points", clip_value=0.1)
