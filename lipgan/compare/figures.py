"""Every figure of a compare or diagnose report, drawn from the examined runs.

The numbers come from ``lipgan.diagnostics`` (measurements of a critic) and the run
folders; the sample-picture primitives (points over a value surface, saving a PNG
atomically) are shared with training through ``lipgan.plots``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from lipgan.compare.examine import RunResult
from lipgan.plots import _pyplot, draw_points, save_figure


@dataclass(frozen=True)
class Figure:
    path: Path
    title: str
    caption: str


Groups = Mapping[str, Sequence[RunResult]]
"""Strategy name -> its runs, one per seed (one run for diagnose and critic-only)."""


def draw_figures(groups: Groups, folder: Path, kind: str, title: str) -> list[Figure]:
    """Every figure the report shows, as PNG files under ``folder``."""
    return [
        *_sample_figures(groups, folder, kind, title),
        *_curve_figures(groups, folder, title),
        *_manifold_figures(groups, folder, title),
        *_critic_figures(groups, folder, title),
    ]


MANIFOLD_AXES = (("recall", "precision"), ("coverage", "density"))
"""(x, y) of each panel of the manifold figure."""


def _manifold_figures(groups: Groups, folder: Path, title: str) -> list[Figure]:
    """Precision against recall and density against coverage, per strategy, beside the
    real-vs-real point: how a generator falls short, not only by how much."""
    keys = [key for pair in MANIFOLD_AXES for key in pair]
    points = {
        name: np.array([[r.row[k] for k in keys] for r in runs if _has(r.row, keys)])
        for name, runs in groups.items()
    }
    points = {name: p for name, p in points.items() if len(p)}
    floors = [[r.row[f"{k}_floor"] for k in keys] for runs in groups.values() for r in runs
              if _has(r.row, [f"{k}_floor" for k in keys])]  # fmt: skip
    if not points or not floors:
        return []
    path = folder / "precision_recall.png"
    figure_manifold(path, points, np.mean(floors, axis=0), title)
    caption = (
        "Each strategy's final precision against recall (left) and density against coverage "
        "(right), k = 5 nearest-neighbour manifolds (docs/quality.md): one small dot per "
        "seed, the large one their mean; the star is real data scored the same way, where "
        "a perfect generator lands. Low precision or density: bad samples; low recall or "
        "coverage: parts of the data never drawn."
    )
    return [Figure(path, "Precision, recall, density and coverage", caption)]


def _has(row: Mapping[str, object], keys: Sequence[str]) -> bool:
    return all(isinstance(row.get(k), int | float) for k in keys)


def _sample_figures(groups: Groups, folder: Path, kind: str, title: str) -> list[Figure]:
    """The first seed of each strategy: its samples over its critic, or its sample picture."""
    figures: list[Figure] = []
    firsts = {name: runs[0] for name, runs in groups.items() if runs}
    seeds = _first_seeds(groups)
    panels = [(name, *r.panel) for name, r in firsts.items() if r.panel is not None]
    if panels:
        path = folder / ("value_surfaces.png" if kind == "critic-only" else "samples.png")
        what = (
            "Critic value surfaces trained to optimality against a fixed generator "
            "(real data + Gaussian noise; green). Clipping learns an overly simple function; "
            "a gradient penalty follows the data."
            if kind == "critic-only"
            else "Real (orange) and generated (green) samples over each critic's value surface"
            f"{seeds}."
        )
        figure_points(path, panels, title)
        figures.append(Figure(path, "Samples and critic value surface", what))
    pictures = [
        (name, r.last_sample)
        for name, r in firsts.items()
        if r.panel is None and r.last_sample is not None and r.last_sample.suffix == ".png"
    ]
    if pictures:
        path = folder / "samples.png"
        figure_images(path, pictures, title)
        figures.append(Figure(path, "Samples", f"Each strategy's last sample picture{seeds}."))
    return figures


def _first_seeds(groups: Groups) -> str:
    if all(len(runs) <= 1 for runs in groups.values()):
        return ""
    return " (each strategy's first seed)"


CURVES = (
    (
        None,
        "quality.png",
        "log",
        "Quality metric (lower is better) against generator step and wall-clock seconds: "
        "the mean over seeds, the band from the lowest to the highest seed; dashed: the "
        "threshold of the time-to-threshold columns.",
    ),
    (
        "wasserstein/estimate",
        "wasserstein.png",
        "symlog",
        "W estimate = -L_D (critic loss without penalty) over training, mean over seeds with "
        "a min-max band; under clipping it is scaled by the critic's unknown Lipschitz "
        "constant.",
    ),
)


def _curve_figures(groups: Groups, folder: Path, title: str) -> list[Figure]:
    figures: list[Figure] = []
    for metric, name, scale, caption in CURVES:
        by_step, by_time, label = {}, {}, metric
        for strategy, runs in groups.items():
            key = metric or next((r.row.get("quality_metric") for r in runs), None)
            curves = [r.curves[key] for r in runs if key and key in r.curves]
            if curves:
                by_step[strategy], by_time[strategy] = seed_band(curves)
                label = key
        if by_step and label:
            path = folder / name
            threshold = None
            if not metric:
                rows = [r.row for runs in groups.values() for r in runs]
                threshold = next((r.get("threshold") for r in rows), None)
            figure_curves(path, by_step, by_time, label, title, scale, threshold)
            figures.append(Figure(path, label, caption))
    return figures


Band = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(x, mean, low, high)."""


