"""The one-step schedule equals a 1:1 alternating step; TTUR learning rates apply.

The reference is written by hand from BACKGROUND.md section 5: one critic step on
L_D = E[D(sg(G(z)))] - E[D(x)] + penalty and one generator step on -E[D(G(z))], on
the same batch, the generator's gradient taken at the critic *before* its update.
It draws the same random numbers in the same order as the engine (data, noise, then
the penalty's interpolation weights) from an identically seeded generator.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan import engine
from lipgan.config import TrainConfig, strategy_param, validate
from lipgan.constraints import BatchRandom
from lipgan.data.toy import ToyData
from lipgan.distributed import Processes
from lipgan.errors import ConfigError

STEPS = 3


@pytest.fixture
def float64():
    """Compare in float64: the critic's output bias has an exactly zero gradient in L_D
    (it cancels in E[D(fake)] - E[D(real)]), and in float32 Adam's g / (|g| + eps) turns
    the ~1e-9 rounding noise of that zero into a step of up to lr, differently in two
    correct implementations. In float64 the noise is ~1e-17 and its step ~1e-13."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_parts(**changes) -> engine.Parts:
    config = TrainConfig(
        hidden=16, critic_layers=2, generator_layers=2, batch_size=32, seed=5, **changes
    )
    validate(config)
    parts, _ = engine.build_parts(
        engine.resolve(config, "points"), ToyData("8gaussians"), Processes()
    )
    return parts


def optimiser_like(opt: torch.optim.Optimizer, params) -> torch.optim.Optimizer:
    """A fresh optimiser of the same type and hyperparameters (plain for-loop kernel)."""
    group = opt.param_groups[0]
    if isinstance(opt, torch.optim.Adam):
        return torch.optim.Adam(params, lr=group["lr"], betas=group["betas"], eps=group["eps"])
    assert isinstance(opt, torch.optim.RMSprop)
    return torch.optim.RMSprop(params, lr=group["lr"], alpha=group["alpha"], eps=group["eps"])


def reference_penalty(critic: nn.Module, real, fake, rand: BatchRandom, name: str, weight):
    if name != "gp":
        return torch.zeros(())
    eps = rand.uniform(real.shape[0], 1)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return weight * (grad.norm(dim=1) - 1).pow(2).mean()


def alternating_step(
    generator, critic, opt_g, opt_d, rand, data, config: TrainConfig, clip: float | None
) -> None:
    n = config.batch_size
    real = data.draw(rand, n)
    z = rand.normal(n, config.z_dim)
    fake = generator(z).detach()
    critic_loss = critic(fake).mean() - critic(real).mean()
    critic_loss = critic_loss + reference_penalty(
        critic, real, fake, rand, config.constraint, strategy_param(config, "weight")
    )
    critic_grads = torch.autograd.grad(critic_loss, list(critic.parameters()))
    # generator gradient at the critic as it was before its step
    generator_loss = -critic(generator(z)).mean() * config.generator_weight
    generator_grads = torch.autograd.grad(generator_loss, list(generator.parameters()))
    for params, grads in ((critic.parameters(), critic_grads),
                          (generator.parameters(), generator_grads)):  # fmt: skip
        for p, g in zip(params, grads, strict=True):
            p.grad = g
    opt_d.step()
    opt_g.step()
    if clip is not None:
        with torch.no_grad():
            for p in critic.parameters():
                p.clamp_(-clip, clip)


