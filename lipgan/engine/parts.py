"""What one run holds (``Parts``) and how it is built from a resolved config."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lipgan import data as datasets
from lipgan import distributed, models
from lipgan.batch_random import BatchRandom
from lipgan.config import TrainConfig
from lipgan.constraints.base import Constraint
from lipgan.ema import GeneratorEMA
from lipgan.engine.resolve import build_constraint
from lipgan.errors import ConfigError

WINDOW = 6
"""Slots of ``Parts.window``."""


@dataclass
class Parts:
    """Everything the step functions touch; built once in ``train``."""

    config: TrainConfig
    data: datasets.DataSource
    constraint: Constraint
    generator: nn.Module
    critic: nn.Module
    generator_fwd: Callable[[Tensor], Tensor]
    """The generator as called for training (DDP-wrapped and/or compiled)."""
    critic_fwd: Callable[[Tensor], Tensor]
    """The critic as called for scores with a first-order backward."""
    critic_const_fwd: Callable[[Tensor], Tensor]
    """The critic as called while its weights are frozen (no DDP: nothing to reduce)."""
    penalty_critic: nn.Module
    """The critic the penalty calls (eager where double backward is needed)."""
    opt_generator: torch.optim.Optimizer
    opt_critic: torch.optim.Optimizer
    rand: BatchRandom
    processes: distributed.Processes
    local_batch: int
    autocast: Callable[[], contextlib.AbstractContextManager[Any]]
    scaler_critic: torch.amp.GradScaler | None
    scaler_generator: torch.amp.GradScaler | None
    ema: GeneratorEMA | None = None
    """The generator's weight average that metrics and samples come from (None: off)."""
    critic_batch_stats: bool = False
    """The critic normalises with batch statistics: score real and fake together always."""
    critic_steps: int = 0
    lr_scale: float = 1.0
    """The rollbacks' learning-rate factor (halved per rollback); the decay multiplies it."""
    window: Tensor = field(default_factory=lambda: torch.zeros(WINDOW))
    """Sums since the last log over applied steps: critic loss, penalty, generator loss,
    critic steps, generator steps; and steps the fp16 scaler skipped."""


def _optimizers(config: TrainConfig, generator: nn.Module, critic: nn.Module):
    assert config.lr is not None and config.generator_lr is not None  # resolved
    on_cuda = next(critic.parameters()).is_cuda
    fast = {"fused": True} if on_cuda else {"foreach": True}
    if config.optimizer == "rmsprop":
        return (
            torch.optim.RMSprop(generator.parameters(), lr=config.generator_lr, **fast),
            torch.optim.RMSprop(critic.parameters(), lr=config.lr, **fast),
        )
    return (
        torch.optim.Adam(
            generator.parameters(), lr=config.generator_lr, betas=config.betas, **fast
        ),
        torch.optim.Adam(critic.parameters(), lr=config.lr, betas=config.betas, **fast),
    )


def _batch_norm_warning(generator: nn.Module, critic: nn.Module, world: int) -> list[str]:
    batch_stats = [name for name, net in (("generator", generator), ("critic", critic))
                   if models.has_batch_statistics(net)]  # fmt: skip
    if world == 1 or not batch_stats:
        return []
    return [
        f"warning: batch norm in the {' and the '.join(batch_stats)} normalises per "
        f"process, so {world} processes do not make the updates of one process "
        "with the global batch (SyncBatchNorm needs CUDA and lipgan does not use it); "
        "use --critic-norm layer, or compare against runs with the same process count"
    ]


