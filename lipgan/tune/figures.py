"""The tuned compare's figure: what each strategy's trials gave, and what k trials buy.

``budget.png`` has three panels, one colour per strategy:

1. every trial's objective on the selection seeds (dots; trial 0, the defaults, as a ring;
   failed or pruned trials as crosses on the top edge), and the best configuration
   retrained on the evaluation seeds (mean, with a bar of one standard deviation);
2. the expected best of k trials against k (Dodge et al. 2019, ``budget.expected_best``);
3. the same against the training seconds k trials cost on average.

The objective axis is logarithmic when every value is positive (W1, Fréchet and JS span
decades between a collapsed run and a good one).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lipgan.plots import _pyplot, save_figure

FIGURE_FILE = "budget.png"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def plot_budget(
    path: Path,
    metric: str,
    trials: dict[str, list[float | None]],
    curves: dict[str, list[dict[str, Any]]],
    evaluated: dict[str, tuple[float | None, float | None]],
) -> None:
    """Write ``budget.png`` (``budget_figure``'s figure) to ``path``."""
    save_figure(budget_figure(metric, trials, curves, evaluated), path)


def budget_figure(
    metric: str,
    trials: dict[str, list[float | None]],
    curves: dict[str, list[dict[str, Any]]],
    evaluated: dict[str, tuple[float | None, float | None]],
) -> Any:
    """The figure: ``trials`` maps a strategy to its objectives in trial order (None:
    failed or pruned), ``curves`` to its budget curve (results.json's points),
    ``evaluated`` to the retrained best's (mean, sd) on the evaluation seeds."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    names = list(trials)
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    fig, (spread, by_trials, by_seconds) = plt.subplots(1, 3, figsize=(14, 4.2))
    values = [v for vs in trials.values() for v in vs if _finite(v)]
    values += [m for m, _ in evaluated.values() if _finite(m)]
    log = bool(values) and min(values) > 0
    top = max(values) if values else 1.0

    for x, name in enumerate(names):
        colour = colours[name]
        objectives = trials[name]
        finite = [(k, v) for k, v in enumerate(objectives) if _finite(v)]

        def place(k: int, x: int = x, n: int = len(objectives)) -> float:
            return x - 0.18 + 0.36 * (k + 0.5) / max(n, 1)  # trial order, left to right

        spread.scatter([place(k) for k, _ in finite], [v for _, v in finite], s=14,
                       color=colour, alpha=0.6)  # fmt: skip
        if objectives and _finite(objectives[0]):
            spread.scatter([place(0)], [objectives[0]], s=60, facecolors="none",
                           edgecolors="black", linewidths=1.2, zorder=3)  # fmt: skip
        lost = len(objectives) - len(finite)
        if lost:
            spread.scatter([x], [top], marker="x", color=colour, s=30, clip_on=False)
            spread.annotate(f"{lost} failed/pruned", (x, top), fontsize=7, ha="center",
                            xytext=(0, 6), textcoords="offset points")  # fmt: skip
        mean, sd = evaluated.get(name, (None, None))
        if _finite(mean):
            spread.errorbar([x + 0.3], [mean], yerr=[[sd or 0.0], [sd or 0.0]] if sd else None,
                            fmt="D", color="black", markersize=5, capsize=3)  # fmt: skip
    spread.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    spread.set_xlim(-0.6, len(names) - 0.4)
    spread.set_ylabel(f"{metric} (lower is better)")
    spread.set_title("trials (ring: defaults) and the retrained best (diamond, ± sd)", fontsize=9)

    for name in names:
        points = [p for p in curves.get(name, []) if _finite(p.get("expected_best"))]
        if not points:
            continue
        best = [p["expected_best"] for p in points]
        by_trials.plot([p["trials"] for p in points], best, "-o", markersize=3,
                       color=colours[name], label=name)  # fmt: skip
        timed = [(p["seconds"], p["expected_best"]) for p in points if _finite(p.get("seconds"))]
        if timed:
            by_seconds.plot(*zip(*timed, strict=True), "-o", markersize=3, color=colours[name],
                            label=name)  # fmt: skip
    by_trials.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_trials.set_xlabel("trials k")
    by_trials.set_title("expected best of k trials", fontsize=9)
    by_seconds.set_xlabel("training seconds of k trials (k x mean trial seconds)")
    by_seconds.set_title("expected best at equal training time", fontsize=9)
    for ax in (spread, by_trials, by_seconds):
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if names:
        by_trials.legend(fontsize=8)
    fig.tight_layout()
    return fig
