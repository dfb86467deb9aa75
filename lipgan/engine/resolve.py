"""The configuration resolved for a strategy and a data family, and what it names."""

from __future__ import annotations

import torch

from lipgan import constraints as registry
from lipgan import distributed, models
from lipgan.config import TrainConfig, replace
from lipgan.constraints.base import Constraint, has_penalty
from lipgan.errors import ConfigError

DEFAULT_ITERS = {"points": 2000, "images": 1000, "text": 1000}
"""The default budget per data family (docs/results.md: what each reaches)."""


def resolve_iters(config: TrainConfig, family: str) -> int:
    return config.iters or DEFAULT_ITERS.get(family, 1000)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether ``device`` has bf16 matrix units: a CUDA device of compute capability 8.0+
    (Ampere on), or a CPU with AMX-BF16 or AVX-512-BF16. Elsewhere bf16 matmuls are
    emulated and far slower than fp32 (docs/performance.md, "How close each step is")."""
    if device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        return major >= 8 and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        flags = torch.cpu.get_capabilities()
        return bool(flags.get("amx_bf16") or flags.get("avx512_bf16"))
    return False


def resolve_precision(config: TrainConfig) -> tuple[str, bool]:
    """(precision to train in, whether 'auto' chose it): 'auto' becomes bf16 where the
    hardware runs it fast and fp32 elsewhere; a choice made earlier stays made."""
    if config.precision != "auto":
        return config.precision, config.precision_auto
    device = distributed.pick_device(config.device)
    return ("bf16" if bf16_is_fast(device) else "fp32"), True


def resolve(config: TrainConfig, family: str) -> TrainConfig:
    """Fill every strategy- and data-dependent default, so the saved config is complete."""
    recommended = registry.optimizer_for(config.constraint)
    optimizer = config.optimizer or recommended.name
    if optimizer != recommended.name:
        recommended = registry.ADAM if optimizer == "adam" else registry.RMSPROP
    default_lr, default_betas = recommended.for_family(family)
    default_n_critic, default_decay = recommended.schedule_for(family)
    lr = config.lr if config.lr is not None else default_lr
    betas = None
    if optimizer == "adam":
        betas = config.betas or default_betas
    elif config.betas is not None:
        raise ConfigError("--betas only applies to Adam; drop it or add --optimizer adam")

    # Every part's every parameter, written out: the one form the run folder keeps.
    params = registry.resolve_params(config.constraint, family, options=config.constraint_options)
    options = {
        f"{name}.{key}": value for name, part in params.items() for key, value in part.items()
    }
    precision, precision_auto = resolve_precision(config)
    resolved = replace(
        config,
        precision=precision,
        precision_auto=precision_auto,
        optimizer=optimizer,
        lr=lr,
        generator_lr=config.generator_lr or lr,
        betas=betas,
        constraint_options=options,
        iters=resolve_iters(config, family),
        n_critic=config.n_critic or (1 if config.schedule == "one-step" else default_n_critic),
        lr_decay=config.lr_decay or default_decay,
        z_dim=config.z_dim or (2 if family == "points" else 128),
        hidden=config.hidden or {"points": 512, "text": 32}.get(family, 64),
        batch_size=config.batch_size or (64 if family == "text" else 256),
        architecture=models.architecture_for(config, family),
    )
    constraint = build_constraint(resolved, family)  # the strategy's own checks run here
    if resolved.critic_norm == "batch" and has_penalty(constraint):
        raise ConfigError(
            "--critic-norm batch cannot be used with a penalty: the penalty is per sample and "
            "batch norm makes each score depend on the whole batch; use --critic-norm layer"
        )
    if resolved.precision == "fp16" and distributed.pick_device(resolved.device).type != "cuda":
        raise ConfigError("--precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
    return resolved


def build_constraint(config: TrainConfig, family: str) -> Constraint:
    """The strategy of a resolved config (every parameter is in constraint_options)."""
    params: dict[str, dict[str, float]] = {}
    for key, value in config.constraint_options.items():
        part, _, name = key.partition(".")
        params.setdefault(part, {})[name] = value
    return registry.build(config.constraint, params)
