"""The three kinds of update: critic, generator, and both at once (one-step schedule).

One generator iteration (alternating schedule) is ``n_critic`` critic updates

    L_D = E[D(G(z))] - E[D(x)] + penalty        then  after_critic_step(critic)

followed by one generator update ``L_G = -E[D(G(z))]``. The one-step schedule does
both with a single loss and one backward (docs/schedules.md).
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from lipgan.constraints.base import CriticBatch
from lipgan.engine.parts import Parts


def train_iteration(parts: Parts) -> None:
    """One generator iteration under the configured schedule."""
    if parts.config.schedule == "one-step":
        one_step_update(parts)
    else:
        for _ in range(parts.config.n_critic):
            critic_update(parts)
        generator_update(parts)


def _backward_and_step(
    loss: Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> None:
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


@contextlib.contextmanager
def _frozen(module: nn.Module):
    """Stop-gradient on a module's parameters: its weights become constants in the graph."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def critic_loss(parts: Parts, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor | None]:
    """(L_D without penalty, weighted penalty or None) on one batch."""
    n = real.shape[0]
    # Real and fake go through the critic as one batch: one pass instead of two.
    scores = parts.critic_fwd(torch.cat([real, fake]))
    critic_real, critic_fake = scores[:n], scores[n:]
    loss = critic_fake.mean() - critic_real.mean()
    penalty = None
    every = parts.config.penalty_every
    if parts.critic_steps % every == 0:
        batch = CriticBatch(real, fake, critic_real, critic_fake, parts.rand, parts.scaler_critic)
        penalty = parts.constraint.penalty(parts.penalty_critic, batch)
        if penalty is not None and every > 1:
            penalty = penalty * every  # lazy regularisation keeps the same average strength
    return loss, penalty


def critic_update(parts: Parts) -> None:
    config = parts.config
    real = parts.data.draw(parts.rand, parts.local_batch)
    z = parts.rand.normal(parts.local_batch, config.z_dim)
    with parts.autocast():
        with torch.no_grad():
            fake = parts.generator_fwd(z)
        loss, penalty = critic_loss(parts, real, fake.to(real.dtype))
        total = loss if penalty is None else loss + penalty
    _backward_and_step(total, parts.opt_critic, parts.scaler_critic)
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, None)


def generator_update(parts: Parts) -> None:
    z = parts.rand.normal(parts.local_batch, parts.config.z_dim)
    with _frozen(parts.critic), parts.autocast():
        loss = -parts.critic_const_fwd(parts.generator_fwd(z)).mean()
    _backward_and_step(loss, parts.opt_generator, parts.scaler_generator)
    _accumulate(parts, None, None, loss)


def one_step_update(parts: Parts) -> None:
    """Both networks from one loss and one backward (BACKGROUND.md section 5).

    total = L_D(D, sg(G)) + lambda_g * L_G(sg(D), G): the critic part sees the generator
    output detached, the generator part sees the critic's weights as constants, so the
    single backward gives D exactly grad L_D and G exactly lambda_g * grad L_G, both at
    the pre-update parameters (= a 1:1 alternating step whose generator gradient is
    taken before the critic moves).
    """
    config = parts.config
    real = parts.data.draw(parts.rand, parts.local_batch)
    z = parts.rand.normal(parts.local_batch, config.z_dim)
    with parts.autocast():
        fake = parts.generator_fwd(z)
        loss, penalty = critic_loss(parts, real, fake.detach().to(real.dtype))
        with _frozen(parts.critic):
            generator_loss = -parts.critic_const_fwd(fake).mean()
        total = loss + config.generator_weight * generator_loss
        if penalty is not None:
            total = total + penalty
    parts.opt_critic.zero_grad(set_to_none=True)
    parts.opt_generator.zero_grad(set_to_none=True)
    if parts.scaler_critic is not None:
        # One scaler for both: the loss is one graph.
        parts.scaler_critic.scale(total).backward()
        parts.scaler_critic.step(parts.opt_critic)
        parts.scaler_critic.step(parts.opt_generator)
        parts.scaler_critic.update()
    else:
        total.backward()
        parts.opt_critic.step()
        parts.opt_generator.step()
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, generator_loss)


def _accumulate(
    parts: Parts, critic: Tensor | None, penalty: Tensor | None, generator: Tensor | None
) -> None:
    """Add to the log window on the device: no host sync until the next log step."""
    w = parts.window
    if critic is not None:
        w[0] += critic.detach().float()
        w[3] += 1
    if penalty is not None:
        w[1] += penalty.detach().float()
    if generator is not None:
        w[2] += generator.detach().float()