@pytest.mark.parametrize(
    ("constraint", "generator_weight"), [("none", 1.0), ("gp", 1.0), ("gp", 0.25), ("clip", 1.0)]
)
def test_one_step_update_equals_alternating_one_to_one(
    constraint, generator_weight, float64
) -> None:
    parts = make_parts(
        constraint=constraint, schedule="one-step", generator_weight=generator_weight
    )
    config = parts.config
    assert config.n_critic == 1
    assert next(parts.critic.parameters()).dtype == torch.float64
    generator, critic = copy.deepcopy(parts.generator), copy.deepcopy(parts.critic)
    opt_g = optimiser_like(parts.opt_generator, generator.parameters())
    opt_d = optimiser_like(parts.opt_critic, critic.parameters())
    rand = BatchRandom(torch.Generator().manual_seed(config.seed))
    clip = strategy_param(config, "c")

    for step in range(STEPS):
        engine.one_step_update(parts)
        alternating_step(generator, critic, opt_g, opt_d, rand, parts.data, config, clip)
        for name, (ours, theirs) in {
            "generator": (parts.generator, generator),
            "critic": (parts.critic, critic),
        }.items():
            for (pname, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
                assert_close(p, q, rtol=1e-9, atol=1e-12, msg=f"step {step} {name}.{pname}")
    # the random streams stayed in lockstep
    assert torch.equal(parts.rand.generator.get_state(), rand.generator.get_state())
    # and the networks really moved
    moved = [not torch.equal(p, q) for p, q in
             zip(parts.critic.parameters(), make_parts(constraint=constraint).critic.parameters(),
                 strict=True)]  # fmt: skip
    assert any(moved)


def test_generator_lr_defaults_to_lr() -> None:
    parts = make_parts(constraint="gp", lr=2e-4)
    assert parts.config.generator_lr == 2e-4
    assert parts.opt_generator.param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize("schedule", ["alternating", "one-step"])
def test_ttur_each_optimiser_moves_by_its_own_learning_rate(schedule: str) -> None:
    parts = make_parts(constraint="gp", lr=1e-4, generator_lr=3e-4, schedule=schedule)
    assert parts.opt_critic.param_groups[0]["lr"] == 1e-4
    assert parts.opt_generator.param_groups[0]["lr"] == 3e-4
    before_d = [p.detach().clone() for p in parts.critic.parameters()]
    before_g = [p.detach().clone() for p in parts.generator.parameters()]
    # Adam's first step moves each parameter by lr * g / (|g| + eps): the largest move is lr
    if schedule == "one-step":
        engine.one_step_update(parts)
    else:
        engine.critic_update(parts)
        engine.generator_update(parts)
    critic_moves = zip(parts.critic.parameters(), before_d, strict=True)
    generator_moves = zip(parts.generator.parameters(), before_g, strict=True)
    move_d = max(float((p.detach() - b).abs().max()) for p, b in critic_moves)
    move_g = max(float((p.detach() - b).abs().max()) for p, b in generator_moves)
    assert_close(move_d, 1e-4, rtol=1e-3, atol=0)
    assert_close(move_g, 3e-4, rtol=1e-3, atol=0)


def test_critic_warmup_follows_the_wgan_reference_code():
    # 100 critic steps for generator iterations 0..24 and every 500th, n_critic otherwise.
    from lipgan.engine.updates import critic_steps

    warm = TrainConfig(n_critic=5, critic_warmup=True)
    steps = {i: critic_steps(warm, i) for i in (0, 24, 25, 499, 500, 501, 1000)}
    assert steps == {0: 100, 24: 100, 25: 5, 499: 5, 500: 100, 501: 5, 1000: 100}
    assert {critic_steps(TrainConfig(n_critic=5), i) for i in range(30)} == {5}


def test_critic_warmup_is_refused_with_the_one_step_schedule():
    with pytest.raises(ConfigError, match="--critic-warmup adds critic steps"):
        validate(TrainConfig(schedule="one-step", critic_warmup=True))


def test_a_warm_run_takes_the_warmup_critic_steps(tmp_path):
    from runkit import last_state, train_run

    train_run(tmp_path / "warm", constraint="clip", iters=2, log_every=2, critic_warmup=True)
    assert last_state(tmp_path / "warm")["critic_steps"] == 200


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        ("constant", [1.0, 1.0, 1.0, 1.0]),
        ("linear", [1.0, 0.75, 0.5, 0.25]),
        (
            "cosine",
            [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 - math.cos(math.pi / 4))],
        ),
    ],
)
def test_lr_factor_follows_its_schedule(decay: str, expected: list[float]) -> None:
    from lipgan.engine.updates import lr_factor

    config = TrainConfig(iters=8, lr_decay=decay)
    assert_close([lr_factor(config, i) for i in (0, 2, 4, 6)], expected, rtol=1e-12, atol=0)


def test_linear_decay_sets_both_optimisers_before_each_iteration() -> None:
    parts = make_parts(constraint="gp", lr=1e-4, generator_lr=3e-4, lr_decay="linear", iters=4)
    rates = []
    for iteration in range(4):
        engine.train_iteration(parts, iteration)
        rates.append(
            (parts.opt_critic.param_groups[0]["lr"], parts.opt_generator.param_groups[0]["lr"])
        )
    assert_close(rates, [(1e-4 * f, 3e-4 * f) for f in (1.0, 0.75, 0.5, 0.25)], rtol=1e-12, atol=0)


def test_decay_keeps_the_rollback_halving() -> None:
    from lipgan.engine.state import set_lr_scale

    parts = make_parts(constraint="gp", lr=1e-4, lr_decay="linear", iters=4)
    set_lr_scale(parts, 0.5)  # what a rollback does
    engine.train_iteration(parts, 2)
    assert_close(parts.opt_critic.param_groups[0]["lr"], 1e-4 * 0.5 * 0.5, rtol=1e-12, atol=0)


def test_a_decayed_run_resumes_exactly(tmp_path) -> None:
    from runkit import last_state, parameters, resume_run, stop_after, train_run

    train_run(tmp_path / "a", iters=12, lr_decay="cosine")
    with pytest.raises(engine.Interrupted):
        train_run(tmp_path / "b", should_stop=stop_after(5), iters=12, lr_decay="cosine")
    resume_run(tmp_path / "b")
    a, b = parameters(last_state(tmp_path / "a")), parameters(last_state(tmp_path / "b"))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
    # and the decay did change the trajectory
    train_run(tmp_path / "c", iters=12, lr_decay="constant")
    c = parameters(last_state(tmp_path / "c"))
    assert any(not torch.equal(a[name], c[name]) for name in a)
