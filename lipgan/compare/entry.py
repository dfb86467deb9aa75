"""The library entries behind ``lipgan compare`` and ``lipgan diagnose``.

Each takes a display (``lipgan.display.CompareDisplay`` on the command line; the default
``QuietDisplay`` shows nothing) and returns what it wrote; nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from lipgan.compare.critic_only import train_critics
from lipgan.compare.examine import examine_run
from lipgan.compare.execute import Event, train_all
from lipgan.compare.figures import draw_figures
from lipgan.compare.plan import CompareSetup, Entry
from lipgan.compare.report import write_report
from lipgan.config import load_toml
from lipgan.errors import ConfigError


class Display(Protocol):
    """What a compare shows while it works and when it is done."""

    def start(self, header: str, totals: dict[str, int]) -> None: ...
    def __call__(self, event: Event) -> None: ...
    def stop(self) -> None: ...
    def show(self, kind: str, rows: Sequence[dict[str, Any]], title: str, report: Path) -> None: ...


class QuietDisplay:
    """Shows nothing: for library use and tests."""

    def start(self, header: str, totals: dict[str, int]) -> None:
        pass

    def __call__(self, event: Event) -> None:
        pass

    def stop(self) -> None:
        pass

    def show(self, kind: str, rows: Sequence[dict[str, Any]], title: str, report: Path) -> None:
        pass


def run_compare(
    compare: CompareSetup,
    display: Display | None = None,
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """Train (or, critic-only, fit the critics), examine, draw and write the report."""
    display = display or QuietDisplay()
    base = compare.base
    kind = "critic-only" if compare.critic_only else "compare"
    names = ", ".join(e.name for e in compare.entries)
    display.start(
        f"{kind}: {names} on {base.data}, seed {base.seed}, "
        f"{base.iters} {'critic' if compare.critic_only else 'generator'} iterations each "
        f"-> {compare.out}",
        {e.name: base.iters for e in compare.entries},
    )
    try:
        if compare.critic_only:
            results = [result for result, _ in train_critics(compare, display)]
        else:
            outcomes = train_all(compare, display, should_stop)
    finally:
        display.stop()
    if not compare.critic_only:
        results = [
            examine_run(compare.prepared[e.name].run_dir, e, outcomes[e.name], compare.threshold)
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
    display.show(kind, [r.row for r in results], title, compare.out / "report.html")
    return data


def run_diagnose(
    run_dir: Path,
    out: Path | None,
    threshold: float | None = None,
    display: Display | None = None,
) -> Path:
    """The compare's figures and table for one finished run folder."""
    display = display or QuietDisplay()
    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml); check the path")
    config = load_toml(run_dir / "config.toml")
    entry = Entry(run_dir.name, config.constraint, config.clip_value)
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    result = examine_run(run_dir, entry, threshold=threshold)
    if result.critic is None:
        raise ConfigError(f"{run_dir} has no readable checkpoints/last.pt; train it first")
    out = out or run_dir / "diagnostics"
    title = f"diagnose: {run_dir.name} ({config.constraint} on {config.data})"
    figures = draw_figures([result], out / "figures", "compare", title)
    write_report(out, "diagnose", title, [result], figures, {"run": str(run_dir)})
    display.show("diagnose", [result.row], title, out / "report.html")
    return out
