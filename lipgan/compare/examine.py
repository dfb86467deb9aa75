"""Reading a finished (or diverged) run folder back: its table row, curves and critic.

Everything comes from the folder alone (metrics.jsonl, timing.jsonl, summary.json,
checkpoints/last.pt), so a compare, ``lipgan diagnose`` and a resumed compare read a run
the same way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan import data as datasets
from lipgan import diagnostics, engine, runs
from lipgan.batch_random import BatchRandom
from lipgan.compare.plan import Entry
from lipgan.compare.summary import QUALITY_EXTRAS
from lipgan.config import TrainConfig, load_toml, strategy_param
from lipgan.errors import LipganError
from lipgan.executors import Outcome
from lipgan.runio import RunFolder

QUALITY_KEYS = ("quality/w1", "quality/frechet", "quality/js4")
"""The headline quality metric: the first one a run logs (all are lower-is-better)."""


DIAGNOSTIC_SAMPLES = 512


def quality_key(records: list[dict[str, Any]]) -> str | None:
    """The first of quality/w1, quality/frechet, quality/js4 that the run logged."""
    for key in QUALITY_KEYS:
        if any(key in r for r in records):
            return key
    return None


def floor_key(key: str | None) -> str | None:
    """The noise floor logged beside a quality metric: what a perfect generator scores
    (held-out real data against the reference, measured the same way)."""
    return f"{key}_floor" if key else None


def threshold_for(records: list[dict[str, Any]], key: str | None, given: float | None):
    """The user's threshold, else 2x the quality metric's noise floor (W1, Fréchet or JS-4;
    None when the run logged no floor)."""
    if given is not None:
        return given
    floor = floor_key(key)
    floors = [r[floor] for r in records if floor in r]
    return round(2 * floors[-1], 8) if floors else None


def shared_threshold(run_dirs: list[Path], given: float | None) -> float | None:
    """One threshold for every run of a compare: the user's, else 2x the mean noise floor
    of the quality metric.

    Each seed measures its own floor; the mean over runs makes 'steps to threshold'
    comparable across strategies and seeds.
    """
    if given is not None:
        return given
    floors = []
    for run_dir in run_dirs:
        records = RunFolder(run_dir).read_metrics() if run_dir.is_dir() else []
        key = floor_key(quality_key(records))
        floors += [r[key] for r in records[-1:] if key in r]
    return round(2 * float(np.mean(floors)), 8) if floors else None


@dataclass
class RunResult:
    """One run's row, diagnostics and curves."""

    entry: Entry
    row: dict[str, Any]
    critic: diagnostics.CriticReport | None
    curves: dict[str, tuple[list[float], list[float], list[float]]]
    """metric -> (steps, seconds, values)."""
    panel: tuple[np.ndarray, np.ndarray, Any] | None = None
    """(real, fake, critic) for the points figure."""
    last_sample: Path | None = None

    def record(self) -> dict[str, Any]:
        """The run as results.json keeps it: the row and every diagnostic number."""
        return {**self.row, "diagnostics": self.critic.numbers() if self.critic else None}


def clean(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) else None
    return value


def examine_run(
    run_dir: Path,
    entry: Entry,
    outcome: Outcome | None = None,
    threshold: float | None = None,
) -> RunResult:
    """Everything the report shows about one finished (or diverged) run folder."""
    folder = RunFolder(run_dir)
    records = folder.read_metrics()
    timing = {t["step"]: t for t in folder.read_timing() if "step" in t}
    summary = json.loads(folder.summary.read_text("utf-8")) if folder.summary.exists() else {}
    key = quality_key(records)
    config = load_toml(folder.config) if folder.config.is_file() else None
    loaded = _load(run_dir)
    family = loaded[2]["data"]["family"] if loaded is not None else None
    row: dict[str, Any] = {
        "name": entry.name,
        "constraint": entry.constraint,
        "seed": config.seed if config is not None else None,
        "status": outcome.status if outcome else ("ok" if summary else "incomplete"),
        **_strategy_numbers(config, family),
        **quality_numbers(records, timing, summary, key, threshold_for(records, key, threshold)),
        "peak_memory_mib": outcome.peak_mib if outcome else None,
    }
    critic_report, panel = _examine_critic(loaded, run_dir)
    if critic_report is not None:
        numbers = critic_report.numbers()
        row.update(
            grad_norm_interp_mean=numbers["grad_norm_interp_mean"],
            grad_norm_interp_std=numbers["grad_norm_interp_std"],
            lipschitz_estimate=numbers["lipschitz_estimate"],
            lipschitz_certified=numbers.get("lipschitz_certified"),
            lipschitz_max_grad_norm=numbers.get("lipschitz_max_grad_norm"),
            weights_at_bound=numbers["weights_at_bound"],
        )
    samples = sorted(folder.samples.glob("step_*.*")) if folder.samples.exists() else []
    return RunResult(
        entry,
        {k: clean(v) for k, v in row.items()},
        critic_report,
        _curves(records, timing, key),
        panel,
        samples[-1] if samples else None,
    )


