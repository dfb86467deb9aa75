"""One row per strategy over its seeds: the spread of every number, each seed's value kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from lipgan.compare.plan import Entry
from lipgan.compare.stats import spread

SPREAD_KEYS = (
    "final_quality",
    "best_quality",
    "modes",
    "hq_fraction",
    "seconds_per_step",
    "steps_to_threshold",
    "seconds_to_threshold",
    "grad_norm_interp_mean",
    "lipschitz_estimate",
    "lipschitz_certified",
    "lipschitz_max_grad_norm",
    "weights_at_bound",
    "peak_memory_mib",
    "final_w_estimate",
)
QUALITY_EXTRAS = (
    "w1_floor",
    "frechet_floor",
    "frechet_inf",
    "frechet_inf_floor",
    "kid",
    "kid_floor",
    "precision",
    "precision_floor",
    "recall",
    "recall_floor",
    "density",
    "density_floor",
    "coverage",
    "coverage_floor",
)
"""The last log step's other quality numbers and their real-vs-real floors, kept per run
and over seeds where the data has them (docs/quality.md)."""
SPREAD_KEYS += QUALITY_EXTRAS
OPTIONAL = ("modes", "hq_fraction", "weights_at_bound", "lipschitz_certified", *QUALITY_EXTRAS)
"""Left out of a strategy's row when no seed has them (no mixture data, no clipping, no
classifier features)."""
WALL_CLOCK = ("seconds_per_step", "seconds_to_threshold", "peak_memory_mib")
"""Numbers that depend on the machine and its load, not on the seed."""


def group(rows: Sequence[dict[str, Any]], entries: Sequence[Entry]) -> dict[str, list[dict]]:
    """Per-run rows by strategy name, in the plan's order, seeds in order."""
    by_name: dict[str, list[dict[str, Any]]] = {e.name: [] for e in entries}
    for row in rows:
        by_name[row["name"]].append(row)
    return by_name


def summarize(entry: Entry, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The strategy's row: every number as {n, mean, std, ci95, values} over its seeds.

    ``steps_to_threshold`` and ``seconds_to_threshold`` are over the seeds that reached
    the threshold; ``reached`` says how many did.
    """
    statuses = Counter(r.get("status") for r in rows)
    summary: dict[str, Any] = {
        "name": entry.name,
        "constraint": entry.constraint,
        "clip_value": entry.clip_value,
        "seeds": [r.get("seed") for r in rows],
        "status": dict(statuses),
        "quality_metric": next(
            (r["quality_metric"] for r in rows if r.get("quality_metric")), None
        ),
        "threshold": next((r["threshold"] for r in rows if r.get("threshold") is not None), None),
    }
    for key in SPREAD_KEYS:
        values = [r.get(key) for r in rows]
        if key in OPTIONAL and all(v is None for v in values):
            continue
        summary[key] = {**spread(values).to_dict(), "values": values}
    reached = sum(r.get("steps_to_threshold") is not None for r in rows)
    for key in ("steps_to_threshold", "seconds_to_threshold"):
        summary[key]["reached"] = reached
    return summary


def status_text(status: dict[str, int]) -> str:
    """'5/5 ok', or '3 ok, 2 diverged'."""
    total = sum(status.values())
    if set(status) == {"ok"}:
        return f"{total}/{total} ok"
    return ", ".join(f"{count} {name}" for name, count in status.items())
