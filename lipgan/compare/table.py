"""The tables: one row per strategy over its seeds, and one row per run.

A ``Column`` renders one cell from a row (a strategy's summary or a run's row) and
carries the help text that results.json and the HTML headers show. The same columns
feed the terminal (``lipgan.display``), report.md and report.html.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lipgan.compare.summary import status_text


@dataclass(frozen=True)
class Column:
    key: str
    """Key in results.json (a combined column lists its first key)."""
    header: str
    render: Callable[[dict[str, Any]], str]
    help: str


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def _get(key: str, spec: str = ".4g") -> Callable[[dict[str, Any]], str]:
    return lambda row: _fmt(row.get(key), spec)


def _mean_std(row: dict[str, Any]) -> str:
    mean, std = row.get("grad_norm_interp_mean"), row.get("grad_norm_interp_std")
    if mean is None:
        return "-"
    return f"{_fmt(mean, '.3g')} ± {_fmt(std, '.2g')}"


def _percent(row: dict[str, Any]) -> str:
    value = row.get("weights_at_bound")
    return "-" if value is None else f"{100 * value:.1f}%"


TRAIN_COLUMNS = (
    Column("name", "strategy", _get("name"), "run name (clip@c: weight clipping with bound c)"),
    Column("status", "status", _get("status"), "ok, diverged (non-finite values) or failed"),
    Column("final_quality", "final", _get("final_quality"), "quality metric at the last step"),
    Column("best_quality", "best", _get("best_quality"), "lowest quality metric over log steps"),
    Column(
        "steps_to_threshold",
        "steps to thr",
        _get("steps_to_threshold", "d"),
        "first log step with quality <= threshold",
    ),
    Column(
        "seconds_to_threshold",
        "s to thr",
        _get("seconds_to_threshold", ".1f"),
        "wall-clock seconds to that step",
    ),
    Column(
        "seconds_per_step",
        "s/G step",
        _get("seconds_per_step", ".3f"),
        "wall seconds per generator step (n_critic critic steps, logging included)",
    ),
    Column(
        "grad_norm_interp_mean",
        "‖grad D(x̂)‖",
        _mean_std,
        "||grad_x D|| on real-fake interpolates, final critic: mean ± std",
    ),
    Column(
        "lipschitz_estimate",
        "Lip. est.",
        _get("lipschitz_estimate", ".3g"),
        "max |D(x)-D(y)|/||x-y|| over sampled pairs (a lower bound)",
    ),
    Column(
        "weights_at_bound",
        "w at ±c",
        _percent,
        "clipping only: weights within 1e-3*c of +-c",
    ),
    Column("peak_memory_mib", "peak MiB", _get("peak_memory_mib", ".0f"), "peak resident memory"),
)


CRITIC_COLUMNS = (
    TRAIN_COLUMNS[0],
    TRAIN_COLUMNS[1],
    Column("w_estimate", "W est.", _get("w_estimate", ".4g"), "E[D(real)] - E[D(fixed fake)]"),
    Column("w1_exact", "exact W1", _get("w1_exact", ".4g"), "exact W1 of the same two sets"),
    Column(
        "w1_fraction",
        "est./exact",
        _get("w1_fraction", ".3f"),
        "W est. / exact W1: at most 1 for a 1-Lipschitz critic",
    ),
    Column(
        "seconds_per_step", "s/D step", _get("seconds_per_step", ".4f"), "seconds per critic step"
    ),
    *TRAIN_COLUMNS[7:],
)


# --- one row per strategy, over seeds ------------------------------------------------------


def _stat(key: str, spec: str, interval: bool = False) -> Callable[[dict[str, Any]], str]:
    """'mean ± std', with '[CI low, high]' when ``interval``; the mean alone for 1 seed."""

    def render(row: dict[str, Any]) -> str:
        cell = row.get(key) or {}
        if cell.get("mean") is None:
            return "-"
        text = _fmt(cell["mean"], spec)
        if cell.get("std") is not None:
            text += f" ± {_fmt(cell['std'], '.2g')}"
        if interval and cell.get("ci95") is not None:
            low, high = cell["ci95"]
            text += f" [{_fmt(low, spec)}, {_fmt(high, spec)}]"
        return text

    return render


def _reached(key: str, spec: str) -> Callable[[dict[str, Any]], str]:
    """Mean ± std over the seeds that reached the threshold, and how many did."""
    stat = _stat(key, spec)

    def render(row: dict[str, Any]) -> str:
        cell = row.get(key) or {}
        return f"{stat(row)} ({cell.get('reached', 0)}/{len(row.get('seeds', []))})"

    return render


def _percent_mean(row: dict[str, Any]) -> str:
    mean = (row.get("weights_at_bound") or {}).get("mean")
    return "-" if mean is None else f"{100 * mean:.1f}%"


SUMMARY_COLUMNS = (
    TRAIN_COLUMNS[0],
    Column("status", "runs", lambda row: status_text(row["status"]), "runs per outcome"),
    Column(
        "final_quality", "final", _stat("final_quality", ".4g", True),
        "quality at the last step: mean ± std over seeds [95% t-interval of the mean]",
    ),
    Column(
        "best_quality", "best", _stat("best_quality", ".4g", True),
        "lowest quality over log steps: mean ± std [95% t-interval]",
    ),
    Column(
        "steps_to_threshold", "steps to thr", _reached("steps_to_threshold", ".0f"),
        "first log step with quality <= threshold, over the seeds that reached it (k/n)",
    ),
    Column(
        "seconds_to_threshold", "s to thr", _reached("seconds_to_threshold", ".1f"),
        "wall-clock seconds to that step, over the seeds that reached it (k/n)",
    ),
    Column(
        "seconds_per_step", "s/G step", _stat("seconds_per_step", ".3f"),
        "wall seconds per generator step (n_critic critic steps, logging included)",
    ),
    Column(
        "grad_norm_interp_mean", "‖grad D(x̂)‖", _stat("grad_norm_interp_mean", ".3g"),
        "mean ||grad_x D|| on real-fake interpolates of the final critic, over seeds",
    ),
    Column(
        "lipschitz_estimate", "Lip. est.", _stat("lipschitz_estimate", ".3g"),
        "max |D(x)-D(y)|/||x-y|| over sampled pairs (a lower bound), over seeds",
    ),
    Column(
        "lipschitz_certified", "cert. bound", _stat("lipschitz_certified", ".3g"),
        "certified upper bound on the Lipschitz constant (product of layer norms), over seeds",
    ),
    Column("weights_at_bound", "w at ±c", _percent_mean, TRAIN_COLUMNS[9].help),
    Column(
        "peak_memory_mib", "peak MiB", _stat("peak_memory_mib", ".0f"), "peak resident memory"
    ),
)  # fmt: skip

MIXTURE_COLUMNS = {
    "summary": (
        Column("modes", "modes", _stat("modes", ".3g"), "mixture modes covered at the end"),
        Column(
            "hq_fraction", "hq", _stat("hq_fraction", ".3f"),
            "fraction of samples within 3 std of a mode centre",
        ),
    ),
    "run": (
        Column("modes", "modes", _get("modes", ".0f"), "mixture modes covered at the end"),
        Column("hq_fraction", "hq", _get("hq_fraction", ".3f"), "high-quality fraction"),
    ),
}  # fmt: skip

SEED_COLUMN = Column("seed", "seed", _get("seed", "d"), "the run's seed")


def _mean(cell: Any) -> Any:
    """A summary's {mean, ...} cell as its mean; a run's plain number as itself."""
    return cell.get("mean") if isinstance(cell, dict) else cell


def _floor_of(row: dict[str, Any]) -> str:
    """The headline metric's real-vs-real floor (its mean over seeds in a summary)."""
    metric = row.get("quality_metric")
    key = f"{metric.removeprefix('quality/')}_floor" if metric else None
    return _fmt(_mean(row.get(key))) if key else "-"


