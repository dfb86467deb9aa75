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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lipgan.compare.execute import Event
from lipgan.compare.report import columns_for, headers

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
    """The compare on a terminal: a bar per run and one for the whole compare, then the
    table; one plain line per finished run when the console is not a terminal."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.interactive = self.console.is_terminal
        self.done: dict[str, int] = {}
        self.tasks: dict[str, Any] = {}
        self.progress: Progress | None = None

    def start(self, header: str, totals: dict[str, int]) -> None:
        """Show what is about to run; ``totals`` is each run's number of iterations."""
        self.console.print(header, markup=False)
        self.done = dict.fromkeys(totals, 0)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[numbers]}"),
            console=self.console,
            disable=not self.interactive,
        )
        self.progress.__enter__()
        self.overall = self.progress.add_task("[bold]all", total=sum(totals.values()), numbers="")
        for name, total in totals.items():
            self.tasks[name] = self.progress.add_task(escape(name), total=total, numbers="")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)
            self.progress = None

    def __call__(self, event: Event) -> None:
        from lipgan.reporting import describe

        assert self.progress is not None, "start() first"
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

    def show(self, kind: str, rows: Sequence[dict[str, Any]], title: str, report: Path) -> None:
        """The finished table and where the report is."""
        _wide(self.console).print(rich_table(kind, rows, title))
        self.console.print(f"report: {report}", markup=False)


def _wide(console: Console) -> Console:
    """The same output, at least TABLE_WIDTH wide (a pipe defaults to 80 columns)."""
    return Console(file=console.file, width=max(console.width, TABLE_WIDTH), highlight=False)
