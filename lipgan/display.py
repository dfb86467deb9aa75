"""The terminal: Rich owns it here and nowhere else.

While training, on a terminal a progress bar shows the iteration, W estimate, penalty,
quality and speed; anywhere else (CI, a pipe) one plain line is printed per log step.
``TrainDisplay`` is a training callback (lipgan/callbacks.py); the engine never imports
this module. The compare's live display (every run's progress, then the table) lives
here too; the library entries in ``lipgan.compare`` receive it as an argument and never
print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lipgan.callbacks import Callback
from lipgan.compare.table import columns_for, headers
from lipgan.config import TrainConfig
from lipgan.executors import Event

TABLE_WIDTH = 170
"""The table is wider than most terminals; Rich folds it rather than cut columns."""


def describe(metrics: Mapping[str, float]) -> str:
    """The few numbers worth watching, short."""
    parts = [
        f"W {metrics.get('wasserstein/estimate', float('nan')):.3f}",
        f"pen {metrics.get('loss/penalty', float('nan')):.3g}",
        f"|grad| {metrics.get('lipschitz/grad_norm_mean', float('nan')):.2f}",
    ]
    for key, label in (
        ("quality/w1", "W1"),
        ("quality/modes", "modes"),
        ("quality/frechet", "FD"),
        ("quality/js4", "JS4"),
    ):
        if key in metrics:
            parts.append(f"{label} {metrics[key]:.3g}")
    return "  ".join(parts)


class TrainDisplay(Callback):
    """One training run on the terminal: a header, a live bar (or plain lines), a result.

    Use as a context manager around the run, so the bar stops even when training fails.
    The engine calls it on the main process only.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.interactive = self.console.is_terminal
        self.bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[numbers]}"),
            console=self.console,
            disable=not self.interactive,
        )
        self.task: TaskID | None = None
        self.first: int | None = None
        self.run_dir: Path | None = None
        self.total = 0

    def __enter__(self) -> TrainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        self.run_dir, self.total = run_dir, config.iters
        verb = "resuming" if iteration > 0 else "training"
        chosen = ""
        if config.precision_auto:
            chosen = f" in {config.precision} (chosen by --precision auto)"
        self.console.print(
            f"{verb} [bold]{config.constraint}[/] on [bold]{config.data}[/] for "
            f"{config.iters} iterations{chosen} -> {run_dir}"
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=config.iters, speed="", numbers="")
        # Speed counts this session's iterations only (a resumed run starts mid-way).
        self.first = iteration

    def on_message(self, text: str) -> None:
        self.bar.console.print(text)

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        line = describe(metrics)
        if self.interactive and self.task is not None:
            self.bar.update(self.task, numbers=line)
        else:
            self.console.print(f"step {iteration}/{self.total}  {line}")

    def on_iteration(self, iteration: int, total: int) -> None:
        if not self.interactive or self.task is None:
            return
        elapsed = self.bar.tasks[0].elapsed or 0.0
        done = iteration - (self.first or 0)
        speed = f"{done / elapsed:.1f} it/s" if elapsed > 0 and done > 0 else ""
        self.bar.update(self.task, completed=iteration, speed=speed)

    def on_train_end(self, summary: Mapping[str, Any]) -> None:
        self.bar.stop()
        if "stopped_at" in summary:
            return  # the caller says how to resume
        headline = {
            k: summary[k] for k in ("w1", "w1_floor", "modes", "hq_fraction") if k in summary
        }
        numbers = "  ".join(f"{k} {v:.4g}" for k, v in headline.items())
        self.console.print(
            f"done in {summary['seconds']:.1f} s ({summary['seconds_per_iter'] * 1000:.1f} ms/it)"
            f"  {numbers}\nrun folder: {self.run_dir}"
        )


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
