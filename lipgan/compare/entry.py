"""The library entries behind ``lipgan compare`` and ``lipgan diagnose``.

Each takes a display (``lipgan.display.CompareDisplay`` on the command line; the default
``QuietDisplay`` shows nothing) and returns what it wrote; nothing here prints.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from lipgan import engine
from lipgan.compare.critic_only import train_critics
from lipgan.compare.examine import RunResult, examine_run, shared_threshold
from lipgan.compare.figures import draw_figures
from lipgan.compare.findings import check_all
from lipgan.compare.plan import FINAL, CompareSetup, Entry, run_name, write_outcomes
from lipgan.compare.report import Page, Section, Table, text_samples, write_report
from lipgan.compare.summary import SPREAD_KEYS, summarize
from lipgan.compare.verdicts import pairwise, verdict_metrics
from lipgan.config import load_toml, strategy_param
from lipgan.errors import ConfigError
from lipgan.executors import Event, Executor, LocalProcessExecutor, Outcome, ShouldStop


class Display(Protocol):
    """What a compare shows while it works and when it is done."""

    def start(self, header: str, totals: dict[str, int]) -> None: ...
    def __call__(self, event: Event) -> None: ...
    def stop(self) -> None: ...
    def show(self, kind: str, rows: Sequence[dict[str, Any]], title: str, report: Path) -> None: ...
    def note(self, text: str) -> None: ...


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

    def note(self, text: str) -> None:
        pass


def run_compare(
    compare: CompareSetup,
    display: Display | None = None,
    should_stop: ShouldStop | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Train every job (or, critic-only, fit the critics), examine, draw, write the report.

    ``executor`` defaults to ``LocalProcessExecutor(compare.parallel, compare.threads)``.
    Returns results.json's data.
    """
    display = display or QuietDisplay()
    try:
        return _compare(compare, display, should_stop, executor)
    finally:
        compare.release()  # the folder is free for the next compare


def _compare(
    compare: CompareSetup,
    display: Display,
    should_stop: ShouldStop | None,
    executor: Executor | None,
) -> dict[str, Any]:
    if compare.critic_only:
        return _critic_only(compare, display)
    for note in compare.notes:
        display.note(note)
    base = compare.base
    totals = {job.name: job.config.iters for job in compare.jobs}
    done = {name: o for name, o in compare.finished.items() if o.get("status") in FINAL}
    display.start(
        f"compare: {', '.join(e.name for e in compare.entries)} on {base.data}, seeds "
        f"{_seed_list(compare.seeds)}, {base.iters} generator iterations each: "
        f"{len(totals)} runs to train{f', {len(done)} reused' if done else ''} -> {compare.out}",
        totals,
    )
    executor = executor or LocalProcessExecutor(compare.parallel, compare.threads)
    outcomes = dict(compare.finished)

    def on_event(event: Event) -> None:
        if event.outcome is not None:  # persisted at once, so --resume knows what ended
            outcomes[event.name] = event.outcome.to_dict()
            write_outcomes(compare.out, outcomes)
        display(event)

    try:
        executor.run(compare.jobs, on_event, should_stop)
    except engine.Interrupted as exc:
        raise engine.Interrupted(
            f"compare stopped; finished and checkpointed runs are kept. Continue with: "
            f"lipgan compare --resume {shlex.quote(str(compare.out))}",
            exit_code=exc.exit_code,
        ) from None
    finally:
        display.stop()
    data = report_compare(compare, outcomes)
    rows = list(data["strategies"].values())
    display.show("compare", rows, data["title"], compare.out / "report.html")
    for item in data["verdicts"]:
        display.note(item["sentence"])
    for finding in data["findings"]:
        display.note(f"{finding['status']}: {finding['claim']}. {finding['detail']}")
    return data


def _seed_list(seeds: list[int]) -> str:
    return ",".join(map(str, seeds))


def report_compare(compare: CompareSetup, outcomes: dict[str, dict[str, Any]]) -> dict:
    """Examine every run folder and write the report; returns results.json's data."""
    base = compare.base
    jobs = [(entry, run_name(entry, seed)) for entry in compare.entries for seed in compare.seeds]
    threshold = shared_threshold([compare.runs_dir / name for _, name in jobs], compare.threshold)
    results = {
        name: examine_run(compare.runs_dir / name, entry, _outcome(outcomes.get(name)), threshold)
        for entry, name in jobs
    }
    groups = {e.name: [r for r in results.values() if r.entry == e] for e in compare.entries}
    summaries, verdicts, findings = _analyse(compare, groups)
    title = (
        f"compare: {base.data}, {len(compare.seeds)} seed(s) ({_seed_list(compare.seeds)}), "
        f"{base.iters} iterations"
    )
    figures = draw_figures(groups, compare.figures_dir, "compare", title)
    data = {
        "kind": "compare",
        "title": title,
        "command": compare.command,
        "data": base.data,
        "seeds": compare.seeds,
        "iters": base.iters,
        "config": base.to_dict(),
        "quality_metric": next((s["quality_metric"] for s in summaries), None),
        "threshold": threshold,
        "baseline": compare.baseline_name(),
        "strategies": {s["name"]: s for s in summaries},
        "runs": {name: {**r.record(), "run": f"runs/{name}"} for name, r in results.items()},
        "verdicts": verdicts,
        "findings": findings,
    }
    rows = [r.row for r in results.values()]
    page = Page(
        title,
        compare.command,
        [Table(None, "compare", summaries), Table("Every run", "runs", rows)],
        [
            verdict_section(verdicts, data["baseline"], len(compare.seeds)),
            findings_section(findings),
        ],
        figures,
        text_samples(list(results.values())),
    )
    write_report(compare.out, page, data)
    return data


