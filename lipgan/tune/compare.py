"""``lipgan compare --tune N``: every strategy gets the same tuning budget, then the best
configurations meet on fresh seeds.

1. One study per strategy (``studies/<name>/``), all with the same study seed, trial
   budget and selection seeds: draw k gives every strategy the same shared knobs.
2. Each strategy's best configuration is retrained on the evaluation seeds, which never
   include a selection seed (selecting and evaluating on the same seeds is optimistic),
   at the compare's full budget: an ordinary compare in ``evaluation/``, so its table,
   verdicts (Welch + Holm) and findings are the usual ones.
3. ``report.md`` / ``results.json`` add, per strategy, the spread of the objective over
   its trials, the fraction reaching the threshold, the expected best against the number
   of trials (and when two strategies' curves cross), and defaults against tuned.

The folder holds the plan (tuned.json); ``lipgan compare --resume DIR`` continues it.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lipgan import data as datasets
from lipgan import engine
from lipgan.compare import plan
from lipgan.compare.entry import Display, QuietDisplay, run_compare
from lipgan.compare.plan import Entry
from lipgan.config import TrainConfig, load_toml, replace
from lipgan.errors import ConfigError
from lipgan.executors import Executor, ShouldStop, executor_session
from lipgan.runio import atomic_write_text
from lipgan.tune import study as studies
from lipgan.tune.budget import BudgetPoint, crossings, crossings_in_seconds
from lipgan.tune.figures import FIGURE_FILE, plot_budget
from lipgan.tune.outputs import BEST_FILE, curve_rows, markdown_table

PLAN_FILE = "tuned.json"


@dataclass
class TunedCompareSetup:
    """A validated tuned compare: its strategies, both sets of seeds and both budgets."""

    base: TrainConfig
    """The compare's shared config, iters = the full (evaluation) budget."""
    entries: list[Entry]
    out: Path
    trials: int
    selection_seeds: list[int]
    evaluation_seeds: list[int]
    tune_iters: int
    parallel: int = 1
    threads: int | None = None
    threshold: float | None = None
    baseline: str | None = None
    command: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    """The studies' options (sampler, prune), saved for the record."""

    def study_dir(self, entry: Entry) -> Path:
        return self.out / "studies" / entry.name

    @property
    def evaluation_dir(self) -> Path:
        return self.out / "evaluation"


def selection_seeds(count: int, evaluation: list[int]) -> list[int]:
    """``count`` selection seeds after the evaluation seeds, so the two never meet."""
    first = max(evaluation) + 1
    return list(range(first, first + count))


def setup(
    base: TrainConfig,
    entries: list[Entry],
    out: Path | None,
    *,
    trials: int,
    evaluation_seeds: list[int],
    selection: list[int],
    tune_iters: int | None = None,
    sampler: str = "random",
    prune: bool = False,
    space_file: Path | None = None,
    parallel: int = 1,
    threads: int | None = None,
    threshold: float | None = None,
    baseline: str | None = None,
    overwrite: bool = False,
    command: str = "",
) -> TunedCompareSetup:
    """Check the options, claim the folder and set up every strategy's study."""
    shared = sorted(set(selection) & set(evaluation_seeds))
    if shared:
        raise ConfigError(
            f"selection seed {shared[0]} is also an evaluation seed: a configuration chosen "
            "on its evaluation seeds looks better than it is; choose --tune-seeds apart "
            "from --seeds"
        )
    if baseline is not None and baseline not in [e.name for e in entries]:
        raise ConfigError(f"--baseline {baseline!r} is not one of the compared strategies")
    family = datasets.load_for(base).family
    base = replace(base, iters=engine.resolve_iters(base, family))
    tuned = TunedCompareSetup(
        base, entries, Path("."), trials, list(selection), list(evaluation_seeds),
        tune_iters or int(base.iters or 0), parallel, threads, threshold, baseline, command,
        {"sampler": sampler, "prune": prune},
    )  # fmt: skip
    tuned.out = Path(out) if out is not None else plan.default_out(base)
    studies.claim(tuned.out, overwrite, (PLAN_FILE, "studies"))
    for entry in entries:  # every study: the same study seed (base.seed), budget and seeds
        strategy = replace(plan.entry_config(base, entry, base.seed, tuned.out), out=None)
        studies.setup(
            replace(strategy, iters=tuned.tune_iters), tuned.study_dir(entry), trials=trials,
            seeds=tuned.selection_seeds, sampler=sampler, prune=prune, space_file=space_file,
            parallel=parallel, threads=threads, threshold=threshold,
            command=f"{command} (study of {entry.name})",
        )  # fmt: skip
    _save(tuned)
    return tuned


def _save(tuned: TunedCompareSetup) -> None:
    data = {
        "base": tuned.base.to_dict(),
        "entries": [asdict(e) for e in tuned.entries],
        "trials": tuned.trials,
        "selection_seeds": tuned.selection_seeds,
        "evaluation_seeds": tuned.evaluation_seeds,
        "tune_iters": tuned.tune_iters,
        "parallel": tuned.parallel,
        "threads": tuned.threads,
        "threshold": tuned.threshold,
        "baseline": tuned.baseline,
        "command": tuned.command,
        "options": tuned.options,
    }
    atomic_write_text(tuned.out / PLAN_FILE, json.dumps(data, indent=2) + "\n")