def _with_floor(key: str, spec: str, compare: bool) -> Callable[[dict[str, Any]], str]:
    """'mean ± std (floor f)' over seeds, or a run's 'value (floor f)'."""
    value = _stat(key, spec) if compare else _get(key, spec)

    def render(row: dict[str, Any]) -> str:
        text, floor = value(row), _mean(row.get(f"{key}_floor"))
        return text if text == "-" or floor is None else f"{text} (floor {_fmt(floor, spec)})"

    return render


FEATURE_HELP = {
    "frechet_inf": "Fréchet extrapolated to infinitely many samples (fit in 1/N)",
    "kid": "kernel distance (unbiased MMD^2, cubic kernel) in the classifier's features",
    "precision": "fraction of samples inside the real k-NN manifold (k = 5)",
    "recall": "fraction of real samples inside the samples' k-NN manifold",
    "density": "mean count of real k-NN balls holding a sample, / k (1 for real data)",
    "coverage": "fraction of real samples whose k-NN ball holds a sample",
}
FEATURE_HEADERS = {"frechet_inf": "FD∞", "kid": "KID"}


def feature_columns(keys: Sequence[str], compare: bool) -> tuple[Column, ...]:
    """Each metric beside its real-vs-real floor: the value a perfect generator scores."""
    specs = {"frechet_inf": ".4g", "kid": ".3g"}
    over = ": mean ± std over seeds" if compare else ""
    return tuple(
        Column(
            key,
            FEATURE_HEADERS.get(key, key),
            _with_floor(key, specs.get(key, ".3f"), compare),
            f"{FEATURE_HELP[key]}{over} (floor: real images or points scored the same way)",
        )
        for key in keys
    )


