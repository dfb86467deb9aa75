"""Property tests (hypothesis) of every registered strategy that adds a penalty.

For each penalty: it is finite and non-negative; it is zero at weight 0 and linear in
its weight; it does not depend on the order of the batch (permuting real and fake
together, and the random draws with them); and, for the strategies whose target is
known in closed form, it is zero exactly when the constraint holds.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan import engine
from lipgan.constraints import BatchRandom, CriticBatch
from lipgan.models.mlp import MLPCritic

PENALTIES = [
    name
    for name in registry.names()
    if engine.has_penalty(registry.build(name, registry.resolve_params(name, "points")))
]
WEIGHTED = [n for n in PENALTIES if "weight" in registry.get(n).params]
FAST = settings(max_examples=12, deadline=None)


def build(name: str, weight: float | None = None):
    params = registry.resolve_params(name, "points", penalty_weight=weight)
    return registry.build(name, params)


def linear_critic(w: Tensor, bias: float = 0.3) -> nn.Module:
    layer = nn.Linear(w.numel(), 1)
    with torch.no_grad():
        layer.weight.copy_(w.view(1, -1))
        layer.bias.fill_(bias)
    return nn.Sequential(layer, nn.Flatten(0))


def mlp_critic(seed: int, dim: int, scale: float) -> nn.Module:
    torch.manual_seed(seed)
    critic = MLPCritic((dim,), hidden=8, layers=2, norm="none")
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(scale)
    return critic


def points(seed: int, n: int, dim: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g) * 2 + 1


class PermutedRandom(BatchRandom):
    """Makes the same draws as BatchRandom(seed), reordered by ``perm`` along the batch."""

    def __init__(self, seed: int, perm: Tensor) -> None:
        super().__init__(torch.Generator().manual_seed(seed))
        self.perm = perm

    def uniform(self, n: int, *shape: int) -> Tensor:
        return super().uniform(n, *shape)[self.perm]

    def normal(self, n: int, *shape: int) -> Tensor:
        return super().normal(n, *shape)[self.perm]

    def integers(self, n: int, high: int) -> Tensor:
        return super().integers(n, high)[self.perm]


def penalty(strategy, critic: nn.Module, real: Tensor, fake: Tensor, rand: BatchRandom) -> Tensor:
    strategy.attach(critic)
    value = strategy.penalty(critic, CriticBatch(real, fake, critic(real), critic(fake), rand))
    assert value is not None and value.dim() == 0
    return value.detach()


def draws(seed: int) -> BatchRandom:
    return BatchRandom(torch.Generator().manual_seed(seed))


shapes = st.tuples(st.integers(2, 12), st.integers(1, 4))  # (n, dim)
seeds = st.integers(0, 2**16)


def test_there_are_penalties_to_test() -> None:
    assert {"gp", "gp-one-sided", "fd"} <= set(PENALTIES)


@pytest.mark.parametrize("name", PENALTIES)
@FAST
@given(shape=shapes, seed=seeds, scale=st.floats(0.1, 5.0))
def test_finite_and_non_negative(name: str, shape, seed: int, scale: float) -> None:
    n, dim = shape
    real, fake = points(seed, n, dim)
    value = penalty(build(name), mlp_critic(seed, dim, scale), real, fake, draws(seed))
    assert math.isfinite(float(value))
    assert float(value) >= 0


@pytest.mark.parametrize("name", WEIGHTED)
@FAST
@given(shape=shapes, seed=seeds, weight=st.floats(0.01, 50.0))
def test_zero_at_weight_zero_and_linear_in_the_weight(name: str, shape, seed, weight) -> None:
    n, dim = shape
    real, fake = points(seed, n, dim)
    critic = mlp_critic(seed, dim, 3.0)
    assert float(penalty(build(name, 0.0), critic, real, fake, draws(seed))) == 0.0
    once = penalty(build(name, weight), critic, real, fake, draws(seed))
    twice = penalty(build(name, 2 * weight), critic, real, fake, draws(seed))
    assert_close(twice, 2 * once, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", PENALTIES)
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_batch_order_does_not_matter_with_the_draws_permuted(name, shape, seed, data) -> None:
    """Any critic: sample i keeps its own random draws when the batch is reordered."""
    n, dim = shape
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    real, fake = points(seed, n, dim)
    critic = mlp_critic(seed, dim, 3.0)
    strategy = build(name)
    in_order = penalty(strategy, critic, real, fake, draws(seed))
    permuted = penalty(strategy, critic, real[perm], fake[perm], PermutedRandom(seed, perm))
    assert_close(permuted, in_order, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PENALTIES)
@FAST
@given(shape=shapes, seed=seeds, data=st.data())
def test_batch_order_does_not_matter_for_a_linear_critic(name, shape, seed, data) -> None:
    """A linear critic has the same gradient everywhere: fresh draws give the same value."""
    n, dim = shape
    perm = torch.tensor(data.draw(st.permutations(range(n))))
    real, fake = points(seed, n, dim)
    critic = linear_critic(torch.randn(dim, generator=torch.Generator().manual_seed(seed)))
    strategy = build(name)
    in_order = penalty(strategy, critic, real, fake, draws(seed))
    permuted = penalty(strategy, critic, real[perm], fake[perm], draws(seed + 1))
    assert_close(permuted, in_order, rtol=1e-5, atol=1e-6)


# --- zero exactly when the constraint holds --------------------------------------------


def unit(seed: int, dim: int) -> Tensor:
    w = torch.randn(dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (w / w.norm()).float()


@pytest.mark.parametrize("name", [n for n in ("gp", "dragan") if n in PENALTIES])
@FAST
@given(shape=shapes, seed=seeds, norm=st.floats(0.05, 5.0))
def test_norm_one_penalty_is_zero_only_at_unit_gradient(name, shape, seed, norm) -> None:
    n, dim = shape
    real, fake = points(seed, n, dim)
    w = unit(seed, dim)
    at_one = penalty(build(name), linear_critic(w), real, fake, draws(seed))
    assert_close(at_one, torch.tensor(0.0), rtol=0, atol=1e-10)
    elsewhere = penalty(build(name, 1.0), linear_critic(w * norm), real, fake, draws(seed))
    assert_close(elsewhere, torch.tensor((norm - 1) ** 2), rtol=1e-4, atol=1e-6)


@FAST
@given(shape=shapes, seed=seeds, norm=st.floats(0.0, 3.0))
def test_one_sided_penalty_is_zero_exactly_up_to_norm_one(shape, seed, norm) -> None:
    n, dim = shape
    real, fake = points(seed, n, dim)
    critic = linear_critic(unit(seed, dim) * norm)
    value = float(penalty(build("gp-one-sided", 1.0), critic, real, fake, draws(seed)))
    if norm <= 0.999:
        assert value == 0.0
    elif norm >= 1.001:
        assert value == pytest.approx((norm - 1) ** 2, rel=1e-3)


@FAST
@given(shape=shapes, seed=seeds, steps=st.lists(st.floats(0.1, 3.0), min_size=12, max_size=12))
def test_finite_difference_penalty_is_zero_along_a_unit_slope(shape, seed, steps) -> None:
    """D(x) = w.x with ||w|| = 1 and every real-fake pair along w: every slope is 1."""
    n, dim = shape
    w = unit(seed, dim)
    real, _ = points(seed, n, dim)
    fake = real - torch.tensor(steps[:n]).unsqueeze(1) * w
    value = penalty(build("fd"), linear_critic(w), real, fake, draws(seed))
    assert_close(value, torch.tensor(0.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "name", [n for n in ("r1", "r2", "gp-zero-centred", "wgan-div") if n in PENALTIES]
)
@FAST
@given(shape=shapes, seed=seeds, norm=st.floats(0.05, 3.0))
def test_zero_centred_penalty_is_zero_only_for_a_flat_critic(name, shape, seed, norm) -> None:
    n, dim = shape
    real, fake = points(seed, n, dim)
    flat = penalty(build(name), linear_critic(torch.zeros(dim)), real, fake, draws(seed))
    # Exactly 0 for squared norms; wgan-div's ||grad||^p goes through the sqrt guard
    # (norm >= 1e-6), which leaves weight * 1e-36 at a zero gradient.
    assert 0.0 <= float(flat) < 1e-30
    sloped = penalty(build(name), linear_critic(unit(seed, dim) * norm), real, fake, draws(seed))
    assert float(sloped) > 0
