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

from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan import diagnostics, engine, runs
from lipgan.compare.execute import Outcome
from lipgan.compare.plan import Entry
from lipgan.config import TrainConfig
from lipgan.constraints.base import BatchRandom
from lipgan.errors import LipganError
from lipgan.runio import RunFolder

QUALITY_KEYS = ("quality/w1", "quality/frechet", "quality/js4")
"""The headline quality metric: the first one a run logs (all are lower-is-better)."""


DIAGNOSTIC_SAMPLES = 512


def read_timing(run_dir: Path) -> list[dict[str, Any]]:
    path = RunFolder(run_dir).timing
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def quality_key(records: list[dict[str, Any]]) -> str | None:
    """The first of quality/w1, quality/frechet, quality/js4 that the run logged."""
    for key in QUALITY_KEYS:
        if any(key in r for r in records):
            return key
    return None


def threshold_for(records: list[dict[str, Any]], key: str | None, given: float | None):
    """The user's threshold, else 2x the W1 noise floor (None for other metrics)."""
    if given is not None:
        return given
    floors = [r["quality/w1_floor"] for r in records if "quality/w1_floor" in r]
    if key == "quality/w1" and floors:
        return round(2 * floors[-1], 8)
    return None


@dataclass
class RunResult:
    """One strategy's row, diagnostics and curves."""

    entry: Entry
    row: dict[str, Any]
    critic: diagnostics.CriticReport | None
    curves: dict[str, tuple[list[float], list[float], list[float]]]
    """metric -> (steps, seconds, values)."""
    panel: tuple[np.ndarray, np.ndarray, Any] | None = None
    """(real, fake, critic) for the points figure."""
    last_sample: Path | None = None


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
    timing = {t["step"]: t for t in read_timing(run_dir)}
    summary = json.loads(folder.summary.read_text("utf-8")) if folder.summary.exists() else {}
    key = quality_key(records)
    row: dict[str, Any] = {
        "name": entry.name,
        "constraint": entry.constraint,
        "status": outcome.status if outcome else ("ok" if summary else "incomplete"),
        **quality_numbers(records, timing, summary, key, threshold_for(records, key, threshold)),
        "peak_memory_mib": outcome.peak_mib if outcome else None,
    }
    critic_report, panel = _examine_critic(run_dir)
    if critic_report is not None:
        numbers = critic_report.numbers()
        row.update(
            grad_norm_interp_mean=numbers["grad_norm_interp_mean"],
            grad_norm_interp_std=numbers["grad_norm_interp_std"],
            lipschitz_estimate=numbers["lipschitz_estimate"],
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
    if records and "quality/modes" in records[-1]:
        numbers["modes"] = records[-1]["quality/modes"]
    return numbers


def _examine_critic(run_dir: Path) -> tuple[diagnostics.CriticReport | None, Any]:
    """The final critic's diagnostics and, for 2-D points, (real, fake, critic) to draw."""
    try:
        generator, critic, state = runs.load_generator(run_dir)
    except LipganError:
        return None, None
    if critic is None:
        return None, None
    config = TrainConfig.from_dict(state["config"], source=f"{run_dir} config")
    data = datasets.load(config.data, **engine._data_options(config))
    n = min(config.eval_samples, DIAGNOSTIC_SAMPLES)
    rand = BatchRandom(torch.Generator().manual_seed(config.seed + 11))
    real = data.draw(rand, n)
    with torch.no_grad():
        fake = generator(rand.normal(n, config.z_dim)).to(real.dtype)
    clip = config.clip_value if "c" in strategy_params(config.constraint) else None
    report = diagnostics.examine_critic(critic, real, fake, config.seed, clip)
    panel = (real.numpy(), fake.numpy(), critic) if data.family == "points" else None
    return report, panel


def strategy_params(spec: str) -> set[str]:
    return {p for info in registry.parse(spec) for p in info.params}
