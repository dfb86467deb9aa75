"""Closed-form checks of the interpolate penalties on a linear critic D(x) = w.x + b.

For a linear critic grad_x D = w everywhere, so ||grad|| = ||w|| on every
interpolate, whatever eps is drawn: the penalties have exact values.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan import constraints
from lipgan.constraints import BatchRandom, CriticBatch
from lipgan.constraints.finite_difference import FiniteDifferencePenalty
from lipgan.constraints.gradient_penalty import GradientPenalty, OneSidedGradientPenalty


def linear_critic(w: list[float]) -> nn.Module:
    critic = nn.Linear(len(w), 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w]))
        critic.bias.fill_(0.3)
    return nn.Sequential(critic, nn.Flatten(0))


def batch_for(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, seed: int = 0):
    rand = BatchRandom(torch.Generator().manual_seed(seed))
    return CriticBatch(real, fake, critic(real), critic(fake), rand)


def random_batch(dim: int, n: int = 64, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g) + 2


@pytest.mark.parametrize("w", [[0.3, 0.4], [3.0, 4.0], [1.0, 0.0], [2.0, -1.0, 0.5]])
def test_two_sided_penalty_is_lambda_times_norm_minus_one_squared(w):
    critic = linear_critic(w)
    real, fake = random_batch(len(w))
    value = GradientPenalty(weight=10.0).penalty(critic, batch_for(critic, real, fake))
    norm = torch.tensor(w).norm()
    assert_close(value, 10.0 * (norm - 1) ** 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("w", [[0.3, 0.4], [0.6, 0.0], [3.0, 4.0], [2.0, -1.0, 0.5]])
def test_one_sided_penalty_is_zero_below_one_and_two_sided_above(w):
    critic = linear_critic(w)
    real, fake = random_batch(len(w))
    batch = batch_for(critic, real, fake)
    value = OneSidedGradientPenalty(weight=10.0).penalty(critic, batch)
    norm = torch.tensor(w).norm()
    expected = 10.0 * (norm - 1) ** 2 if norm > 1 else torch.tensor(0.0)
    assert_close(value, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("w", [[0.3, 0.4], [3.0, 4.0], [-2.0, 1.0]])
def test_finite_difference_penalty_equals_gradient_penalty_along_w(w):
    # The finite difference sees the slope along real - fake: when every real-fake
    # direction is parallel to w, that slope is ||w||, the gradient norm.
    critic = linear_critic(w)
    direction = torch.tensor(w) / torch.tensor(w).norm()
    g = torch.Generator().manual_seed(3)
    fake = torch.randn(64, 2, generator=g)
    real = fake + torch.rand(64, 1, generator=g).add(0.5) * direction
    fd = FiniteDifferencePenalty(weight=10.0).penalty(critic, batch_for(critic, real, fake))
    gp = GradientPenalty(weight=10.0).penalty(critic, batch_for(critic, real, fake))
    assert_close(fd, gp, rtol=1e-4, atol=1e-5)
    assert_close(fd, 10.0 * (torch.tensor(w).norm() - 1) ** 2, rtol=1e-4, atol=1e-5)


def test_finite_difference_sees_only_the_slope_along_the_line():
    # Direction orthogonal to w: D is constant on every line, slope 0, penalty = lambda.
    critic = linear_critic([0.0, 5.0])
    fake = torch.randn(32, 2)
    real = fake + torch.tensor([1.0, 0.0])
    value = FiniteDifferencePenalty(weight=2.0).penalty(critic, batch_for(critic, real, fake))
    assert_close(value, torch.tensor(2.0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["gp", "gp-one-sided", "fd"])
def test_penalty_gradient_reaches_the_critic_parameters(name):
    # d/dw of lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||  (double backward for gp).
    w = torch.tensor([3.0, 4.0])
    critic = linear_critic(w.tolist())
    direction = w / w.norm()
    fake = torch.randn(128, 2)
    real = fake + direction  # along w, so fd's slope is ||w|| too
    strategy = constraints.build(name, {name: {"weight": 0.5}})
    value = strategy.penalty(critic, batch_for(critic, real, fake))
    value.backward()
    expected = 2 * 0.5 * (w.norm() - 1) * w / w.norm()
    assert_close(critic[0].weight.grad[0], expected, rtol=1e-4, atol=1e-5)
    bias_grad = critic[0].bias.grad  # the bias does not change the slope
    assert bias_grad is None or bias_grad.abs().max().item() < 1e-6


def test_interpolation_draws_one_eps_per_sample_for_every_shape():
    # Images (n, C, H, W): eps is shared inside a sample and differs between samples.
    real = torch.ones(5, 3, 4, 4)
    fake = torch.zeros(5, 3, 4, 4)
    x_hat = constraints.interpolate(real, fake, BatchRandom(torch.Generator().manual_seed(0)))
    per_sample = x_hat.flatten(1)
    assert_close(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert per_sample[:, 0].unique().numel() == 5


def test_gradient_norm_is_per_sample_over_all_non_batch_dimensions():
    # D(x) = sum(a * x) for images: grad = a, norm over C, H, W.
    a = torch.randn(2, 3, 3)

    class Dot(nn.Module):
        def forward(self, x):
            return (x * a).flatten(1).sum(1)

    x = torch.randn(4, 2, 3, 3)
    _, grad = constraints.input_gradient(Dot(), x)
    assert_close(constraints.per_sample_norm(grad), a.norm().expand(4))


def test_zero_gradient_gives_no_nan():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(2))

        def forward(self, x):
            return x @ self.w

    critic = Flat()
    real, fake = random_batch(2)
    value = GradientPenalty(weight=1.0).penalty(critic, batch_for(critic, real, fake))
    value.backward()
    assert_close(value, torch.tensor(1.0), rtol=1e-5, atol=1e-5)
    assert torch.isfinite(critic.w.grad).all()


def test_process_shards_draw_exactly_the_single_process_numbers():
    full = BatchRandom(torch.Generator().manual_seed(5)).uniform(8, 1)
    shards = [
        BatchRandom(torch.Generator().manual_seed(5), rank=r, world=2).uniform(4, 1)
        for r in range(2)
    ]
    assert_close(torch.cat(shards), full, rtol=0, atol=0)