def seed_band(curves: Sequence[tuple[list[float], list[float], list[float]]]):
    """Mean and min-max over seeds at the steps every seed logged, against step and
    against seconds (each seed's own clock, averaged)."""
    common = sorted(set.intersection(*(set(steps) for steps, _, _ in curves)))
    seconds, values = [], []
    for steps, secs, vals in curves:
        where = {s: i for i, s in enumerate(steps)}
        seconds.append([secs[where[s]] for s in common])
        values.append([vals[where[s]] for s in common])
    ys = np.asarray(values, dtype=float).reshape(len(curves), len(common))
    with np.errstate(all="ignore"):
        mean, low, high = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
    steps = np.asarray(common, dtype=float)
    clock = np.asarray(seconds, dtype=float).reshape(len(curves), len(common)).mean(0)
    return (steps, mean, low, high), (clock, mean, low, high)


def _critic_figures(groups: Groups, folder: Path, title: str) -> list[Figure]:
    reports = {
        name: [r.critic for r in runs if r.critic is not None] for name, runs in groups.items()
    }
    reports = {name: critics for name, critics in reports.items() if critics}
    if not reports:
        return []
    several = any(len(critics) > 1 for critics in reports.values())
    each = " Thin lines: each seed; thick: their mean." if several else ""
    layers = folder / "layer_grad_norms.png"
    figure_layer_norms(layers, {n: [c.layer_norms for c in cs] for n, cs in reports.items()}, title)
    weights = folder / "weight_histograms.png"
    figure_weight_histograms(
        weights, {n: ([c.weights for c in cs], cs[0].clip_value) for n, cs in reports.items()},
        title,
    )  # fmt: skip
    interp = folder / "interp_grad_norms.png"
    figure_interp_norms(
        interp, {n: np.concatenate([c.interp_norms for c in cs]) for n, cs in reports.items()},
        title,
    )  # fmt: skip
    figures = [
        Figure(
            layers,
            "Per-layer gradient norm (paper Fig. 1, left)",
            "||dL_D/dW_k|| of the final critic per layer, log scale. Under clipping the norm "
            "falls (small c) or grows (large c) geometrically with depth; a gradient penalty "
            f"keeps it level.{each}",
        ),
        Figure(
            weights,
            "Critic weights (paper Fig. 1, right)",
            "Histogram of every critic weight (log count); red lines at +-c. Clipped weights "
            f"pile up at the bounds.{each}",
        ),
        Figure(
            interp,
            "||grad D|| on interpolates",
            "Distribution of the critic's input-gradient norm on real-fake interpolates, all "
            "seeds pooled (log scale); the gradient penalty pulls it to 1 (red).",
        ),
    ]
    bounds = {
        name: [
            (r.row["lipschitz_certified"], r.row["lipschitz_max_grad_norm"])
            for r in runs
            if r.row.get("lipschitz_certified") is not None
            and r.row.get("lipschitz_max_grad_norm") is not None
        ]
        for name, runs in groups.items()
    }
    bounds = {name: pairs for name, pairs in bounds.items() if pairs}
    if bounds:
        gap = folder / "lipschitz_gap.png"
        figure_lipschitz_gap(gap, bounds, title)
        figures.append(
            Figure(
                gap,
                "Certified against empirical Lipschitz constant",
                "Per seed: the certified bound (product of per-layer operator norms; exact for "
                "orthogonal layers and GroupSort, an upper bound otherwise; square) against the "
                "largest input-gradient norm found on samples and by gradient ascent (dot), "
                "log scale. The true constant lies between them; a short bar means the bound "
                "is tight.",
            )
        )
    return figures


