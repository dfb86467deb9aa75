"""Measurements taken at log steps, off the hot path, and the final summary."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lipgan import diagnostics, distributed
from lipgan.batch_random import BatchRandom
from lipgan.config import TrainConfig
from lipgan.ema import evaluating
from lipgan.engine.parts import Parts

EVAL_SEED_OFFSET = 1_000_003  # evaluation draws never share a stream with training


@torch.no_grad()
def _eval_noise(config: TrainConfig, family: str, device: torch.device) -> Tensor:
    """Fixed noise for metrics: eval_sets sets of eval_samples on toy data, else one."""
    sets = config.eval_sets if family == "points" else 1
    g = torch.Generator().manual_seed(config.seed + EVAL_SEED_OFFSET)
    return torch.randn(config.eval_samples * sets, config.z_dim, generator=g).to(device)


def fresh_interpolate_grad_norms(parts: Parts, n: int = 256) -> Tensor:
    """||grad_x D(x_hat)|| on fresh interpolates from a side generator (no training RNG)."""
    config = parts.config
    side = BatchRandom(
        torch.Generator(parts.rand.generator.device).manual_seed(config.seed + 7),
        device=str(parts.rand.device),
    )
    real = parts.data.draw(side, n)
    with torch.no_grad():
        fake = parts.generator(side.normal(n, config.z_dim)).to(real.dtype)
    return diagnostics.interpolate_grad_norms(parts.critic, real, fake, side)


def measure(parts: Parts, iteration: int, eval_z: Tensor) -> dict[str, float]:
    """The deterministic metrics of one log step (same seed, same numbers)."""
    window = distributed.mean_across(parts.window.to(parts.rand.device), parts.processes).cpu()
    critic_steps = max(float(window[3]), 1.0)
    generator_steps = max(float(window[4]), 1.0)
    critic_loss_mean = float(window[0]) / critic_steps
    metrics: dict[str, float] = {
        "step": iteration,
        "loss/critic": critic_loss_mean,
        "loss/penalty": float(window[1]) / critic_steps,
        "loss/generator": float(window[2]) / generator_steps,
        "wasserstein/estimate": -critic_loss_mean,
    }
    if parts.scaler_critic is not None:
        metrics["amp/skipped_steps"] = float(window[5])
    with evaluating(parts.generator, parts.critic):  # a measurement moves no state
        norms = fresh_interpolate_grad_norms(parts)
    metrics["lipschitz/grad_norm_mean"] = float(norms.mean())
    metrics["lipschitz/grad_norm_std"] = float(norms.std())
    if parts.processes.is_main:  # only the main process writes metrics
        seed = parts.config.seed + EVAL_SEED_OFFSET
        quality = parts.data.evaluate(draw_samples(parts, eval_z), seed, sets=_eval_sets(parts))
        metrics.update(quality)
        if parts.ema is not None:  # the raw generator's quality beside the average's
            raw = draw_samples(parts, eval_z, raw=True)
            raw_quality = parts.data.evaluate(raw, seed, sets=_eval_sets(parts))
            metrics.update({"quality_raw/" + k[8:]: v for k, v in raw_quality.items()})
    return {k: (round(v, 8) if isinstance(v, float) else v) for k, v in metrics.items()}


@torch.no_grad()
def draw_samples(parts: Parts, z: Tensor, raw: bool = False) -> Tensor:
    """Samples for metrics and pictures: from the EMA generator (the raw one when EMA is
    off or ``raw``), in eval mode, as `lipgan sample` draws them."""
    generator = parts.generator if raw or parts.ema is None else parts.ema.model
    with evaluating(generator):
        return generator(z)


def _eval_sets(parts: Parts) -> int:
    return parts.config.eval_sets if parts.data.family == "points" else 1


def _finite(parts: Parts) -> bool:
    """Whether what was applied is finite (weights, logged losses), on every process.

    Steps the fp16 scaler skipped are not in the window, so they cannot stop the run; a
    window in which it skipped every step (and applied none) counts as diverged.
    """
    values = [parts.window] + [p.detach() for p in parts.critic.parameters()]
    values += [p.detach() for p in parts.generator.parameters()]
    finite = bool(torch.stack([torch.isfinite(v).all().cpu() for v in values]).all())
    w = parts.window
    stuck = bool(w[3] + w[4] == 0) and bool(w[5] > 0)
    return distributed.all_agree(finite and not stuck, parts.processes)


def summarize(
    metrics: dict[str, float], seconds: float, iters: int, rollbacks: int
) -> dict[str, Any]:
    """The flat final summary: every ``quality/x`` also as plain ``x`` (w1, modes ...),
    every ``quality_raw/x`` (the raw generator's, beside the EMA's) as ``x_raw``."""
    summary: dict[str, Any] = {
        key.removeprefix("quality/"): value
        for key, value in metrics.items()
        if key.startswith("quality/")
    }
    summary.update(
        {
            key.removeprefix("quality_raw/") + "_raw": value
            for key, value in metrics.items()
            if key.startswith("quality_raw/")
        }
    )
    summary.update({k: v for k, v in metrics.items() if k not in ("seconds", "seconds_per_iter")})
    summary["seconds"] = round(seconds, 3)
    summary["seconds_per_iter"] = round(seconds / max(iters, 1), 6)
    summary["rollbacks"] = rollbacks
    return summary