FLOOR_COLUMN = Column(
    "quality_floor", "floor", _floor_of, "the quality metric's real-vs-real floor (docs/quality.md)"
)


def columns_for(kind: str, rows: Sequence[dict[str, Any]]) -> tuple[Column, ...]:
    """The columns of one table; modes and hq only when the data has modes.

    ``kind``: 'compare' (a strategy per row, over seeds), 'runs' (a run per row, with its
    seed), 'diagnose' (one run) or 'critic-only'.
    """
    if kind == "critic-only":
        return CRITIC_COLUMNS
    columns = SUMMARY_COLUMNS if kind == "compare" else TRAIN_COLUMNS
    if kind == "runs":
        columns = (columns[0], SEED_COLUMN, *columns[1:])
    at = 4 if kind != "runs" else 5
    if any("modes" in row for row in rows):
        mixture = MIXTURE_COLUMNS["summary" if kind == "compare" else "run"]
        columns = (*columns[:at], *mixture, *columns[at:])
        at += len(mixture)
    keys = [k for k in ("frechet_inf", "kid", *PRDC) if any(k in row for row in rows)]
    if keys:
        extra = (FLOOR_COLUMN, *feature_columns(keys, kind == "compare"))
        columns = (*columns[:at], *extra, *columns[at:])
    return columns


PRDC = ("precision", "recall", "density", "coverage")


def headers(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[str]:
    metric = next((r["quality_metric"] for r in rows if r.get("quality_metric")), None)
    short = metric.removeprefix("quality/") if metric else "quality"
    return [c.header if c.key not in ("final_quality", "best_quality") else
            f"{c.header} {short}" for c in columns]  # fmt: skip


def markdown_table(kind: str, rows: Sequence[dict[str, Any]]) -> str:
    columns = columns_for(kind, rows)
    lines = ["| " + " | ".join(headers(columns, rows)) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(c.render(row) for c in columns) + " |")
    return "\n".join(lines)


def html_table(kind: str, rows: Sequence[dict[str, Any]]) -> str:
    columns = columns_for(kind, rows)
    head = "".join(
        f'<th title="{html.escape(c.help)}">{html.escape(h)}</th>'
        for c, h in zip(columns, headers(columns, rows), strict=True)
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.render(row))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
