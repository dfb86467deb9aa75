"""What a person looks at after ``lipgan compare`` or ``lipgan diagnose``.

- the live display while strategies train (Rich; the compare's one place for the terminal);
- the table (terminal, report.md, report.html) and results.json;
- the figures (PNG, drawn by ``lipgan.diagnostics``), embedded in report.html as base64
  data URIs so the one file opens anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lipgan import compare as comparing
from lipgan import diagnostics
from lipgan.runio import atomic_write_text

TABLE_WIDTH = 170
"""The table is wider than most terminals; Rich folds it rather than cut columns."""

# --- the table --------------------------------------------------------------------------------


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
    Column(
        "seconds_per_step", "s/D step", _get("seconds_per_step", ".4f"), "seconds per critic step"
    ),
    *TRAIN_COLUMNS[7:],
)


def columns_for(kind: str, rows: Sequence[dict[str, Any]]) -> tuple[Column, ...]:
    """The columns of one report; the modes column only when the data has modes."""
    if kind == "critic-only":
        return CRITIC_COLUMNS
    columns = TRAIN_COLUMNS
    if any("modes" in row for row in rows):
        modes = Column("modes", "modes", _get("modes", ".0f"), "mixture modes covered at the end")
        columns = columns[:4] + (modes,) + columns[4:]
    return columns


def _headers(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> list[str]:
    metric = next((r["quality_metric"] for r in rows if r.get("quality_metric")), None)
    short = metric.removeprefix("quality/") if metric else "quality"
    return [c.header if c.key not in ("final_quality", "best_quality") else
            f"{c.header} {short}" for c in columns]  # fmt: skip


def rich_table(kind: str, rows: Sequence[dict[str, Any]], title: str) -> Table:
    columns = columns_for(kind, rows)
    table = Table(title=title)
    for header in _headers(columns, rows):
        table.add_column(escape(header), overflow="fold")
    for row in rows:
        table.add_row(*(escape(c.render(row)) for c in columns))
    return table


def markdown_table(kind: str, rows: Sequence[dict[str, Any]]) -> str:
    columns = columns_for(kind, rows)
    lines = ["| " + " | ".join(_headers(columns, rows)) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(c.render(row) for c in columns) + " |")
    return "\n".join(lines)


def html_table(kind: str, rows: Sequence[dict[str, Any]]) -> str:
    columns = columns_for(kind, rows)
    head = "".join(
        f'<th title="{html.escape(c.help)}">{html.escape(h)}</th>'
        for c, h in zip(columns, _headers(columns, rows), strict=True)
    )
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.render(row))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    path: Path
    title: str
    caption: str


def draw_figures(
    results: Sequence[comparing.RunResult], folder: Path, kind: str, title: str
) -> list[Figure]:
    """Every figure the report shows, as PNG files under ``folder``."""
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
        diagnostics.figure_points(path, panels, title)
        figures.append(Figure(path, "Samples and critic value surface", what))
    pictures = [
        (r.entry.name, r.last_sample)
        for r in results
        if r.panel is None and r.last_sample is not None and r.last_sample.suffix == ".png"
    ]
    if pictures:
        path = folder / "samples.png"
        diagnostics.figure_images(path, pictures, title)
        figures.append(Figure(path, "Samples", "Each run's last sample picture."))

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
            diagnostics.figure_curves(path, by_step, by_time, label, title, scale, threshold)
            figures.append(Figure(path, label, caption))

    reports = {r.entry.name: r.critic for r in results if r.critic is not None}
    if reports:
        path = folder / "layer_grad_norms.png"
        diagnostics.figure_layer_norms(path, {n: c.layer_norms for n, c in reports.items()}, title)
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
        diagnostics.figure_weight_histograms(
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
        diagnostics.figure_interp_norms(
            path, {n: c.interp_norms for n, c in reports.items()}, title
        )
        figures.append(
            Figure(
                path,
                "||grad D|| on interpolates",
                "Distribution of the critic's input-gradient norm on real-fake "
                "interpolates (log scale); the gradient penalty pulls it to 1 (red).",
            )
        )
    return figures


# --- the files ----------------------------------------------------------------------------------

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4;cursor:help}img{max-width:100%}pre{background:#f7f7f7;padding:8px}
figcaption{color:#444;font-size:14px}"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_report(
    out: Path,
    kind: str,
    title: str,
    results: Sequence[comparing.RunResult],
    figures: Sequence[Figure],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """results.json, report.md and report.html under ``out``; returns results.json's data."""
    rows = [r.row for r in results]
    columns = columns_for(kind, rows)
    results_data = {
        "kind": kind,
        **meta,
        "memory": comparing.MEMORY_NOTE,
        "columns": {c.key: c.help for c in columns},
        "figures": [str(f.path.relative_to(out)) for f in figures],
        "strategies": {
            r.entry.name: {
                **r.row,
                "diagnostics": r.critic.numbers() if r.critic is not None else None,
            }
            for r in results
        },
    }
    atomic_write_text(
        out / "results.json", json.dumps(results_data, indent=2, sort_keys=False) + "\n"
    )

    command = meta.get("command", "")
    md = [f"# {title}", ""]
    if command:
        md += ["```", command, "```", ""]
    md += [markdown_table(kind, rows), "", f"Peak memory: {comparing.MEMORY_NOTE}.", ""]
    for figure in figures:
        md += [f"## {figure.title}", "", figure.caption, ""]
        md += [f"![{figure.title}]({figure.path.relative_to(out).as_posix()})", ""]
    text_samples = [(r.entry.name, r.last_sample) for r in results if _is_text(r.last_sample)]
    for name, path in text_samples:
        md += [f"## Samples: {name}", "", "```", _read_text(path), "```", ""]
    atomic_write_text(out / "report.md", "\n".join(md))

    body = [f"<h1>{html.escape(title)}</h1>"]
    if command:
        body.append(f"<pre>{html.escape(command)}</pre>")
    body.append(html_table(kind, rows))
    body.append(f"<p><small>Peak memory: {html.escape(comparing.MEMORY_NOTE)}.</small></p>")
    for figure in figures:
        body.append(
            f"<figure><h2>{html.escape(figure.title)}</h2>"
            f'<img src="{_data_uri(figure.path)}" alt="{html.escape(figure.path.name)}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
        )
    for name, path in text_samples:
        body.append(
            f"<h2>Samples: {html.escape(name)}</h2><pre>{html.escape(_read_text(path))}</pre>"
        )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    atomic_write_text(out / "report.html", document)
    return results_data


