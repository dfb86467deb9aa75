"""The terminal: Rich owns it here and nowhere else.

The compare's live display (every run's progress, then the table) lives here; the
library entries in ``lipgan.compare`` receive it as an argument and never print.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lipgan.compare.execute import Event
from lipgan.compare.table import columns_for, headers

TABLE_WIDTH = 170
"""The table is wider than most terminals; Rich folds it rather than cut columns."""


def rich_table(kind: str, rows: Sequence[dict[str, Any]], title: str) -> Table:
    columns = columns_for(kind, rows)
    table = Table(title=title)
    for header in headers(columns, rows):
        table.add_column(escape(header), overflow="fold")
    for row in rows:
        table.add_row(*(escape(c.render(row)) for c in columns))
    return table


class CompareDisplay:
    """A compare on the terminal: one bar for all runs (with the counts of done, running
    and queued runs and an ETA), a bar per running run, a line per finished run; then the
    table. Plain lines (a run starting, a run ending) when the console is not a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.interactive = self.console.is_terminal
        self.progress: Progress | None = None

    def start(self, header: str, totals: dict[str, int]) -> None:
        """Show what is about to run; ``totals`` is each run's number of iterations."""
        self.console.print(header, markup=False)
        self.totals = totals
        self.done: dict[str, int] = dict.fromkeys(totals, 0)
        self.running: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[numbers]}"),
            console=self.console,
            disable=not self.interactive,
        )
        self.progress.__enter__()
        self.overall = self.progress.add_task(
            "[bold]all runs", total=sum(totals.values()), numbers=self._counts()
        )

    def _counts(self) -> str:
        queued = len(self.totals) - len(self.finished) - len(self.running)
        return f"{len(self.finished)} done · {len(self.running)} running · {queued} queued"

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None

    def __call__(self, event: Event) -> None:
        from lipgan.reporting import describe

        progress = self.progress
        assert progress is not None, "start() first"
        name = event.name
        if name not in self.running and name not in self.finished:
            self.running[name] = progress.add_task(escape(name), total=event.total, numbers="")
            if not self.interactive:
                self.console.print(f"start {name}", markup=False)
        self.done[name] = event.iteration
        if name in self.running:
            task = self.running[name]
            progress.update(task, completed=event.iteration)
            if event.metrics is not None:
                progress.update(task, numbers=escape(describe(event.metrics)))
        if event.outcome is not None and name in self.running:
            progress.remove_task(self.running.pop(name))
            self.finished.add(name)
            self.done[name] = self.totals.get(name, event.total)  # ended early: no work left
            line = f"{name}: {event.outcome.status}"
            if event.outcome.message and event.outcome.status != "ok":
                line += f" ({event.outcome.message})"
            line += f"  [{len(self.finished)}/{len(self.totals)} runs]"
            (progress.console if self.interactive else self.console).print(line, markup=False)
        progress.update(self.overall, completed=sum(self.done.values()), numbers=self._counts())

    def show(self, kind: str, rows: Sequence[dict[str, Any]], title: str, report: Path) -> None:
        """The finished table and where the report is."""
        _wide(self.console).print(rich_table(kind, rows, title))
        self.console.print(f"report: {report}", markup=False)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False)


def _wide(console: Console) -> Console:
    """The same output, at least TABLE_WIDTH wide (a pipe defaults to 80 columns)."""
    return Console(file=console.file, width=max(console.width, TABLE_WIDTH), highlight=False)
