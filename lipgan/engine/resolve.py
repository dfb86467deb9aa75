"""The configuration resolved for a strategy and a data family, and what it names."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from lipgan import constraints as registry
from lipgan import distributed, models
from lipgan.config import TrainConfig, replace
from lipgan.constraints.base import Constraint, has_penalty
from lipgan.errors import ConfigError


def resolve(config: TrainConfig, family: str) -> TrainConfig:
    """Fill every strategy- and data-dependent default, so the saved config is complete."""
    recommended = registry.optimizer_for(config.constraint)
    optimizer = config.optimizer or recommended.name
    if optimizer != recommended.name:
        recommended = registry.ADAM if optimizer == "adam" else registry.RMSPROP
    default_lr, default_betas = recommended.for_family(family)
    lr = config.lr if config.lr is not None else default_lr
    betas = None
    if optimizer == "adam":
        betas = config.betas or default_betas
    elif config.betas is not None:
        raise ConfigError("--betas only applies to Adam; drop it or add --optimizer adam")

    params = registry.resolve_params(
        config.constraint, family, config.penalty_weight, config.clip_value,
        config.constraint_options,
    )  # fmt: skip
    weights = {p["weight"] for p in params.values() if "weight" in p}
    clips = {p["c"] for p in params.values() if "c" in p}
    penalty_weight = weights.pop() if len(weights) == 1 else None
    clip_value = clips.pop() if len(clips) == 1 else None
    options = {
        f"{name}.{key}": value
        for name, part in params.items()
        for key, value in part.items()
        if not (key == "weight" and penalty_weight is not None)
        and not (key == "c" and clip_value is not None)
    }
    resolved = replace(
        config,
        optimizer=optimizer,
        lr=lr,
        generator_lr=config.generator_lr or lr,
        betas=betas,
        penalty_weight=penalty_weight,
        clip_value=clip_value,
        constraint_options=options,
        n_critic=config.n_critic or (1 if config.schedule == "one-step" else 5),
        z_dim=config.z_dim or (2 if family == "points" else 128),
        hidden=config.hidden or {"points": 512, "text": 32}.get(family, 64),
        batch_size=config.batch_size or (64 if family == "text" else 256),
        architecture=models.architecture_for(config, family),
    )
    if resolved.critic_norm == "batch" and has_penalty(build_constraint(resolved, family)):
        raise ConfigError(
            "--critic-norm batch cannot be used with a penalty: the penalty is per sample and "
            "batch norm makes each score depend on the whole batch; use --critic-norm layer"
        )
    if resolved.precision == "fp16" and distributed.pick_device(resolved.device).type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return resolved


def build_constraint(config: TrainConfig, family: str) -> Constraint:
    params = registry.resolve_params(
        config.constraint, family, config.penalty_weight, config.clip_value,
        config.constraint_options,
    )  # fmt: skip
    return registry.build(config.constraint, params)


def default_out(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    data = config.data.replace("/", "_").replace(":", "-")[:40]
    name = config.constraint.replace("+", "-")
    return Path("runs") / f"{name}__{data}__s{config.seed}__{stamp}"


def _data_options(config: TrainConfig) -> dict[str, Any]:
    return {
        "image_size": config.image_size,
        "channels": config.channels,
        "seq_len": config.seq_len,
        "seed": config.seed,
    }
