"""Every registered strategy (plugins included) builds, penalises sanely and trains.

Parametrized over ``registry.names()``, so a new strategy is tested for free.
"""

from __future__ import annotations

import math

import pytest
import torch

from lipgan import constraints as registry
from lipgan import engine
from lipgan.config import TrainConfig, validate
from lipgan.constraints import BatchRandom, CriticBatch
from lipgan.data.toy import ToyData
from lipgan.distributed import Processes
from lipgan.models.mlp import MLPCritic

NAMES = registry.names()


def tiny_batch(critic: torch.nn.Module, seed: int = 0) -> CriticBatch:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(16, 2, generator=g)
    fake = torch.randn(16, 2, generator=g) + 1.0
    scores = critic(torch.cat([real, fake]))
    rand = BatchRandom(torch.Generator().manual_seed(seed + 1))
    return CriticBatch(real, fake, scores[:16], scores[16:], rand)


@pytest.mark.parametrize("name", NAMES)
def test_penalty_is_finite_non_negative_and_reaches_the_critic(name: str) -> None:
    torch.manual_seed(0)
    critic = MLPCritic((2,), hidden=8, layers=2, norm="none")
    with torch.no_grad():  # steep enough that one-sided penalties (norm > 1) are active
        for p in critic.parameters():
            p.mul_(4.0)
    strategy = registry.build(name, registry.resolve_params(name, "points"))
    strategy.attach(critic)
    penalty = strategy.penalty(critic, tiny_batch(critic))
    if penalty is None:
        return  # a weight-side strategy: nothing to add to the loss
    assert penalty.dim() == 0
    value = float(penalty.detach())
    assert math.isfinite(value) and value >= 0
    penalty.backward()
    weights = [(n, p) for n, p in critic.named_parameters() if p.dim() >= 2]
    assert weights
    for pname, p in weights:
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), pname
        assert float(p.grad.abs().sum()) > 0, f"{name}: zero gradient on {pname}"


@pytest.mark.parametrize("schedule", ["alternating", "one-step"])
@pytest.mark.parametrize("name", NAMES)
def test_a_few_engine_steps_have_finite_losses(name: str, schedule: str) -> None:
    config = TrainConfig(
        constraint=name,
        schedule=schedule,
        n_critic=None if schedule == "one-step" else 2,
        hidden=16,
        critic_layers=2,
        generator_layers=2,
        batch_size=32,
        seed=3,
    )
    validate(config)
    config = engine.resolve(config, "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), Processes())
    for _ in range(2):
        if schedule == "one-step":
            engine.one_step_update(parts)
        else:
            for _ in range(config.n_critic):
                engine.critic_update(parts)
            engine.generator_update(parts)
    critic_loss, penalty, generator_loss, steps, generator_steps, skipped = parts.window.tolist()
    assert steps == (2 if schedule == "one-step" else 4)
    assert (generator_steps, skipped) == (2, 0)
    assert all(math.isfinite(v) for v in (critic_loss, penalty, generator_loss))
    if not engine.has_penalty(parts.constraint):
        assert penalty == 0.0
    for p in [*parts.critic.parameters(), *parts.generator.parameters()]:
        assert torch.isfinite(p).all()
