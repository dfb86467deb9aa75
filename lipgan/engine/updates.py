"""The three kinds of update: critic, generator, and both at once (one-step schedule).

One generator iteration (alternating schedule) is ``n_critic`` critic updates

    L_D = E[D(G(z))] - E[D(x)] + penalty        then  after_critic_step(critic)

followed by one generator update ``L_G = -E[D(G(z))]``. The one-step schedule does
both with a single loss and one backward (docs/schedules.md).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn

from lipgan.config import TrainConfig
from lipgan.constraints.base import CriticBatch
from lipgan.engine.masks import constant_masks
from lipgan.engine.parts import Parts
from lipgan.engine.state import set_lr

WARMUP_CRITIC_STEPS = 100
"""The WGAN reference code's warm-up (``--critic-warmup``): this many critic steps for the
first ``WARMUP_ITERATIONS`` generator iterations and every ``WARMUP_EVERY``th."""
WARMUP_ITERATIONS, WARMUP_EVERY = 25, 500


def critic_steps(config: TrainConfig, iteration: int) -> int:
    """Critic updates before generator iteration ``iteration`` (0-based)."""
    warm = iteration < WARMUP_ITERATIONS or iteration % WARMUP_EVERY == 0
    return WARMUP_CRITIC_STEPS if config.critic_warmup and warm else config.n_critic


def lr_factor(config: TrainConfig, iteration: int) -> float:
    """The decay's learning-rate factor for generator iteration ``iteration`` (0-based):
    1 at the first, falling towards 0 at ``config.iters`` (a pure function of the
    iteration, so a resumed run follows the same schedule with no extra state)."""
    progress = min(iteration / config.iters, 1.0)
    if config.lr_decay == "linear":
        return 1.0 - progress
    if config.lr_decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def train_iteration(parts: Parts, iteration: int) -> None:
    """Generator iteration ``iteration`` (0-based) under the configured schedule."""
    if parts.config.lr_decay not in (None, "constant"):
        set_lr(parts, parts.lr_scale * lr_factor(parts.config, iteration))
    if parts.config.schedule == "one-step":
        one_step_update(parts)
    else:
        for _ in range(critic_steps(parts.config, iteration)):
            critic_update(parts)
        generator_update(parts)
    if parts.ema is not None:
        parts.ema.update(parts.generator)


def _backward_and_step(
    loss: Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None
) -> Tensor | None:
    """One optimiser step; under fp16, a device bool: whether the scaler applied it."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
        return None
    scaler.scale(loss).backward()
    return _scaled_step(scaler, [optimizer], loss.device)


def _scaled_step(
    scaler: torch.amp.GradScaler, optimizers: list[torch.optim.Optimizer], device: torch.device
) -> Tensor:
    """Step through the scaler: it skips the step on inf/NaN gradients and halves its scale,
    so a skipped step is one whose scale went down (compared on the device: no host sync)."""
    one = torch.ones((), device=device)
    before = scaler.scale(one)
    for optimizer in optimizers:
        scaler.step(optimizer)
    scaler.update()
    return scaler.scale(one) >= before


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
        # Same numbers, no double backward of zeros through the forward graph (masks.py).
        double = parts.constraint.needs_double_backward
        with constant_masks(parts.penalty_critic) if double else contextlib.nullcontext():
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
    applied = _backward_and_step(total, parts.opt_critic, parts.scaler_critic)
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, None, applied)


def generator_scores(parts: Parts, fake: Tensor, real: Tensor | None) -> Tensor:
    """D(fake) with the critic's weights frozen. A critic with batch statistics was
    trained on real and fake scored together, so it scores them together here too
    (fakes alone would see other statistics: up to 0.57 apart for the same fakes)."""
    if real is None:
        return parts.critic_const_fwd(fake)
    n = real.shape[0]
    return parts.critic_const_fwd(torch.cat([real, fake.to(real.dtype)]))[n:]


def generator_update(parts: Parts) -> None:
    z = parts.rand.normal(parts.local_batch, parts.config.z_dim)
    real = parts.data.draw(parts.rand, parts.local_batch) if parts.critic_batch_stats else None
    with _frozen(parts.critic), parts.autocast():
        loss = -generator_scores(parts, parts.generator_fwd(z), real).mean()
    applied = _backward_and_step(loss, parts.opt_generator, parts.scaler_generator)
    _accumulate(parts, None, None, loss, applied)


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
            real_too = real if parts.critic_batch_stats else None
            generator_loss = -generator_scores(parts, fake, real_too).mean()
        total = loss + config.generator_weight * generator_loss
        if penalty is not None:
            total = total + penalty
    parts.opt_critic.zero_grad(set_to_none=True)
    parts.opt_generator.zero_grad(set_to_none=True)
    applied = None
    if parts.scaler_critic is not None:
        # One scaler for both: the loss is one graph.
        parts.scaler_critic.scale(total).backward()
        optimizers = [parts.opt_critic, parts.opt_generator]
        applied = _scaled_step(parts.scaler_critic, optimizers, total.device)
    else:
        total.backward()
        parts.opt_critic.step()
        parts.opt_generator.step()
    parts.constraint.after_critic_step(parts.critic)
    parts.critic_steps += 1
    _accumulate(parts, loss, penalty, generator_loss, applied)


def _accumulate(
    parts: Parts,
    critic: Tensor | None,
    penalty: Tensor | None,
    generator: Tensor | None,
    applied: Tensor | None = None,
) -> None:
    """Add to the log window on the device: no host sync until the next log step.

    A step the fp16 scaler skipped (``applied`` False) changed nothing, so its losses
    (often inf or NaN: the reason it was skipped) are counted in slot 5, not logged.
    """
    w = parts.window

    def add(slot: int, value: Tensor) -> None:
        value = value.detach().float()
        w[slot] += value if applied is None else torch.where(applied, value, 0.0)

    one = torch.ones((), device=w.device)
    if critic is not None:
        add(0, critic)
        add(3, one)
    if penalty is not None:
        add(1, penalty)
    if generator is not None:
        add(2, generator)
        add(4, one)
    if applied is not None:
        w[5] += (~applied).float()
