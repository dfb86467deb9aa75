"""The terminal while training: Rich owns it here and nowhere else.

On a terminal a progress bar shows the iteration, W estimate, penalty, quality and
speed; anywhere else (CI, a pipe) one plain line is printed per log step.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lipgan import engine
from lipgan.runs import PreparedRun


def describe(metrics: dict[str, float]) -> str:
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


def train_with_progress(
    prepared: PreparedRun,
    should_stop: Callable[[], int | None],
    console: Console | None = None,
    extra: Callable[[engine.Progress], None] | None = None,
) -> dict:
    """Train with a live display; ``extra`` also receives every Progress (TensorBoard)."""
    console = console or Console(highlight=False)
    is_main = int(os.environ.get("RANK", "0")) == 0
    config = prepared.config
    interactive = console.is_terminal and is_main
    if is_main:
        verb = "resuming" if prepared.resume else "training"
        console.print(
            f"{verb} [bold]{config.constraint}[/] on [bold]{config.data}[/] for "
            f"{config.iters} iterations -> {prepared.run_dir}"
        )
    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[speed]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[numbers]}"),
        console=console,
        disable=not interactive,
    )

    def on_progress(progress: engine.Progress) -> None:
        if extra is not None:
            extra(progress)
        if progress.message and is_main:
            bar.console.print(progress.message)
        if progress.metrics is not None and is_main:
            line = describe(progress.metrics)
            if interactive:
                bar.update(task, numbers=line)
            else:
                console.print(f"step {progress.iteration}/{progress.total}  {line}")
        if interactive:
            # Speed counts this session's iterations only (a resumed run starts mid-way).
            first = started.setdefault("iteration", progress.iteration - 1)
            elapsed = bar.tasks[0].elapsed or 0.0
            done = progress.iteration - first
            speed = f"{done / elapsed:.1f} it/s" if elapsed > 0 and done > 0 else ""
            bar.update(task, completed=progress.iteration, speed=speed)

    started: dict[str, int] = {}
    with bar:
        task = bar.add_task("train", total=config.iters, speed="", numbers="")
        summary = engine.train(
            config,
            prepared.run_dir,
            data=prepared.data,
            resume=prepared.resume,
            on_progress=on_progress,
            should_stop=should_stop,
        )
    if is_main:
        headline = {
            k: summary[k] for k in ("w1", "w1_floor", "modes", "hq_fraction") if k in summary
        }
        numbers = "  ".join(f"{k} {v:.4g}" for k, v in headline.items())
        console.print(
            f"done in {summary['seconds']:.1f} s ({summary['seconds_per_iter'] * 1000:.1f} ms/it)"
            f"  {numbers}\nrun folder: {prepared.run_dir}"
        )
    return summary