def _analyse(compare: CompareSetup, groups: dict[str, list[RunResult]]):
    """(summaries, verdicts, findings) of the strategies' runs."""
    summaries = [summarize(e, [r.row for r in groups[e.name]]) for e in compare.entries]
    quality_metric = next((s["quality_metric"] for s in summaries if s["quality_metric"]), None)
    for summary in summaries:
        summary["quality_metric"] = quality_metric
    baseline = compare.baseline_name()
    per_seed = {n: {k: [r.row.get(k) for r in rs] for k in SPREAD_KEYS} for n, rs in groups.items()}
    has_modes = any("modes" in s for s in summaries)
    others = [e.name for e in compare.entries if e.name != baseline]
    metrics = verdict_metrics(quality_metric, has_modes)
    verdicts = pairwise(baseline, others, per_seed, metrics)
    records = {name: [r.record() for r in runs] for name, runs in groups.items()}
    return summaries, verdicts, check_all(records, quality_metric)


def _outcome(saved: dict[str, Any] | None) -> Outcome | None:
    return None if saved is None else Outcome(**saved)


def verdict_section(verdicts: list[dict[str, Any]], baseline: str, seeds: int) -> Section:
    tests = len({(v["metric"], v["other"]) for v in verdicts})
    intro = (
        f"Each strategy against the baseline {baseline}, by Welch's t test over seeds: on "
        "W1, Fréchet, KID and JS on log values, stated as a ratio with its 95% interval "
        "('11x lower'), on counts and fractions as a difference of means ('by 0.088'; "
        "docs/compare.md); 'beats' only where p < 0.05. The p-values "
        f"alone are not corrected for the {tests} comparisons below: at p < 0.05 about "
        f"{0.05 * tests:.1g} of them can come out significant by chance alone, so each "
        "'beats' also says whether it holds after Holm's step-down correction (which keeps "
        "the chance of any false 'beats' among them at 5%)."
    )
    if seeds < 2:
        intro = "One seed per strategy: no verdict is possible (run with --seeds 2 or more)."
    return Section("Verdicts", intro, [v["sentence"] for v in verdicts])


def findings_section(findings: list[dict[str, Any]]) -> Section:
    intro = (
        "The WGAN-GP paper's claims, checked on these runs: held, did not hold, or not "
        "measurable here, with the numbers that decided it."
    )
    items = [f"{f['status'].upper()}: {f['claim']}. {f['detail']}" for f in findings]
    return Section("Findings", intro, items)


def _critic_only(compare: CompareSetup, display: Display) -> dict[str, Any]:
    base = compare.base
    display.start(
        f"critic-only: {', '.join(e.name for e in compare.entries)} on {base.data}, seed "
        f"{base.seed}, {base.iters} critic iterations each -> {compare.out}",
        {e.name: base.iters for e in compare.entries},
    )
    try:
        results = [result for result, _ in train_critics(compare, display)]
    finally:
        display.stop()
    title = f"critic-only: {base.data}, seed {base.seed}, {base.iters} iterations"
    groups = {r.entry.name: [r] for r in results}
    figures = draw_figures(groups, compare.figures_dir, "critic-only", title)
    rows = [r.row for r in results]
    data = {
        "kind": "critic-only", "title": title, "command": compare.command, "data": base.data,
        "seed": base.seed, "iters": base.iters, "config": base.to_dict(),
        "noise_std": compare.noise_std, "strategies": {r.entry.name: r.record() for r in results},
    }  # fmt: skip
    page = Page(title, compare.command, [Table(None, "critic-only", rows)], [], figures)
    write_report(compare.out, page, data)
    display.show("critic-only", rows, title, compare.out / "report.html")
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
    entry = Entry(run_dir.name, config.constraint, strategy_param(config, "c"))
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    result = examine_run(run_dir, entry, threshold=threshold)
    if result.critic is None:
        raise ConfigError(f"{run_dir} has no readable checkpoints/last.pt; train it first")
    out = out or run_dir / "diagnostics"
    title = f"diagnose: {run_dir.name} ({config.constraint} on {config.data})"
    figures = draw_figures({entry.name: [result]}, out / "figures", "diagnose", title)
    data = {"kind": "diagnose", "title": title, "run": str(run_dir), "runs": {
        entry.name: result.record()}}  # fmt: skip
    page = Page(title, "", [Table(None, "diagnose", [result.row])], [], figures,
                text_samples([result]))  # fmt: skip
    write_report(out, page, data)
    display.show("diagnose", [result.row], title, out / "report.html")
    if result.critic.bounds is not None:
        display.note(result.critic.bounds.describe())
    return out