def is_tuned(out: Path) -> bool:
    """Whether ``out`` holds a tuned compare (for ``compare --resume``)."""
    return (out / PLAN_FILE).is_file()


def resume_setup(
    out: Path, parallel: int | None = None, threads: int | None = None
) -> TunedCompareSetup:
    path = out / PLAN_FILE
    try:
        saved = json.loads(path.read_text("utf-8"))
        base = TrainConfig.from_dict(saved.pop("base"), source=str(path))
        entries = [Entry(**e) for e in saved.pop("entries")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume {out}: {path} is unreadable ({exc})") from None
    if parallel is not None:
        saved["parallel"] = parallel
    if threads is not None:
        saved["threads"] = threads
    return TunedCompareSetup(base, entries, out, **saved)


def run_tuned_compare(
    tuned: TunedCompareSetup,
    display: Display | None = None,
    should_stop: ShouldStop | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Tune every strategy, retrain the best on the evaluation seeds, write the report."""
    display = display or QuietDisplay()
    try:
        with executor_session(executor):  # one Ray connection for every study and the rest
            tuning = {}
            for entry in tuned.entries:
                study_dir = tuned.study_dir(entry)
                tune = studies.resume_setup(study_dir, tuned.parallel, tuned.threads)
                tuning[entry.name] = studies.run_tune(tune, display, should_stop, executor)
            compare = _evaluation(tuned, tuning, display)
            evaluation = run_compare(compare, display, should_stop, executor)
    except engine.Interrupted as exc:
        raise engine.Interrupted(
            "compare --tune stopped; finished trials and runs are kept. Continue with: "
            f"lipgan compare --resume {shlex.quote(str(tuned.out))}",
            exit_code=exc.exit_code,
        ) from None
    data = report(tuned, tuning, evaluation)
    for line in data["sentences"]:
        display.note(line)
    return data


def best_config(tuned: TunedCompareSetup, entry: Entry, tuning: dict[str, Any]) -> TrainConfig:
    """The strategy's best trial at the full budget (its defaults if no trial finished)."""
    path = tuned.study_dir(entry) / BEST_FILE
    if tuning.get("best") is None or not path.is_file():
        return replace(plan.entry_config(tuned.base, entry, tuned.base.seed, tuned.out), out=None)
    return replace(load_toml(path), iters=tuned.base.iters, out=None)


def _evaluation(
    tuned: TunedCompareSetup, tuning: dict[str, Any], display: Display
) -> plan.CompareSetup:
    if (tuned.evaluation_dir / plan.PLAN_FILE).is_file():
        return plan.resume_setup(tuned.evaluation_dir, tuned.parallel, tuned.threads)
    configs = {e.name: best_config(tuned, e, tuning[e.name]) for e in tuned.entries}
    for entry in tuned.entries:
        if tuning[entry.name].get("best") is None:
            display.note(f"{entry.name}: no trial finished; its defaults are retrained")
    return plan.setup(
        tuned.base, tuned.entries, tuned.evaluation_dir, configs=configs,
        seeds=tuned.evaluation_seeds, parallel=tuned.parallel, threads=tuned.threads,
        threshold=tuned.threshold, baseline=tuned.baseline,
        command=f"{tuned.command} (evaluation of the best configurations)",
    )  # fmt: skip


# --- the report ------------------------------------------------------------------------------


def _curve(points: list[dict[str, Any]]) -> list[BudgetPoint]:
    return [
        BudgetPoint(
            p["trials"], math.inf if p["expected_best"] is None else p["expected_best"],
            p["seconds"],
        )
        for p in points
    ]  # fmt: skip


def _spread(values: list[float]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"n": 0}
    q = np.quantile(finite, [0.0, 0.25, 0.5, 0.75, 1.0])
    names = ("min", "q25", "median", "q75", "max")
    return {"n": len(finite), **dict(zip(names, q.tolist(), strict=True))}


def report(
    tuned: TunedCompareSetup, tuning: dict[str, dict[str, Any]], evaluation: dict[str, Any]
) -> dict[str, Any]:
    """report.md and results.json of the tuned compare; returns results.json's data."""
    metric = evaluation.get("quality_metric") or next(
        (t["metric"] for t in tuning.values() if t["metric"]), None
    )
    name = (metric or "objective").removeprefix("quality/")
    rows, sentences = [], []
    for entry in tuned.entries:
        study, evaluated = tuning[entry.name], evaluation["strategies"].get(entry.name, {})
        final = evaluated.get("final_quality", {})
        defaults = (study.get("defaults") or {}).get("objective")
        best = (study.get("best") or {}).get("objective")
        spread = _spread([t["objective"] for t in study["trials"]])
        rows.append(
            {
                "name": entry.name,
                "trials": study["trials_ended"],
                "failed_or_pruned": sum(t["objective"] is None for t in study["trials"]),
                "reached_fraction": study["reached_fraction"],
                "trial_median": spread.get("median"),
                "trial_q25": spread.get("q25"),
                "trial_q75": spread.get("q75"),
                "defaults": defaults,
                "best_trial": best,
                "evaluated_mean": final.get("mean"),
                "evaluated_std": final.get("std"),
                "training_seconds": study["training_seconds"],
            }
        )
        evaluated_text = (
            f"{final['mean']:.3g} ± {final['std']:.2g} (mean ± sd) over evaluation seeds "
            f"{', '.join(map(str, tuned.evaluation_seeds))}"
            if final.get("mean") is not None and final.get("std") is not None
            else "not measured"
        )
        sentences.append(
            f"{entry.name}: at its defaults {name} {_g(defaults)} (trial 0, selection seeds); "
            f"best of {study['trials_ended']} trials {_g(best)}; retrained at "
            f"{tuned.base.iters} iterations: {evaluated_text}"
        )
    curves = {e.name: _curve(tuning[e.name]["budget_curve"]) for e in tuned.entries}
    names = list(curves)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            for k in crossings(curves[first], curves[second]):
                sentences.append(
                    f"the expected-best curves of {first} and {second} cross at {k} trials: "
                    "the ranking depends on the budget"
                )
            for seconds in crossings_in_seconds(curves[first], curves[second]):
                sentences.append(
                    f"at equal training time the expected-best curves of {first} and "
                    f"{second} cross at {seconds:.0f} s: the ranking depends on the budget"
                )
    sentences += [v["sentence"] for v in evaluation.get("verdicts", [])]
    data = {
        "kind": "compare-tuned",
        "command": tuned.command,
        "data": tuned.base.data,
        "metric": metric,
        "trials": tuned.trials,
        "tune_iters": tuned.tune_iters,
        "iters": tuned.base.iters,
        "selection_seeds": tuned.selection_seeds,
        "evaluation_seeds": tuned.evaluation_seeds,
        "options": tuned.options,
        "strategies": rows,
        "budget_curves": {n: tuning[n]["budget_curve"] for n in names},
        "sentences": sentences,
        "evaluation": "evaluation/results.json",
    }
    atomic_write_text(tuned.out / "results.json", json.dumps(data, indent=2) + "\n")
    atomic_write_text(tuned.out / "report.md", _markdown(tuned, data, tuning))
    plot_budget(
        tuned.out / FIGURE_FILE, name,
        {n: [t["objective"] for t in tuning[n]["trials"]] for n in names},
        data["budget_curves"],
        {r["name"]: (r["evaluated_mean"], r["evaluated_std"]) for r in rows},
    )  # fmt: skip
    return data


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _markdown(tuned: TunedCompareSetup, data: dict[str, Any], tuning: dict[str, Any]) -> str:
    metric = data["metric"] or "objective"
    curve_table = []
    for name, curve in data["budget_curves"].items():
        for point in curve_rows(curve):
            curve_table.append({"strategy": name, **point})
    lines = [
        f"# lipgan compare --tune: {data['data']}",
        "",
        f"`{data['command']}`" if data["command"] else "",
        "",
        f"Every strategy: {data['trials']} trials ({tuned.options.get('sampler')} sampler"
        f"{', pruned' if tuned.options.get('prune') else ''}) at {data['tune_iters']} "
        f"iterations on selection seeds {', '.join(map(str, data['selection_seeds']))}, "
        f"trial 0 its defaults; the best retrained at {data['iters']} iterations on "
        f"evaluation seeds {', '.join(map(str, data['evaluation_seeds']))} "
        "(evaluation/report.md has the table, verdicts and findings). Objective and "
        f"quality: {metric}, lower is better.",
        "",
        *(f"- {s}" for s in data["sentences"]),
        "",
        "## Per strategy",
        "",
        "Objective over all trials (quartiles), the fraction of trials reaching the "
        "threshold, trial 0 (defaults) and the best trial on the selection seeds, then the "
        "best retrained on the evaluation seeds (mean and standard deviation).",
        "",
        markdown_table(
            data["strategies"], list(data["strategies"][0]) if data["strategies"] else []
        ),
        "",
        "## Expected best of k trials",
        "",
        "Dodge et al. (2019)'s unbiased estimate from each study's trials; seconds = k x "
        "the mean seconds of a trial. Per-study details: studies/<name>/report.md.",
        "",
        "![every trial, the retrained best, and the expected best of k](budget.png)",
        "",
        "Left: every trial's objective on the selection seeds (the defaults ringed, failed "
        "or pruned trials counted on the top edge) and the best retrained on the evaluation "
        "seeds (diamond, ± sd); middle and right: the expected best of k trials against k "
        "and against the training seconds k trials cost.",
        "",
        markdown_table(curve_table, ["strategy", "trials", "expected_best", "seconds"]),
        "",
    ]
    return "\n".join(lines)
