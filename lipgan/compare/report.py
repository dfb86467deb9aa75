"""The compare's files: the table (report.md, report.html) and results.json.

Figures are PNG files drawn by ``lipgan.compare.figures``, embedded in report.html as
base64 data URIs so the one file opens anywhere. The terminal table is drawn by
``lipgan.display`` from the same ``Column`` definitions.
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

from lipgan.compare.examine import RunResult
from lipgan.compare.execute import MEMORY_NOTE
from lipgan.compare.figures import Figure
from lipgan.runio import atomic_write_text

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


# --- the files --------------------------------------------------------------------------------


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
    results: Sequence[RunResult],
    figures: Sequence[Figure],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """results.json, report.md and report.html under ``out``; returns results.json's data."""
    rows = [r.row for r in results]
    columns = columns_for(kind, rows)
    results_data = {
        "kind": kind,
        **meta,
        "memory": MEMORY_NOTE,
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
    page = Page(
        out,
        kind,
        title,
        rows,
        figures,
        [(r.entry.name, r.last_sample) for r in results if _is_text(r.last_sample)],
        meta.get("command", ""),
    )
    atomic_write_text(out / "report.md", _markdown(page))
    atomic_write_text(out / "report.html", _html(page))
    return results_data


@dataclass
class Page:
    """What report.md and report.html both show."""

    out: Path
    kind: str
    title: str
    rows: Sequence[dict[str, Any]]
    figures: Sequence[Figure]
    text_samples: Sequence[tuple[str, Path]]
    command: str


def _markdown(page: Page) -> str:
    out, kind, title, rows, figures = page.out, page.kind, page.title, page.rows, page.figures
    command, text_samples = page.command, page.text_samples
    md = [f"# {title}", ""]
    if command:
        md += ["```", command, "```", ""]
    md += [markdown_table(kind, rows), "", f"Peak memory: {MEMORY_NOTE}.", ""]
    for figure in figures:
        md += [f"## {figure.title}", "", figure.caption, ""]
        md += [f"![{figure.title}]({figure.path.relative_to(out).as_posix()})", ""]
    for name, path in text_samples:
        md += [f"## Samples: {name}", "", "```", _read_text(path), "```", ""]
    return "\n".join(md)


def _html(page: Page) -> str:
    kind, title, rows, figures = page.kind, page.title, page.rows, page.figures
    command, text_samples = page.command, page.text_samples
    body = [f"<h1>{html.escape(title)}</h1>"]
    if command:
        body.append(f"<pre>{html.escape(command)}</pre>")
    body.append(html_table(kind, rows))
    body.append(f"<p><small>Peak memory: {html.escape(MEMORY_NOTE)}.</small></p>")
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
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _is_text(path: Path | None) -> bool:
    return path is not None and path.suffix == ".txt"


def _read_text(path: Path, limit: int = 4000) -> str:
    return path.read_text("utf-8", errors="replace")[:limit]
