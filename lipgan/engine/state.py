"""The whole training state as a checkpoint, and back."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan import __version__
from lipgan.ema import GeneratorEMA
from lipgan.engine.parts import WINDOW, Parts
from lipgan.runio import load_state


def _rng_state(parts: Parts) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "engine": parts.rand.generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(parts: Parts, state: dict[str, Any]) -> None:
    parts.rand.generator.set_state(state["engine"])
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def snapshot(parts: Parts, iteration: int, extra: dict[str, Any]) -> dict[str, Any]:
    """The whole training state after ``iteration`` as tensors and plain data."""
    state = {
        "lipgan_version": __version__,
        "config": parts.config.to_dict(),
        "data": parts.data.meta(),
        "iteration": iteration,
        "critic_steps": parts.critic_steps,
        "window": parts.window.detach().cpu().clone(),
        "generator": parts.generator.state_dict(),
        **({"generator_ema": parts.ema.state_dict()} if parts.ema is not None else {}),
        "critic": parts.critic.state_dict(),
        "opt_generator": parts.opt_generator.state_dict(),
        "opt_critic": parts.opt_critic.state_dict(),
        "rng": _rng_state(parts),
        **extra,
    }
    for name in ("scaler_critic", "scaler_generator"):
        scaler = getattr(parts, name)
        if scaler is not None:
            state[name] = scaler.state_dict()
    return copy.deepcopy(state)


def restore(parts: Parts, state: dict[str, Any], path: Path) -> None:
    load_state(parts.generator, state["generator"], "generator", path)
    if parts.ema is not None:
        if "generator_ema" in state:
            parts.ema.load_state_dict(state["generator_ema"])
        else:  # a checkpoint from before EMA, or from a run without it: start it here
            parts.ema = GeneratorEMA(parts.generator, parts.ema.decay)
    load_state(parts.critic, state["critic"], "critic", path)
    parts.opt_generator.load_state_dict(state["opt_generator"])
    parts.opt_critic.load_state_dict(state["opt_critic"])
    for name in ("scaler_critic", "scaler_generator"):
        scaler = getattr(parts, name)
        if scaler is not None and name in state:
            scaler.load_state_dict(state[name])
    parts.critic_steps = int(state["critic_steps"])
    window = state["window"].clone().to(parts.window.device)
    parts.window = torch.cat([window, window.new_zeros(WINDOW - len(window))])  # older: 4
    _set_rng_state(parts, state["rng"])


def set_lr_scale(parts: Parts, scale: float) -> None:
    """The rollbacks' factor (kept in ``Parts`` and checkpoints); the decay multiplies it."""
    parts.lr_scale = scale
    set_lr(parts, scale)


def set_lr(parts: Parts, factor: float) -> None:
    """Both optimisers at their configured learning rate times ``factor``."""
    config = parts.config
    for group in parts.opt_critic.param_groups:
        group["lr"] = config.lr * factor
    for group in parts.opt_generator.param_groups:
        group["lr"] = config.generator_lr * factor
