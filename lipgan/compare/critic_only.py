"""Critic-only mode (paper, Fig. 2): each strategy's critic against a fixed generator.

It builds each strategy's parts with ``engine.build_parts`` and calls
``engine.critic_update`` with a fixed generator stand-in (real data plus Gaussian noise),
so the critic is trained to optimality against a distribution that never moves.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from lipgan import data as datasets
from lipgan import diagnostics, distributed, engine
from lipgan.batch_random import BatchRandom
from lipgan.compare.examine import DIAGNOSTIC_SAMPLES, RunResult, clean, clip_bound
from lipgan.compare.plan import CompareSetup, Entry, entry_config
from lipgan.config import TrainConfig
from lipgan.executors import Event, Outcome, peak_rss_mib, reset_peak_rss, torch_threads


class FixedGenerator:
    """The generator held fixed at the real data plus Gaussian noise; ignores z.

    It has its own random stream, so the critic's training draws (real batches,
    interpolation weights) are the same for every strategy.
    """

    def __init__(
        self,
        data: datasets.DataSource,
        std: float,
        seed: int,
        device: str,
        shift: torch.Tensor | None = None,
    ) -> None:
        self.data = data
        self.std = std
        self.shift = shift
        """Added to every sample: with std 0, the real data translated (exact W1 = |shift|)."""
        self.rand = BatchRandom(torch.Generator().manual_seed(seed + 3), device=device)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        real = self.data.draw(self.rand, z.shape[0])
        fake = real + self.std * self.rand.normal(z.shape[0], *real.shape[1:]).to(real.dtype)
        return fake if self.shift is None else fake + self.shift.to(fake)


def train_critics(
    compare: CompareSetup, on_event: Callable[[Event], None]
) -> list[tuple[RunResult, torch.nn.Module]]:
    """Train each strategy's critic for ``iters`` steps against ``FixedGenerator``."""
    base = compare.base
    data = datasets.load_for(base)
    processes = distributed.Processes(device=distributed.pick_device(base.device))
    results = []
    with torch_threads(compare.threads):
        for entry in compare.entries:
            results.append(_train_critic(compare, entry, data, processes, on_event))
    return results


def _train_critic(
    compare: CompareSetup,
    entry: Entry,
    data: datasets.DataSource,
    processes: distributed.Processes,
    on_event: Callable[[Event], None],
) -> tuple[RunResult, torch.nn.Module]:
    base = compare.base
    config = engine.resolve(entry_config(base, entry, base.seed, compare.out), data.family)
    reset = reset_peak_rss()
    stand_in = FixedGenerator(data, compare.noise_std, config.seed, str(processes.device))
    parts, seconds, status = fit_critic(config, data, processes, stand_in, entry.name, on_event)
    outcome = Outcome(status, peak_rss_mib(reset))
    on_event(Event(entry.name, config.iters, config.iters, outcome=outcome))
    real, fake = fixed_sets(data, compare.noise_std, config.seed, config.eval_samples)
    critic = parts.critic
    check = diagnostics.w1_check(critic, real, fake)
    report = diagnostics.examine_critic(critic, real, fake, config.seed, clip_bound(config))
    numbers = report.numbers()
    row = {
        "name": entry.name,
        "constraint": entry.constraint,
        "status": status,
        "critic_steps": parts.critic_steps,
        "w_estimate": check.estimate,
        "w1_exact": check.exact,
        "w1_fraction": check.fraction,
        "seconds_per_step": seconds / max(parts.critic_steps, 1),
        "grad_norm_interp_mean": numbers["grad_norm_interp_mean"],
        "grad_norm_interp_std": numbers["grad_norm_interp_std"],
        "lipschitz_estimate": numbers["lipschitz_estimate"],
        "weights_at_bound": numbers["weights_at_bound"],
        "peak_memory_mib": peak_rss_mib(reset),
    }
    panel = (real.numpy(), fake.numpy(), critic) if data.family == "points" else None
    result = RunResult(entry, {k: clean(v) for k, v in row.items()}, report, {}, panel)
    return result, critic


def fit_critic(
    config: TrainConfig,
    data: datasets.DataSource,
    processes: distributed.Processes,
    stand_in: FixedGenerator,
    name: str = "critic",
    on_event: Callable[[Event], None] | None = None,
) -> tuple[engine.Parts, float, str]:
    """(parts, seconds, status): ``config.iters`` critic steps against ``stand_in``;
    ``config`` is resolved. Status 'diverged' when the losses stop being finite."""
    parts, _ = engine.build_parts(config, data, processes)
    parts.generator_fwd = stand_in
    t0 = time.perf_counter()
    status = "ok"
    for step in range(1, config.iters + 1):
        engine.critic_update(parts)
        if step % config.log_every == 0 or step == config.iters:
            if not torch.isfinite(parts.window).all():
                status = "diverged"
            if on_event is not None:
                on_event(Event(name, step, config.iters))
            if status == "diverged":
                break
    return parts, time.perf_counter() - t0, status


def fixed_sets(
    data: datasets.DataSource,
    noise_std: float,
    seed: int,
    samples: int,
    shift: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two fixed point sets the fitted critic is measured on: real samples and an
    independent draw of the fixed generator (their own seeds, not the training stream)."""
    n = min(samples, DIAGNOSTIC_SAMPLES)
    real = data.draw(BatchRandom(torch.Generator().manual_seed(seed + 11)), n)
    fake = FixedGenerator(data, noise_std, seed + 1, "cpu", shift)(real)
    return real, fake
