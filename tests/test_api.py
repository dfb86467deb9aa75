"""The public library API (docs/api.md): functional penalties, build, penalty_on.

On a linear critic D(x) = w.x + b the input gradient is w everywhere, so every penalty
is known in closed form; each functional form must equal it and the registered
strategy's penalty on the same draws. On a non-linear critic the draws matter, so the
function and the strategy must agree exactly given one seed, and ``generator=`` must
make the result reproducible.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

import lipgan
from lipgan import constraints
from lipgan.constraints import BatchRandom, CriticBatch
from lipgan.errors import ConfigError
from lipgan.models.mlp import MLPCritic

W = torch.tensor([3.0, 4.0, 12.0])  # ||w|| = 13
NORM = 13.0


def linear_critic(w: Tensor = W, bias: float = 0.3) -> nn.Module:
    layer = nn.Linear(w.numel(), 1)
    with torch.no_grad():
        layer.weight.copy_(w.view(1, -1))
        layer.bias.fill_(bias)
    return nn.Sequential(layer, nn.Flatten(0))


def mlp_critic(seed: int = 0) -> nn.Module:
    """A non-linear critic steep enough (norms around 1 and above) for every penalty."""
    torch.manual_seed(seed)
    critic = MLPCritic((3,), hidden=16, layers=2, norm="none")
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(3.0)
    return critic


def points(seed: int = 0, n: int = 64) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    fake = torch.randn(n, 3, generator=g)
    # Real along w from fake: fd's finite difference then equals ||w|| exactly.
    return fake + (torch.rand(n, 1, generator=g) + 0.5) * W / NORM, fake


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def strategy_penalty(name: str, weight: float, critic: nn.Module, real, fake, seed: int):
    strategy = constraints.build(name, params={name: {"weight": weight}})
    batch = CriticBatch(real, fake, critic(real), critic(fake), BatchRandom(seeded(seed)))
    return strategy.penalty(critic, batch)


# name -> (the functional call with a generator, the closed form on the linear critic)
CASES = {
    "gp": (lambda d, r, f, g: lipgan.gradient_penalty(d, r, f, weight=0.5, generator=g),
           0.5 * (NORM - 1) ** 2),
    "gp-one-sided": (lambda d, r, f, g: lipgan.gradient_penalty(
        d, r, f, weight=0.5, one_sided=True, generator=g), 0.5 * (NORM - 1) ** 2),
    "fd": (lambda d, r, f, g: lipgan.finite_difference_penalty(d, r, f, weight=0.5, generator=g),
           0.5 * (NORM - 1) ** 2),
    "r1": (lambda d, r, f, g: lipgan.r1_penalty(d, r, weight=0.5), 0.5 * 0.5 * NORM**2),
    "r2": (lambda d, r, f, g: lipgan.r2_penalty(d, f, weight=0.5), 0.5 * 0.5 * NORM**2),
    "gp-zero-centred": (lambda d, r, f, g: lipgan.zero_centred_gradient_penalty(
        d, r, f, weight=0.5, generator=g), 0.5 * NORM**2),
    "dragan": (lambda d, r, f, g: lipgan.dragan_penalty(d, r, weight=0.5, generator=g),
               0.5 * (NORM - 1) ** 2),
    "wgan-div": (lambda d, r, f, g: lipgan.wgan_div_penalty(d, r, f, weight=0.5, generator=g),
                 0.5 * NORM**6),
}  # fmt: skip
RANDOM = ["gp", "gp-one-sided", "fd", "gp-zero-centred", "dragan", "wgan-div"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_penalty_is_the_closed_form_and_the_strategy(name):
    call, closed_form = CASES[name]
    critic = linear_critic()
    real, fake = points()
    value = call(critic, real, fake, seeded(1))
    expected = torch.tensor(closed_form)
    assert_close(value, expected, rtol=1e-5, atol=0)
    assert_close(expected, value, rtol=1e-5, atol=0)
    assert_close(value, strategy_penalty(name, 0.5, critic, real, fake, seed=1), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_functional_penalty_equals_the_strategy_on_a_nonlinear_critic(name):
    critic = mlp_critic()
    real, fake = points(seed=3)
    value = CASES[name][0](critic, real, fake, seeded(7))
    assert torch.equal(value, strategy_penalty(name, 0.5, critic, real, fake, seed=7))


@pytest.mark.parametrize("name", RANDOM)
def test_generator_makes_the_penalty_reproducible(name):
    call = CASES[name][0]
    critic = mlp_critic()
    real, fake = points(seed=3)
    first, again = call(critic, real, fake, seeded(5)), call(critic, real, fake, seeded(5))
    other = call(critic, real, fake, seeded(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # None draws from torch's global RNG: torch.manual_seed reproduces it.
    torch.manual_seed(11)
    global_first = call(critic, real, fake, None)
    torch.manual_seed(11)
    assert torch.equal(global_first, call(critic, real, fake, None))


def test_gradient_penalty_reaches_the_critic_weights():
    # d/dw of lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||, through double backward.
    critic = linear_critic()
    real, fake = points()
    lipgan.gradient_penalty(critic, real, fake, weight=0.5).backward()
    assert_close(critic[0].weight.grad[0], 2 * 0.5 * (NORM - 1) * W / NORM)


def test_clip_weights_puts_every_parameter_inside_the_box():
    critic = mlp_critic()
    inside = [p.detach().clamp(-0.05, 0.05) for p in critic.parameters()]
    assert any(p.abs().max() > 0.05 for p in critic.parameters())
    assert lipgan.clip_weights(critic, 0.05) is critic
    for p, expected in zip(critic.parameters(), inside, strict=True):
        assert torch.equal(p.detach(), expected)
    with pytest.raises(ValueError, match="c must be > 0"):
        lipgan.clip_weights(critic, 0.0)


def test_spectral_norm_makes_a_linear_critic_1_lipschitz():
    critic = lipgan.spectral_norm(linear_critic())
    x = torch.randn(8, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    assert_close(grad, (W / NORM).expand(8, 3), rtol=1e-5, atol=1e-6)


def test_build_resolves_weight_c_family_and_per_part_params():
    chain = constraints.build("sn+gp", weight=2.0)
    assert isinstance(chain, constraints.Chain) and chain.parts[1].weight == 2.0
    assert constraints.build("gp").weight == 10.0
    assert constraints.build("gp", family="points").weight == 0.1
    both = constraints.build("r1+r2", weight=1.0, params={"r2": {"weight": 0.1}})
    assert [p.weight for p in both.parts] == [1.0, 0.1]
    clipped = constraints.build("clip+gp", c=0.05, weight=1.0)
    assert clipped.parts[0].c == 0.05 and clipped.parts[1].weight == 1.0
    assert constraints.build("sn", params={"sn": {"power_iterations": 2}}).power_iterations == 2


def test_build_refuses_what_does_not_apply():
    with pytest.raises(ConfigError, match="weight= has no effect: 'sn' has no 'weight'"):
        constraints.build("sn", weight=1.0)
    with pytest.raises(ConfigError, match="c= has no effect"):
        constraints.build("gp", c=0.1)
    with pytest.raises(ConfigError, match="'gp.bogus' does not exist; valid: gp.weight$"):
        constraints.build("sn+gp", params={"gp": {"bogus": 1.0}})
    with pytest.raises(ConfigError, match="'fd' is not a part of 'sn\\+gp'; parts: sn, gp$"):
        constraints.build("sn+gp", params={"fd": {"weight": 1.0}})
    with pytest.raises(ConfigError, match="'sn.weight' does not exist; valid: sn.power_iter"):
        constraints.build("sn", params={"sn": {"weight": 1.0}})
    with pytest.raises(ConfigError, match="constraint 'gp': weight must be >= 0"):
        constraints.build("gp", weight=-1.0)


def test_penalty_on_takes_plain_tensors_and_matches_the_engine_form():
    critic = mlp_critic()
    real, fake = points(seed=3)
    chain = constraints.build("clip+gp", weight=0.5)
    batch = CriticBatch(real, fake, critic(real), critic(fake), BatchRandom(seeded(2)))
    assert torch.equal(chain.penalty_on(critic, real, fake, generator=seeded(2)),
                       chain.penalty(critic, batch))  # fmt: skip
    # No penalty: a zero scalar, and the critic is never called.
    calls = []
    critic.register_forward_hook(lambda *_: calls.append(1))
    zero = constraints.build("clip").penalty_on(critic, real, fake)
    assert zero.shape == () and float(zero) == 0.0 and not calls


def test_build_sn_gp_trains_a_critic_in_a_hand_written_loop():
    # Real N(0, I) shifted by 2 along x, fake N(0, I): W1 = 2, reached by D(x) = x_0.
    # A 1-Lipschitz critic (sn) estimates at most 2; training must get most of the way.
    torch.manual_seed(0)
    critic = MLPCritic((2,), hidden=32, layers=2, norm="none")
    lipschitz = constraints.build("sn+gp", weight=1.0)
    lipschitz.attach(critic)
    optimiser = torch.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9))
    rng, shift = seeded(0), torch.tensor([2.0, 0.0])

    def estimate() -> float:
        real, fake = torch.randn(4096, 2, generator=seeded(9)) + shift, torch.randn(4096, 2)
        with torch.no_grad():
            return float(critic(real).mean() - critic(fake).mean())

    before = estimate()
    for _ in range(150):
        real, fake = torch.randn(256, 2) + shift, torch.randn(256, 2)
        d_real, d_fake = critic(real), critic(fake)
        penalty = lipschitz.penalty_on(
            critic, real, fake, critic_real=d_real, critic_fake=d_fake, generator=rng
        )
        loss = d_fake.mean() - d_real.mean() + penalty
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        lipschitz.after_critic_step(critic)
    after = estimate()
    assert abs(before) < 0.5 and 1.5 < after < 2.1, (before, after)
