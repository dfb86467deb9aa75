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


def draw_figures(results: Sequence[RunResult], folder: Path, kind: str, title: str) -> list[Figure]:
    """Every figure the report shows, as PNG files under ``folder``."""
    return [
        *_sample_figures(results, folder, kind, title),
        *_curve_figures(results, folder, title),
        *_critic_figures(results, folder, title),
    ]


def _sample_figures(
    results: Sequence[RunResult], folder: Path, kind: str, title: str
) -> list[Figure]:
    figures: list[Figure] = []
    panels = [(r.entry.name, *r.panel) for r in results if r.panel is not None]
    if panels:
        path = folder / ("value_surfaces.png" if kind == "critic-only" else "samples.png")
        what = (
            "Critic value surfaces trained to optimality against a fixed generator "
            "(real data + Gaussian noise; green). Clipping learns an overly simple function; "
            "a gradient penalty follows the data."
            if kind == "critic-only"
            else "Real (orange) and generated (green) samples over each critic's value surface."
        )
        figure_points(path, panels, title)
        figures.append(Figure(path, "Samples and critic value surface", what))
    pictures = [
        (r.entry.name, r.last_sample)
        for r in results
        if r.panel is None and r.last_sample is not None and r.last_sample.suffix == ".png"
    ]
    if pictures:
        path = folder / "samples.png"
        figure_images(path, pictures, title)
        figures.append(Figure(path, "Samples", "Each run's last sample picture."))
    return figures


def _curve_figures(results: Sequence[RunResult], folder: Path, title: str) -> list[Figure]:
    figures: list[Figure] = []
    for metric, name, scale, caption in (
        (
            None,
            "quality.png",
            "log",
            "Quality metric (lower is better) against generator step and wall-clock seconds; "
            "dashed: the threshold of the time-to-threshold columns.",
        ),
        (
            "wasserstein/estimate",
            "wasserstein.png",
            "symlog",
            "W estimate = -L_D (critic loss without penalty) over training; "
            "under clipping it is scaled by the critic's unknown Lipschitz constant.",
        ),
    ):
        by_step, by_time, label = {}, {}, metric
        for r in results:
            key = metric or r.row.get("quality_metric")
            if key and key in r.curves:
                steps, seconds, values = r.curves[key]
                by_step[r.entry.name] = (steps, values)
                by_time[r.entry.name] = (seconds, values)
                label = key
        if by_step and label:
            path = folder / name
            threshold = (
                next((r.row.get("threshold") for r in results), None) if not metric else None
            )
            figure_curves(path, by_step, by_time, label, title, scale, threshold)
            figures.append(Figure(path, label, caption))
    return figures


def _critic_figures(results: Sequence[RunResult], folder: Path, title: str) -> list[Figure]:
    figures: list[Figure] = []
    reports = {r.entry.name: r.critic for r in results if r.critic is not None}
    if reports:
        path = folder / "layer_grad_norms.png"
        figure_layer_norms(path, {n: c.layer_norms for n, c in reports.items()}, title)
        figures.append(
            Figure(
                path,
                "Per-layer gradient norm (paper Fig. 1, left)",
                "||dL_D/dW_k|| of the final critic per layer, log scale. Under clipping the "
                "norm falls (small c) or grows (large c) geometrically with depth; a "
                "gradient penalty keeps it level.",
            )
        )
        path = folder / "weight_histograms.png"
        figure_weight_histograms(
            path, {n: (c.weights, c.clip_value) for n, c in reports.items()}, title
        )
        figures.append(
            Figure(
                path,
                "Critic weights (paper Fig. 1, right)",
                "Histogram of every critic weight (log count); red lines at +-c. Clipped "
                "weights pile up at the bounds.",
            )
        )
        path = folder / "interp_grad_norms.png"
        figure_interp_norms(path, {n: c.interp_norms for n, c in reports.items()}, title)
        figures.append(
            Figure(
                path,
                "||grad D|| on interpolates",
                "Distribution of the critic's input-gradient norm on real-fake "
                "interpolates (log scale); the gradient penalty pulls it to 1 (red).",
            )
        )
    return figures


# --- drawing ------------------------------------------------------------------------------


Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]
"""name -> (x values, y values), one line per strategy."""


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
    by_step: Series,
    by_time: Series,
    ylabel: str,
    title: str,
    scale: str = "linear",
    threshold: float | None = None,
) -> None:
    """The same metric against generator step (left) and wall-clock seconds (right).

    ``scale`` is 'log' (positive metrics), 'symlog' (signed, e.g. the W estimate, which
    spans decades across strategies) or 'linear'; ``threshold`` draws a dashed line.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, series, xlabel in ((left, by_step, "generator step"), (right, by_time, "seconds")):
        for name, (xs, ys) in series.items():
            ax.plot(xs, ys, label=name, marker=".", markersize=3)
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


def figure_layer_norms(path: Path, norms: Mapping[str, Sequence[float]], title: str) -> None:
    """log10 ||dL/dW_k|| against layer k, one line per strategy (paper Fig. 1 left)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, values in norms.items():
        values = np.asarray(values, dtype=float)
        logs = np.log10(np.clip(values, 1e-30, None))
        ax.plot(np.arange(1, len(values) + 1), logs, marker="o", label=name)
    ax.set_xlabel("critic layer (1 = input)")
    ax.set_ylabel("log10 ||dL_D / dW||")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    save_figure(fig, path)


def figure_weight_histograms(
    path: Path, weights: Mapping[str, tuple[np.ndarray, float | None]], title: str
) -> None:
    """Histogram of every critic weight per strategy, +-c marked (paper Fig. 1 right)."""
    fig, axes = _grid(len(weights), 3.4)
    for ax, (name, (values, c)) in zip(axes, weights.items(), strict=True):
        finite = values[np.isfinite(values)]
        if len(finite):
            ax.hist(finite, bins=60, color="tab:blue")
        if c is not None:
            for bound in (-c, c):
                ax.axvline(bound, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("weight")
    fig.suptitle(title)
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