def _is_text(path: Path | None) -> bool:
    return path is not None and path.suffix == ".txt"


def _read_text(path: Path, limit: int = 4000) -> str:
    return path.read_text("utf-8", errors="replace")[:limit]


# --- the terminal ---------------------------------------------------------------------------------


class CompareDisplay:
    """One overall progress display: a bar per strategy and one for the whole compare."""

    def __init__(self, console: Console, totals: dict[str, int]) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self.totals = totals
        self.done: dict[str, int] = dict.fromkeys(totals, 0)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[numbers]}"),
            console=console,
            disable=not self.interactive,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> CompareDisplay:
        self.progress.__enter__()
        self.overall = self.progress.add_task(
            "[bold]all", total=sum(self.totals.values()), numbers=""
        )
        for name, total in self.totals.items():
            self.tasks[name] = self.progress.add_task(escape(name), total=total, numbers="")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: comparing.Event) -> None:
        from lipgan.reporting import describe

        self.done[event.name] = event.iteration
        self.progress.update(self.overall, completed=sum(self.done.values()))
        numbers = describe(event.metrics) if event.metrics is not None else None
        task = self.tasks[event.name]
        if numbers is not None:
            self.progress.update(task, numbers=escape(numbers))
        self.progress.update(task, completed=event.iteration)
        if event.status is not None:
            self.progress.update(task, numbers=escape(event.status))
            if not self.interactive:
                self.console.print(f"{event.name}: {event.status}", markup=False)
            elif event.status != "ok":
                self.progress.console.print(f"{escape(event.name)}: {escape(event.status)}")


