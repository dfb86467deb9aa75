"""Chains ('sn+gp'): penalties add, hooks compose, conflicting combinations are refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan.constraints import Chain
from lipgan.constraints.gradient_penalty import GradientPenalty
from lipgan.constraints.spectral_norm import SpectralNormalization
from lipgan.errors import ConfigError

from critickit import QuadraticCritic, batch_for, squared_norms


def build(spec: str, family: str = "images", **kwargs) -> registry.Constraint:
    return registry.build(spec, registry.resolve_params(spec, family, **kwargs))


def real_fake(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g) + 2


def test_sn_plus_gp_penalty_is_gps_penalty_on_the_same_normalised_critic() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    chain = build("sn+gp", penalty_weight=4.0)
    assert isinstance(chain, Chain) and chain.needs_double_backward
    chain.attach(critic)
    critic.eval()  # freeze the power-iteration vectors so both calls see one critic
    real, fake = real_fake()
    got = chain.penalty(critic, batch_for(critic, real, fake, seed=3))
    expected = GradientPenalty(weight=4.0).penalty(critic, batch_for(critic, real, fake, seed=3))
    assert_close(got, expected, rtol=0, atol=0)


def test_sn_plus_gp_on_a_linear_critic_has_zero_penalty() -> None:
    # D(x) = w.x: sn makes ||w|| exactly 1 (a 1-row matrix: one power iteration is exact),
    # so (||grad|| - 1)^2 = 0, while gp alone sees lambda * (||w|| - 1)^2.
    real, fake = real_fake()
    w = torch.tensor([[3.0, -4.0, 12.0]])  # ||w|| = 13
    plain, normalised = nn.Linear(3, 1, bias=False), nn.Linear(3, 1, bias=False)
    for layer in (plain, normalised):
        with torch.no_grad():
            layer.weight.copy_(w)
    critic_plain = nn.Sequential(plain, nn.Flatten(0))
    critic_sn = nn.Sequential(normalised, nn.Flatten(0))
    gp = build("gp", penalty_weight=2.0)
    chain = build("sn+gp", penalty_weight=2.0)
    chain.attach(critic_sn)
    assert_close(
        gp.penalty(critic_plain, batch_for(critic_plain, real, fake, 1)),
        torch.tensor(2.0 * 12.0**2),
    )
    assert_close(
        chain.penalty(critic_sn, batch_for(critic_sn, real, fake, 1)),
        torch.tensor(0.0),
        rtol=0,
        atol=1e-9,
    )


def test_r1_plus_r2_penalties_add() -> None:
    real, fake = real_fake()
    critic = QuadraticCritic(0.5)
    chain = build("r1+r2", penalty_weight=3.0)
    got = chain.penalty(critic, batch_for(critic, real, fake, 0))
    expected = 1.5 * 0.25 * (squared_norms(real).mean() + squared_norms(fake).mean())
    assert_close(got.double(), expected, rtol=1e-5, atol=0)


def test_one_part_is_not_wrapped_and_chain_parts_keep_their_order() -> None:
    assert isinstance(build("sn"), SpectralNormalization)
    chain = build("sn+r1")
    assert [type(p).__name__ for p in chain.parts] == ["SpectralNormalization", "R1Penalty"]
    assert chain.needs_double_backward


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("clip+sn", ("'clip'", "'sn'")),
        ("sn+clip", ("'sn'", "'clip'")),
        ("gp+gp-zero-centred", ("'gp'", "'gp-zero-centred'")),
        ("gp+wgan-div", ("'gp'", "'wgan-div'")),
        ("fd+gp-one-sided", ("'fd'", "'gp-one-sided'")),
        ("r1+dragan", ("'r1'", "'dragan'")),
    ],
)
def test_strategies_doing_the_same_job_are_refused_naming_both(spec: str, named) -> None:
    with pytest.raises(ConfigError, match="combine strategies that do different jobs") as info:
        registry.parse(spec)
    assert all(name in str(info.value) for name in named)


@pytest.mark.parametrize("spec", ["none+gp", "sn+none"])
def test_none_cannot_be_combined(spec: str) -> None:
    with pytest.raises(ConfigError, match="'none' cannot be combined"):
        registry.parse(spec)


@pytest.mark.parametrize("spec", ["gp+gp", "sn+gp+sn"])
def test_duplicates_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        registry.parse(spec)


@pytest.mark.parametrize("spec", ["sn+gp", "sn+r1", "r1+r2", "sn+dragan", "sn+wgan-div", "gp+r1"])
def test_different_jobs_combine(spec: str) -> None:
    assert [info.name for info in registry.parse(spec)] == spec.split("+")
