"""What a study leaves in its folder: the best configuration, every trial, what mattered.

- ``best.toml``: the best trial's resolved config (its first selection seed's run, less
  ``out`` and ``seed``), which ``lipgan train --config best.toml`` trains;
- ``trials.csv`` and ``trials.md``: one row per trial (draw), its values and objective;
- ``results.json``: all of it, with the budget curve (expected best of k trials) and
  Optuna's parameter importances;
- ``report.md``: the same for a reader.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import tomli_w

from lipgan.config import load_toml
from lipgan.runio import atomic_write_text
from lipgan.tune.budget import BudgetPoint, budget_curve
from lipgan.tune.figures import FIGURE_FILE, plot_budget
from lipgan.tune.study import (
    TuneSetup,
    latest_trials,
    require_optuna,
    threshold,
    trial_run_name,
)

BEST_FILE = "best.toml"
RESULTS_FILE = "results.json"


def trial_rows(tune: TuneSetup, study: Any, limit: float | None) -> list[dict[str, Any]]:
    """One row per draw that ended: status, objective, seconds and its values."""
    optuna = require_optuna()
    rows = []
    for draw, trial in sorted(latest_trials(study, optuna).items()):
        objective = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else None
        rows.append(
            {
                "trial": draw,
                "status": trial.user_attrs.get("status"),
                "objective": objective,
                "reached": objective is not None and limit is not None and objective <= limit,
                "seconds": trial.user_attrs.get("seconds"),
                "seed_values": trial.user_attrs.get("seed_values"),
                **trial.params,
            }
        )
    return rows


def objectives(rows: list[dict[str, Any]]) -> list[float]:
    """Each trial's objective; a failed or pruned trial counts as infinitely bad."""
    return [r["objective"] if r["objective"] is not None else math.inf for r in rows]


def importances(study: Any) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances, or why there are none (too few trials)."""
    optuna = require_optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 3:
        return {}, f"importances need >= 3 completed trials; this study has {len(complete)}"
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return {}, f"Optuna could not compute importances ({exc})"
    return {name: round(float(v), 4) for name, v in found.items()}, ""


def write_best(tune: TuneSetup, best: dict[str, Any], metric: str | None) -> Path:
    run_dir = tune.out / "runs" / trial_run_name(best["trial"], tune.seeds[0])
    config = load_toml(run_dir / "config.toml").to_dict()
    for key in ("out", "seed"):
        config.pop(key, None)
    header = (
        f"# lipgan tune: trial {best['trial']} of {tune.trials}, the best "
        f"{metric or 'objective'} {best['objective']:.6g} (mean over selection seeds "
        f"{', '.join(map(str, tune.seeds))}); train it with: lipgan train --config {BEST_FILE}\n"
    )
    path = tune.out / BEST_FILE
    atomic_write_text(path, header + tomli_w.dumps(config))
    return path


def write_outputs(tune: TuneSetup, study: Any) -> dict[str, Any]:
    """best.toml, trials.csv/.md, results.json and report.md; returns results.json's data."""
    limit = threshold(tune)
    rows = trial_rows(tune, study, limit)
    metric = next(
        (t.user_attrs.get("metric") for t in study.get_trials(deepcopy=False)
         if t.user_attrs.get("metric")), None,
    )  # fmt: skip
    finished = [r for r in rows if r["objective"] is not None]
    best = min(finished, key=lambda r: r["objective"]) if finished else None
    defaults = next((r for r in rows if r["trial"] == 0), None)
    curve = budget_curve(objectives(rows), [r["seconds"] for r in rows]) if rows else []
    found, why_not = importances(study)
    if best is not None:
        write_best(tune, best, metric)
    data = {
        "kind": "tune",
        "command": tune.command,
        "constraint": tune.constraint,
        "data": tune.base.data,
        "iters": tune.base.iters,
        "metric": metric,
        "selection_seeds": tune.seeds,
        "study_seed": tune.study_seed,
        "sampler": tune.sampler,
        "prune": tune.prune,
        "trials_planned": tune.trials,
        "trials_ended": len(rows),
        "threshold": limit,
        "reached_fraction": sum(r["reached"] for r in rows) / len(rows) if rows else None,
        "training_seconds": round(sum(r["seconds"] or 0.0 for r in rows), 3),
        "space": {name: r.describe() for name, r in tune.ranges().items()},
        "defaults": defaults,
        "best": best,
        "best_config": BEST_FILE if best is not None else None,
        "budget_curve": [_point(p) for p in curve],
        "importances": found,
        "importances_note": why_not,
        "trials": rows,
    }
    data["summary"] = summary_lines(data)
    atomic_write_text(tune.out / RESULTS_FILE, json.dumps(data, indent=2) + "\n")
    atomic_write_text(tune.out / "trials.csv", _csv(rows))
    atomic_write_text(tune.out / "trials.md", markdown_table(rows) + "\n")
    atomic_write_text(tune.out / "report.md", _report(data))
    name = (metric or "objective").removeprefix("quality/")
    plot_budget(
        tune.out / FIGURE_FILE, name, {tune.constraint: [r["objective"] for r in rows]},
        {tune.constraint: data["budget_curve"]}, {},
    )  # fmt: skip
    return data