def _wide(console: Console) -> Console:
    """The same output, at least TABLE_WIDTH wide (a pipe defaults to 80 columns)."""
    return Console(file=console.file, width=max(console.width, TABLE_WIDTH), highlight=False)


def run_compare(
    compare: comparing.CompareSetup,
    should_stop: Callable[[], int | None] | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or, critic-only, fit the critics), examine, draw and write the report."""
    console = console or Console(highlight=False)
    base = compare.base
    kind = "critic-only" if compare.critic_only else "compare"
    names = ", ".join(e.name for e in compare.entries)
    console.print(
        f"{kind}: [bold]{escape(names)}[/] on [bold]{escape(base.data)}[/], seed {base.seed}, "
        f"{base.iters} {'critic' if compare.critic_only else 'generator'} iterations each "
        f"-> {escape(str(compare.out))}"
    )
    totals = {e.name: base.iters for e in compare.entries}
    with CompareDisplay(console, totals) as display:
        if compare.critic_only:
            pairs = comparing.train_critics(compare, display)
            results = [result for result, _ in pairs]
        else:
            outcomes = comparing.train_all(compare, display, should_stop)
    if not compare.critic_only:
        results = [
            comparing.examine_run(
                compare.prepared[e.name].run_dir, e, outcomes[e.name], compare.threshold
            )
            for e in compare.entries
        ]
    title = f"{kind}: {base.data}, seed {base.seed}, {base.iters} iterations"
    figures = draw_figures(results, compare.figures_dir, kind, title)
    meta = {
        "command": compare.command,
        "data": base.data,
        "seed": base.seed,
        "iters": base.iters,
        "config": base.to_dict(),
    }
    if compare.critic_only:
        meta["noise_std"] = compare.noise_std
    else:
        meta["quality_metric"] = next(
            (r.row["quality_metric"] for r in results if r.row.get("quality_metric")), None
        )
        meta["threshold"] = next(
            (r.row["threshold"] for r in results if r.row.get("threshold") is not None), None
        )
        meta["runs"] = {e.name: f"runs/{e.name}" for e in compare.entries}
    data = write_report(compare.out, kind, title, results, figures, meta)
    _wide(console).print(rich_table(kind, [r.row for r in results], title))
    console.print(f"report: {escape(str(compare.out / 'report.html'))}")
    return data


def run_diagnose(
    run_dir: Path,
    out: Path | None,
    threshold: float | None = None,
    console: Console | None = None,
) -> Path:
    """The compare's figures and table for one finished run folder."""
    console = console or Console(highlight=False)
    from lipgan.config import load_toml
    from lipgan.errors import ConfigError

    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml); check the path")
    config = load_toml(run_dir / "config.toml")
    entry = comparing.Entry(run_dir.name, config.constraint, config.clip_value)
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    result = comparing.examine_run(run_dir, entry, threshold=threshold)
    if result.critic is None:
        raise ConfigError(f"{run_dir} has no readable checkpoints/last.pt; train it first")
    out = out or run_dir / "diagnostics"
    title = f"diagnose: {run_dir.name} ({config.constraint} on {config.data})"
    figures = draw_figures([result], out / "figures", "compare", title)
    write_report(out, "diagnose", title, [result], figures, {"run": str(run_dir)})
    _wide(console).print(rich_table("diagnose", [result.row], title))
    if result.critic.bounds is not None:  # checked above: result.critic is not None
        console.print(escape(result.critic.bounds.describe()))
    console.print(f"report: {escape(str(out / 'report.html'))}")
    return out
