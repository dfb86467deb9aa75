"""The terminal: Rich owns it here and nowhere else.

While training, on a terminal a progress bar shows the iteration, W estimate, penalty,
quality and speed; anywhere else (CI, a pipe) one plain line is printed per log step.
``TrainDisplay`` is a training callback (lipgan/callbacks.py); the engine never imports
this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lipgan.callbacks import Callback
from lipgan.config import TrainConfig


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
        self.console.print(
            f"{verb} [bold]{config.constraint}[/] on [bold]{config.data}[/] for "
            f"{config.iters} iterations -> {run_dir}"
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