def _curves(
    records: list[dict[str, Any]], timing: dict[int, dict[str, Any]], key: str | None
) -> dict[str, tuple[list[float], list[float], list[float]]]:
    curves: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for metric in filter(None, (key, "wasserstein/estimate")):
        points = [r for r in records if metric in r and r["step"] in timing]
        curves[metric] = (
            [r["step"] for r in points],
            [timing[r["step"]]["seconds"] for r in points],
            [r[metric] if r[metric] is not None else float("nan") for r in points],
        )
    return curves


def quality_numbers(
    records: list[dict[str, Any]],
    timing: dict[int, dict[str, Any]],
    summary: dict[str, Any],
    key: str | None,
    limit: float | None,
) -> dict[str, Any]:
    """Final and best quality, time to the threshold and time per step of one run."""
    values = [r[key] for r in records if key and r.get(key) is not None]
    finite = [v for v in values if math.isfinite(v)]
    reached = next(
        (r for r in records if limit is not None and key and (r.get(key) or math.inf) <= limit),
        None,
    )
    last_time = timing[max(timing)] if timing else None
    if "seconds_per_iter" in summary:
        per_step = summary["seconds_per_iter"]
    elif last_time is not None:
        per_step = last_time["seconds"] / max(last_time["step"], 1)
    else:
        per_step = None
    numbers = {
        "quality_metric": key,
        "final_quality": values[-1] if values else None,
        "best_quality": min(finite) if finite else None,
        "threshold": limit,
        "steps_to_threshold": reached["step"] if reached else None,
        "seconds_to_threshold": timing[reached["step"]]["seconds"]
        if reached and reached["step"] in timing
        else None,
        "seconds_per_step": per_step,
        "final_w_estimate": records[-1].get("wasserstein/estimate") if records else None,
    }
    for name in ("modes", "hq_fraction", *QUALITY_EXTRAS):
        if records and f"quality/{name}" in records[-1]:
            numbers[name] = records[-1][f"quality/{name}"]
    return numbers


def _strategy_numbers(config: TrainConfig | None, family: str | None) -> dict[str, Any]:
    """What the findings need to know about the strategy: its bound, its penalty."""
    if config is None:
        return {}
    penalty = None
    if family is not None:
        penalty = engine.has_penalty(engine.build_constraint(config, family))
    return {
        "clip_value": clip_bound(config),
        "penalty": penalty,
        "penalty_weight": strategy_param(config, "weight"),
    }


def clip_bound(config: TrainConfig) -> float | None:
    """The clipping bound c when the strategy clips, else None."""
    return strategy_param(config, "c")


def _load(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]] | None:
    """(generator, critic, checkpoint) from checkpoints/last.pt; None when unreadable."""
    try:
        generator, critic, state = runs.load_generator(run_dir)
    except LipganError:
        return None
    return None if critic is None else (generator, critic, state)


def _examine_critic(
    loaded: tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]] | None, run_dir: Path
) -> tuple[diagnostics.CriticReport | None, Any]:
    """The final critic's diagnostics and, for 2-D points, (real, fake, critic) to draw."""
    if loaded is None:
        return None, None
    generator, critic, state = loaded
    config = TrainConfig.from_dict(state["config"], source=f"{run_dir} config")
    data = datasets.load_for(config)
    n = min(config.eval_samples, DIAGNOSTIC_SAMPLES)
    rand = BatchRandom(torch.Generator().manual_seed(config.seed + 11))
    real = data.draw(rand, n)
    with torch.no_grad():
        fake = generator(rand.normal(n, config.z_dim)).to(real.dtype)
    report = diagnostics.examine_critic(critic, real, fake, config.seed, clip_bound(config))
    panel = (real.numpy(), fake.numpy(), critic) if data.family == "points" else None
    return report, panel
