"""The compare's files: report.md, report.html and results.json.

Figures are PNG files drawn by ``lipgan.compare.figures``, embedded in report.html as
base64 data URIs so the one file opens anywhere. The terminal table is drawn by
``lipgan.display`` from the same ``Column`` definitions.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lipgan.compare.examine import RunResult
from lipgan.compare.figures import Figure
from lipgan.compare.table import columns_for, html_table, markdown_table
from lipgan.executors import MEMORY_NOTE
from lipgan.runio import atomic_write_text

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4;cursor:help}img{max-width:100%}pre{background:#f7f7f7;padding:8px}
figcaption{color:#444;font-size:14px}"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


@dataclass
class Section:
    """A heading, a sentence of context, and one bullet per statement."""

    heading: str
    intro: str
    items: list[str]


@dataclass
class Table:
    heading: str | None
    kind: str
    """See ``table.columns_for``."""
    rows: Sequence[dict[str, Any]]


@dataclass
class Page:
    """What report.md and report.html both show, in this order."""

    title: str
    command: str
    tables: list[Table]
    """The first comes first; the others after the figures."""
    sections: list[Section] = field(default_factory=list)
    figures: Sequence[Figure] = ()
    text_samples: Sequence[tuple[str, Path]] = ()


def text_samples(results: Sequence[RunResult]) -> list[tuple[str, Path]]:
    """Each text run's last samples, by run name."""
    return [(r.entry.name, r.last_sample) for r in results if _is_text(r.last_sample)]


def write_report(out: Path, page: Page, data: dict[str, Any]) -> None:
    """results.json (``data``), report.md and report.html under ``out``."""
    data = {**data, "memory": MEMORY_NOTE}
    for table in page.tables:
        key = "columns" if table is page.tables[0] else f"{table.kind}_columns"
        data[key] = {c.key: c.help for c in columns_for(table.kind, table.rows)}
    data["figures"] = [str(f.path.relative_to(out)) for f in page.figures]
    atomic_write_text(out / "results.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(out / "report.md", _markdown(out, page))
    atomic_write_text(out / "report.html", _html(page))


def _markdown(out: Path, page: Page) -> str:
    md = [f"# {page.title}", ""]
    if page.command:
        md += ["```", page.command, "```", ""]
    first, *rest = page.tables
    md += [markdown_table(first.kind, first.rows), ""]
    for section in page.sections:
        md += [f"## {section.heading}", "", section.intro, ""]
        md += [f"- {item}" for item in section.items] + [""]
    for figure in page.figures:
        md += [f"## {figure.title}", "", figure.caption, ""]
        md += [f"![{figure.title}]({figure.path.relative_to(out).as_posix()})", ""]
    for table in rest:
        md += [f"## {table.heading}", "", markdown_table(table.kind, table.rows), ""]
    md += [f"Peak memory: {MEMORY_NOTE}.", ""]
    for name, path in page.text_samples:
        md += [f"## Samples: {name}", "", "```", _read_text(path), "```", ""]
    return "\n".join(md)


def _html(page: Page) -> str:
    escape = html.escape
    body = [f"<h1>{escape(page.title)}</h1>"]
    if page.command:
        body.append(f"<pre>{escape(page.command)}</pre>")
    first, *rest = page.tables
    body.append(html_table(first.kind, first.rows))
    for section in page.sections:
        items = "".join(f"<li>{escape(item)}</li>" for item in section.items)
        body.append(f"<h2>{escape(section.heading)}</h2><p>{escape(section.intro)}</p>")
        body.append(f"<ul>{items}</ul>")
    for figure in page.figures:
        body.append(
            f"<figure><h2>{escape(figure.title)}</h2>"
            f'<img src="{_data_uri(figure.path)}" alt="{escape(figure.path.name)}">'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>"
        )
    for table in rest:
        body.append(f"<h2>{escape(table.heading or '')}</h2>")
        body.append(html_table(table.kind, table.rows))
    body.append(f"<p><small>Peak memory: {escape(MEMORY_NOTE)}.</small></p>")
    for name, path in page.text_samples:
        body.append(f"<h2>Samples: {escape(name)}</h2><pre>{escape(_read_text(path))}</pre>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(page.title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _is_text(path: Path | None) -> bool:
    return path is not None and path.suffix == ".txt"


def _read_text(path: Path, limit: int = 4000) -> str:
    return path.read_text("utf-8", errors="replace")[:limit]