def _forward_passes(
    config: TrainConfig,
    generator: nn.Module,
    critic: nn.Module,
    constraint: Constraint,
    processes: distributed.Processes,
    notes: list[str],
) -> tuple[
    Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], Callable[[Tensor], Tensor], nn.Module
]:
    """The networks as the updates call them: DDP-wrapped and/or compiled where sound
    (generator, critic scores, critic with frozen weights, critic for the penalty)."""
    device = processes.device
    generator_fwd: Callable[[Tensor], Tensor] = generator
    critic_fwd: Callable[[Tensor], Tensor] = critic
    if processes.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        # The generator's and critic's gradients are averaged by one all-reduce per
        # backward; the penalty takes its input gradient with autograd.grad, so the
        # all-reduce fires once, in the ordinary backward of the total loss.
        generator_fwd = DDP(generator, device_ids=ids, broadcast_buffers=False)
        critic_fwd = DDP(critic, device_ids=ids, broadcast_buffers=False)
    penalty_critic: nn.Module = critic
    critic_const_fwd: Callable[[Tensor], Tensor] = critic
    if config.compile:
        generator_fwd = torch.compile(generator_fwd)
        critic_fwd = torch.compile(critic_fwd)
        critic_const_fwd = torch.compile(critic) if processes.world > 1 else critic_fwd
        if constraint.needs_double_backward:
            notes.append(
                "compiled the generator and the critic's score passes; the penalty's pass "
                "runs eager because torch.compile does not support double backward"
            )
        else:
            penalty_critic = critic_fwd  # type: ignore[assignment]
            notes.append("compiled the generator and every critic pass")

    return generator_fwd, critic_fwd, critic_const_fwd, penalty_critic


def _precision(
    precision: str, device: torch.device
) -> tuple[
    Callable[[], contextlib.AbstractContextManager[Any]],
    tuple[torch.amp.GradScaler | None, torch.amp.GradScaler | None],
]:
    """The autocast context of ``precision`` and, for fp16, the critic's and the
    generator's gradient scalers."""
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def autocast() -> contextlib.AbstractContextManager[Any]:
        if autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=autocast_dtype)

    scalers = (None, None)
    if precision == "fp16":
        scalers = (torch.amp.GradScaler(device.type), torch.amp.GradScaler(device.type))
    return autocast, scalers


def build_parts(
    config: TrainConfig, data: datasets.DataSource, processes: distributed.Processes
) -> tuple[Parts, list[str]]:
    """Models, optimisers, strategy and RNG for a resolved config; notes for the user."""
    notes: list[str] = []
    device = processes.device
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    random.seed(config.seed)
    generator, critic = models.build(config, data.meta())
    generator, critic = generator.to(device), critic.to(device)
    constraint = build_constraint(config, data.family)
    # A strategy may replace the critic (a wrapper or rebuilt layers); from here on the
    # replacement is the critic: optimiser, every pass, checkpoints, DDP.
    critic = constraint.attach(critic) or critic
    opt_generator, opt_critic = _optimizers(config, generator, critic)
    # The average of the unwrapped generator: every process holds the same one.
    ema = GeneratorEMA(generator, config.ema_decay) if config.ema_decay > 0 else None

    notes += _batch_norm_warning(generator, critic, processes.world)
    if config.batch_size % processes.world:
        raise ConfigError(
            f"--batch-size {config.batch_size} does not split over {processes.world} "
            "processes; use a multiple of the process count"
        )
    generator_fwd, critic_fwd, critic_const_fwd, penalty_critic = _forward_passes(
        config, generator, critic, constraint, processes, notes
    )

    autocast, scalers = _precision(config.precision, device)
    rng = torch.Generator(device).manual_seed(config.seed)
    parts = Parts(
        config=config,
        data=data,
        constraint=constraint,
        generator=generator,
        critic=critic,
        generator_fwd=generator_fwd,
        critic_fwd=critic_fwd,
        critic_const_fwd=critic_const_fwd,
        penalty_critic=penalty_critic,
        opt_generator=opt_generator,
        opt_critic=opt_critic,
        rand=BatchRandom(rng, processes.rank, processes.world, str(device)),
        processes=processes,
        local_batch=config.batch_size // processes.world,
        autocast=autocast,
        scaler_critic=scalers[0],
        scaler_generator=scalers[1],
        ema=ema,
        critic_batch_stats=models.has_batch_statistics(critic),
        window=torch.zeros(WINDOW, device=device),
    )
    return parts, notes