def _point(point: BudgetPoint) -> dict[str, Any]:
    best = point.expected_best
    return {
        "trials": point.trials,
        "expected_best": round(best, 8) if math.isfinite(best) else None,
        "seconds": None if point.seconds is None else round(point.seconds, 3),
    }


def summary_lines(data: dict[str, Any]) -> list[str]:
    metric = (data["metric"] or "objective").removeprefix("quality/")
    lines = []
    best, defaults = data["best"], data["defaults"]
    if best is None:
        lines.append(f"no trial of {data['trials_ended']} finished; see trials.md")
    else:
        lines.append(
            f"best: trial {best['trial']}, {metric} {best['objective']:.4g} (mean over selection "
            f"seeds {', '.join(map(str, data['selection_seeds']))}); written to "
            f"{data['best_config']}"
        )
    if defaults is not None:
        value = defaults["objective"]
        text = f"{value:.4g}" if value is not None else str(defaults["status"])
        lines.append(f"defaults (trial 0): {metric} {text}")
    if data["threshold"] is not None and data["reached_fraction"] is not None:
        reached = round(data["reached_fraction"] * data["trials_ended"])
        lines.append(
            f"{reached}/{data['trials_ended']} trials reached the threshold {metric} <= "
            f"{data['threshold']:.4g}"
        )
    if data["importances"]:
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(data["importances"].items())[:3])
        lines.append(f"what mattered (Optuna importances): {top}")
    return lines


PARAM_SKIP = ("trial", "status", "objective", "reached", "seconds", "seed_values")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    params = sorted({k for r in rows for k in r if k not in PARAM_SKIP})
    return ["trial", "status", "objective", "reached", "seconds", "seed_values", *params]


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, _columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        values = row.get("seed_values")
        writer.writerow({**row, "seed_values": " ".join(map(str, values or []))})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_cell(v) for v in value)
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def curve_rows(curve: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The budget curve at k = 1, 2, 4, ... and N."""
    n = len(curve)
    ks = sorted({2**i for i in range(n.bit_length()) if 2**i <= n} | ({n} if n else set()))
    return [curve[k - 1] for k in ks]


def _report(data: dict[str, Any]) -> str:
    metric = data["metric"] or "objective"
    parts = [
        f"# lipgan tune: {data['constraint']} on {data['data']}",
        "",
        f"`{data['command']}`" if data["command"] else "",
        "",
        f"{data['trials_ended']} of {data['trials_planned']} trials, {data['sampler']} sampler"
        f"{', pruned' if data['prune'] else ''}, {data['iters']} generator iterations per "
        f"run, selection seeds {', '.join(map(str, data['selection_seeds']))}. Objective: "
        f"{metric} at the end of each run, mean over those seeds (lower is better). "
        f"{data['training_seconds']:.0f} s of training in all.",
        "",
        *(f"- {line}" for line in data["summary"]),
        "",
        "## Expected best of k trials",
        "",
        "Dodge et al. (2019)'s unbiased estimate from all trials (a failed or pruned trial "
        "counts as the worst); seconds = k x the mean seconds of a trial. budget.png draws "
        "every trial (the defaults ringed) and this curve.",
        "",
        "![trials and the expected best of k](budget.png)",
        "",
        markdown_table(curve_rows(data["budget_curve"]), ["trials", "expected_best", "seconds"]),
        "",
        "## Search space",
        "",
        *(f"- {name}: {text}" for name, text in data["space"].items()),
        "",
        "## What mattered",
        "",
        ", ".join(f"{k} {v:.3f}" for k, v in data["importances"].items())
        or data["importances_note"],
        "",
        "## Every trial",
        "",
        markdown_table(data["trials"]),
        "",
    ]
    return "\n".join(parts)
