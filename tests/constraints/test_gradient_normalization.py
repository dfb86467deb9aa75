"""gn: f / (||grad f|| + |f|) has input-gradient norm <= 1 wherever it is tested."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipgan.constraints import input_gradient, per_sample_norm
from lipgan.constraints.gradient_normalization import (
    GradientNormalization,
    GradientNormalizedCritic,
)
from lipgan.errors import ConfigError
from lipgan.models.conv import DCGANCritic
from lipgan.models.mlp import MLPCritic


def steep(critic: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(factor)
    return critic


@pytest.mark.parametrize(
    ("critic", "shape"),
    [(MLPCritic((2,), 32, 3, "none"), (2,)), (DCGANCritic(1, 8, 8, "none"), (1, 8, 8))],
    ids=["mlp", "dcgan"],
)
def test_input_gradient_norm_is_at_most_one_everywhere_tested(critic, shape) -> None:
    torch.manual_seed(0)
    wrapped = GradientNormalization().attach(steep(critic, 3.0))
    g = torch.Generator().manual_seed(1)
    real, fake = torch.randn(200, *shape, generator=g), 2 + torch.randn(200, *shape, generator=g)
    eps = torch.rand(200, *([1] * len(shape)), generator=g)
    points = torch.cat([real, fake, eps * real + (1 - eps) * fake, 1e3 * real, 1e-3 * real])
    _, grad = input_gradient(wrapped, points, create_graph=False)
    norms = per_sample_norm(grad)
    assert float(norms.max()) <= 1 + 1e-5
    assert float(norms.max()) > 0.1  # normalised, not flattened


def test_linear_critic_matches_the_closed_form_value_and_gradient() -> None:
    """f = w.x + b: f_hat = f / (||w|| + |f|), d f_hat/dx = w ||w|| / (||w|| + |f|)^2."""
    linear = nn.Linear(3, 1)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # ||w|| = 3
        linear.bias.fill_(0.5)
    wrapped = GradientNormalizedCritic(nn.Sequential(linear, nn.Flatten(0)))
    x = torch.randn(7, 3, dtype=torch.float32, requires_grad=True)
    f = x.detach() @ linear.weight.detach().T[:, 0] + 0.5
    value = wrapped(x)
    torch.testing.assert_close(value, f / (3 + f.abs()))
    (grad,) = torch.autograd.grad(value.sum(), x)
    expected = linear.weight.detach() * 3 / (3 + f.abs()).pow(2).unsqueeze(1)
    torch.testing.assert_close(grad, expected)
    with torch.no_grad():  # plots and sampling call the critic without a graph
        quiet = wrapped(x)
    assert not quiet.requires_grad
    torch.testing.assert_close(quiet, value.detach())


def test_loss_gradient_reaches_the_critic_weights_through_the_input_gradient() -> None:
    torch.manual_seed(0)
    critic = MLPCritic((2,), 8, 2, "none")
    wrapped = GradientNormalization().attach(critic)
    wrapped(torch.randn(16, 2)).mean().backward()
    for p in critic.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_batch_norm_critic_is_refused() -> None:
    with pytest.raises(ConfigError, match="batch norm makes each score depend"):
        GradientNormalization().attach(MLPCritic((2,), 8, 2, "batch"))