# --- drawing ------------------------------------------------------------------------------


def _grid(count: int, size: float = 3.6):
    plt = _pyplot()
    ncols = min(count, 4)
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, list(axes.flat[:count])


def figure_points(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, nn.Module | None]],
    title: str,
) -> None:
    """One panel per strategy: real and generated points over the critic's value surface."""
    from matplotlib.ticker import FormatStrFormatter

    fig, axes = _grid(len(panels), 4.6)
    for ax, (name, real, fake, critic) in zip(axes, panels, strict=True):
        draw_points(ax, real, fake, critic, name)
    for bar in set(fig.axes) - set(axes):  # colorbars: no offset text over the titles
        bar.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    fig.suptitle(title)
    save_figure(fig, path)


def figure_images(path: Path, panels: Sequence[tuple[str, Path]], title: str) -> None:
    """One panel per strategy showing its last sample picture (images family)."""
    plt = _pyplot()
    fig, axes = _grid(len(panels), 4.0)
    for ax, (name, picture) in zip(axes, panels, strict=True):
        ax.imshow(plt.imread(picture), cmap="gray")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title)
    save_figure(fig, path)


def figure_curves(
    path: Path,
    by_step: Mapping[str, Band],
    by_time: Mapping[str, Band],
    ylabel: str,
    title: str,
    scale: str = "linear",
    threshold: float | None = None,
) -> None:
    """The same metric against generator step (left) and wall-clock seconds (right): a
    mean line per strategy with its min-max band over seeds.

    ``scale`` is 'log' (positive metrics), 'symlog' (signed, e.g. the W estimate, which
    spans decades across strategies) or 'linear'; ``threshold`` draws a dashed line.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, series, xlabel in ((left, by_step, "generator step"), (right, by_time, "seconds")):
        for name, (xs, mean, low, high) in series.items():
            (line,) = ax.plot(xs, mean, label=name, marker=".", markersize=3)
            if np.any(high > low):
                ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if threshold is not None:
            ax.axhline(threshold, color="gray", linestyle="--", linewidth=1, label="threshold")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if scale == "symlog":
            ax.set_yscale("symlog", linthresh=1e-2)
        elif scale == "log":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def figure_manifold(
    path: Path, points: Mapping[str, np.ndarray], floor: np.ndarray, title: str
) -> None:
    """``points[name]``: (seeds, 4) rows of MANIFOLD_AXES' keys in order; ``floor``: the
    real-vs-real values of the same keys."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), layout="constrained")
    for column, (ax, (xkey, ykey)) in enumerate(zip(axes, MANIFOLD_AXES, strict=True)):
        x, y = 2 * column, 2 * column + 1
        for name, values in points.items():
            (dot,) = ax.plot(values[:, x], values[:, y], "o", markersize=4, alpha=0.5)
            ax.plot(values[:, x].mean(), values[:, y].mean(), "o", markersize=10,
                    color=dot.get_color(), markeredgecolor="black", label=name)  # fmt: skip
        ax.plot(floor[x], floor[y], "*", markersize=16, color="black", label="real vs real")
        ax.set_xlabel(xkey)
        ax.set_ylabel(ykey)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(bottom=-0.03, top=max(1.03, ax.get_ylim()[1]))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def figure_layer_norms(
    path: Path, norms: Mapping[str, Sequence[Sequence[float]]], title: str
) -> None:
    """log10 ||dL/dW_k|| against layer k (paper Fig. 1 left): per strategy a thin line per
    seed and their mean (of the logs) on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, per_seed in norms.items():
        logs = np.log10(np.clip(np.asarray(per_seed, dtype=float), 1e-30, None))
        layers = np.arange(1, logs.shape[1] + 1)
        (line,) = ax.plot(layers, logs.mean(0), marker="o", label=name, linewidth=2)
        if len(logs) > 1:
            for seed_logs in logs:
                ax.plot(layers, seed_logs, color=line.get_color(), linewidth=0.7, alpha=0.4)
    ax.set_xlabel("critic layer (1 = input)")
    ax.set_ylabel("log10 ||dL_D / dW||")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)


def figure_weight_histograms(
    path: Path, weights: Mapping[str, tuple[Sequence[np.ndarray], float | None]], title: str
) -> None:
    """Histogram of every critic weight per strategy, +-c marked (paper Fig. 1 right):
    one thin outline per seed on shared bins, their mean count filled on top."""
    fig, axes = _grid(len(weights), 3.4)
    for ax, (name, (per_seed, c)) in zip(axes, weights.items(), strict=True):
        finite = [v[np.isfinite(v)] for v in per_seed]
        pooled = np.concatenate(finite) if finite else np.zeros(0)
        if len(pooled):
            edges = np.histogram_bin_edges(pooled, bins=60)
            counts = np.asarray([np.histogram(v, bins=edges)[0] for v in finite], dtype=float)
            ax.stairs(counts.mean(0), edges, fill=True, color="tab:blue", alpha=0.8)
            if len(counts) > 1:
                for seed_counts in counts:
                    ax.stairs(seed_counts, edges, color="black", linewidth=0.5, alpha=0.5)
        if c is not None:
            for bound in (-c, c):
                ax.axvline(bound, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("weight")
    fig.suptitle(title)
    save_figure(fig, path)


def figure_lipschitz_gap(
    path: Path, bounds: Mapping[str, Sequence[tuple[float, float]]], title: str
) -> None:
    """Per strategy and seed: a bar from the empirical lower estimate up to the certified
    upper bound, log scale, 1 marked."""
    plt = _pyplot()
    names = list(bounds)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 4.5))
    for index, name in enumerate(names):
        pairs = bounds[name]
        offsets = np.linspace(-0.25, 0.25, len(pairs)) if len(pairs) > 1 else [0.0]
        for offset, (certified, empirical) in zip(offsets, pairs, strict=True):
            x = index + offset
            low, high = max(empirical, 1e-30), max(certified, 1e-30)
            ax.plot([x, x], [low, high], color="tab:gray", linewidth=1.5)
            ax.plot(x, high, marker="s", color="tab:red", markersize=5)
            ax.plot(x, low, marker="o", color="tab:blue", markersize=5)
    ax.plot([], [], marker="s", color="tab:red", linestyle="", label="certified bound")
    ax.plot([], [], marker="o", color="tab:blue", linestyle="", label="largest gradient found")
    ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("Lipschitz constant of the critic")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)


def figure_interp_norms(path: Path, norms: Mapping[str, np.ndarray], title: str) -> None:
    """Distribution of ||grad D(x_hat)|| on interpolates, log scale, 1 marked."""
    plt = _pyplot()
    names = list(norms)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.8))
    data = [np.clip(norms[n][np.isfinite(norms[n])], 1e-30, None) for n in names]
    import matplotlib

    horizontal = (
        {"orientation": "horizontal"}
        if tuple(int(v) for v in matplotlib.__version__.split(".")[:2]) >= (3, 10)
        else {"vert": False}  # before 3.10 ('vert' is deprecated from 3.11)
    )
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2}, **horizontal)
    ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xscale("log")
    ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1, label="norm 1")
    ax.set_xlabel("||grad_x D(x_hat)|| on interpolates")
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)
