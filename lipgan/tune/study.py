"""One strategy's tuning study: trials drawn from its space, trained through an executor.

``setup`` checks the options, claims the output folder and saves the plan (tune.json);
``resume_setup`` reads it back. ``run_tune`` opens the Optuna study kept in the folder
(journal-file storage, study.journal), asks for the trials still to run, trains each
trial's selection seeds as ``TrialJob``s through the executor, tells the study each
trial's objective as soon as its runs end, and writes the outputs (``outputs``).

- Trial k is draw k: trial 0 is the strategy's defaults (``enqueue_trial``); with the
  random sampler every later draw comes from ``StudySpace.draw(seed, k)``, enqueued, so
  the shared knobs of draw k are the same for every strategy and a resumed study draws
  what an uninterrupted one would. With TPE (``--sampler tpe``) Optuna picks draws 1..N-1
  from the trials so far.
- The objective is the data family's headline metric (W1, Fréchet, JS-4: the compare's
  ``quality_key``) at the end of each run, averaged over the selection seeds; lower is
  better. A run that diverges or fails makes its trial FAIL.
- ``--prune``: a trial's first selection seed reports its metric at every log step to
  Optuna's successive-halving pruner; a pruned trial stops there (its other seeds are not
  trained) and is recorded PRUNED.
- A kill loses at most the running trials: on resume a trial the journal still holds as
  RUNNING is recorded FAIL (its process is gone) and its draw is asked again; its runs
  continue from their checkpoints, finished runs are reused.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import signal
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan import engine, runs
from lipgan.compare.entry import Display, QuietDisplay
from lipgan.compare.examine import quality_key, shared_threshold
from lipgan.config import TrainConfig, load_toml, replace, validate
from lipgan.errors import ConfigError, LipganError
from lipgan.executors import (
    Event,
    Executor,
    LocalProcessExecutor,
    ShouldStop,
    executor_session,
    executor_slots,
    threads_per_run,
)
from lipgan.runio import RunFolder, atomic_write_text, default_folder
from lipgan.tune.space import (
    ADAM_ONLY,
    Choice,
    IntRange,
    StudySpace,
    load_space_file,
    parse_range,
    space_to_toml,
    study_space,
)

SAMPLERS = ("random", "tpe")
PLAN_FILE = "tune.json"
JOURNAL_FILE = "study.journal"
OUTCOMES_FILE = "outcomes.json"
STUDY_NAME = "lipgan"
FINAL_RUNS = ("ok", "diverged")
"""Run outcomes a resume reuses; 'failed' and 'interrupted' runs are trained again."""


def require_optuna() -> Any:
    """The optuna module, or a one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "tuning needs Optuna, which is not installed; install it with: "
            "pip install 'lipgan[tune]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


# --- what a study runs ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrialJob:
    """One selection seed of one trial, trained into its own run folder (the executor's
    ``Job``)."""

    draw: int
    seed: int
    config: TrainConfig
    """Validated and resolved; ``config.out`` is the run folder."""
    resume: bool = False
    tensorboard_dir: Path | None = None

    @property
    def name(self) -> str:
        return trial_run_name(self.draw, self.seed)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


def trial_run_name(draw: int, seed: int) -> str:
    """'t003__s1': trial (draw) 3 on selection seed 1, a folder under ``<out>/runs``."""
    return f"t{draw:03d}__s{seed}"


@dataclass
class TuneSetup:
    """A validated study: the base config, the strategy's space, seeds and budget."""

    base: TrainConfig
    """Validated, with the strategy and the trial budget (iters) set."""
    family: str
    space: StudySpace
    defaults: dict[str, Any]
    """Trial 0: the strategy's resolved defaults for every parameter of the space."""
    out: Path
    trials: int
    seeds: list[int]
    """The selection seeds every trial trains on."""
    study_seed: int = 0
    """Seeds the draws: the same seed gives the same trials."""
    sampler: str = "random"
    prune: bool = False
    parallel: int = 1
    threads: int | None = None
    threshold: float | None = None
    command: str = ""

    @property
    def constraint(self) -> str:
        return self.base.constraint

    @property
    def adam(self) -> bool:
        return "beta1" in self.defaults or not any(k in self.space.shared for k in ADAM_ONLY)

    def ranges(self) -> dict[str, Any]:
        """The ranges the study suggests from (Adam's betas only for Adam strategies).

        A choice that misses trial 0's default (a --space file's) gets it added: Optuna
        records a categorical value only when it is one of the choices."""
        ranges = {}
        for name, r in self.space.ranges().items():
            if name in ADAM_ONLY and not self.adam:
                continue
            default = self.defaults.get(name)
            if isinstance(r, Choice) and default is not None and not r.contains(default):
                r = Choice((*r.options, default))
            ranges[name] = r
        return ranges

    def values_for(self, draw: int) -> dict[str, Any] | None:
        """Draw ``draw``'s values; None where the TPE sampler chooses them."""
        if draw == 0:
            return dict(self.defaults)
        if self.sampler != "random":
            return None
        ranges = self.ranges()
        return {n: v for n, v in self.space.draw(self.study_seed, draw).items() if n in ranges}


def setup(
    base: TrainConfig,
    out: Path | None,
    *,
    trials: int,
    seeds: list[int],
    sampler: str = "random",
    prune: bool = False,
    space_file: Path | None = None,
    parallel: int = 1,
    threads: int | None = None,
    threshold: float | None = None,
    overwrite: bool = False,
    command: str = "",
) -> TuneSetup:
    """Check the options, claim the output folder and save the plan; nothing trains yet.

    ``base`` is validated; its ``constraint`` is the strategy tuned and its ``seed`` the
    study's seed (``--seed``).
    """
    require_optuna()
    family = datasets.load_for(base).family
    base = replace(base, iters=engine.resolve_iters(base, family), out=None)
    overrides = load_space_file(space_file) if space_file is not None else None
    space = _space(base, family, overrides)
    defaults = _defaults(base, family, space)
    tune = TuneSetup(
        base, family, space, defaults, Path("."), trials, list(seeds), base.seed, sampler,
        prune, parallel, threads, threshold, command,
    )  # fmt: skip
    _check(tune)
    tune.out = Path(out) if out is not None else default_out(base)
    claim(tune.out, overwrite, (PLAN_FILE, JOURNAL_FILE, "runs"))
    save_plan(tune)
    return tune


def default_out(config: TrainConfig) -> Path:
    return default_folder("reports", "tune-" + config.constraint.replace("+", "-"), config.data,
                          config.seed)  # fmt: skip


def _space(base: TrainConfig, family: str, overrides: Any) -> StudySpace:
    parts = {
        info.name: (info.factory, info.defaults_for(family))
        for info in registry.parse(base.constraint)
    }
    skip = ("n_critic",) if base.schedule == "one-step" else ()
    return study_space(parts, family, overrides, skip=skip)


def _defaults(base: TrainConfig, family: str, space: StudySpace) -> dict[str, Any]:
    """Every space parameter's value in the strategy's resolved default config."""
    resolved = engine.resolve(base, family)
    values: dict[str, Any] = {}
    for name in space.ranges():
        if name in ADAM_ONLY:
            if resolved.betas is not None:
                values[name] = resolved.betas[ADAM_ONLY.index(name)]
        elif "." in name:
            values[name] = resolved.constraint_options[name]
        else:
            values[name] = getattr(resolved, name)
    ranges = space.ranges()
    for name, value in values.items():  # 1.0 in constraint_options is the int 1 of a range
        if isinstance(ranges[name], IntRange) and float(value).is_integer():
            values[name] = int(value)
        elif isinstance(ranges[name], Choice):
            values[name] = next((o for o in ranges[name].options if o == value), value)
    return values


def _check(tune: TuneSetup) -> None:
    if tune.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {tune.trials}")
    if tune.sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {tune.sampler!r} is not one of: {', '.join(SAMPLERS)}")
    if not tune.seeds:
        raise ConfigError("--seeds must name at least one selection seed")
    if tune.parallel < 1:
        raise ConfigError(f"--jobs must be >= 1, got {tune.parallel}")
    threads_per_run(tune.parallel, tune.threads)
    if tune.threshold is not None and not (math.isfinite(tune.threshold) and tune.threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {tune.threshold:g}")
    for draw in range(min(tune.trials, 2)):  # a --space that breaks a config fails now
        values = tune.values_for(draw)
        if values is not None:
            config = trial_config(tune, values, tune.seeds[0], Path("."), draw)
            validate(config)
            engine.resolve(config, tune.family)


def claim(out: Path, overwrite: bool, markers: tuple[str, ...]) -> None:
    """Make ``out`` an empty folder; --overwrite only replaces a folder lipgan wrote."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {out} already exists and is not empty; pass --overwrite to "
                "replace it, --resume to continue it, or choose another --out"
            )
        if not any((out / marker).exists() for marker in markers):
            raise ConfigError(
                f"--overwrite refused: {out} is not a lipgan tuning folder (no "
                f"{' or '.join(markers)}); choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def trial_config(
    tune: TuneSetup, values: dict[str, Any], seed: int, out: Path, draw: int
) -> TrainConfig:
    """One run of a trial: the base with the trial's values, on ``seed``."""
    changes: dict[str, Any] = {}
    options = dict(tune.base.constraint_options)
    for name, value in values.items():
        if "." in name:
            options[name] = float(value)
        elif name not in ADAM_ONLY:
            changes[name] = value
    if "beta1" in values and "beta2" in values:
        changes["betas"] = (values["beta1"], values["beta2"])
    return replace(
        tune.base, **changes, constraint_options=options, seed=seed,
        out=str(out / "runs" / trial_run_name(draw, seed)),
    )  # fmt: skip


# --- the saved plan and --resume -------------------------------------------------------------


def save_plan(tune: TuneSetup) -> None:
    data = {
        "base": tune.base.to_dict(),
        "family": tune.family,
        "space": space_to_toml({"shared": tune.space.shared, "strategy": tune.space.strategy}),
        "defaults": tune.defaults,
        "trials": tune.trials,
        "seeds": tune.seeds,
        "study_seed": tune.study_seed,
        "sampler": tune.sampler,
        "prune": tune.prune,
        "parallel": tune.parallel,
        "threads": tune.threads,
        "threshold": tune.threshold,
        "command": tune.command,
    }
    atomic_write_text(tune.out / PLAN_FILE, json.dumps(data, indent=2) + "\n")


def resume_setup(out: Path, parallel: int | None = None, threads: int | None = None) -> TuneSetup:
    """The study saved in ``out``; only ``parallel`` (--jobs) and ``threads`` may change."""
    path = out / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"cannot resume {out}: no {PLAN_FILE} there (not a tuning folder)")
    try:
        saved = json.loads(path.read_text("utf-8"))
        base = TrainConfig.from_dict(saved.pop("base"), source=str(path))
        space = {
            section: {n: parse_range(r, f"{path} {section}.{n}") for n, r in ranges.items()}
            for section, ranges in saved.pop("space").items()
        }
        tune = TuneSetup(
            base, saved["family"], StudySpace(space["shared"], space["strategy"]),
            saved["defaults"], out, saved["trials"], saved["seeds"], saved["study_seed"],
            saved["sampler"], saved["prune"],
            parallel if parallel is not None else saved["parallel"],
            threads if threads is not None else saved["threads"], saved["threshold"],
            saved["command"],
        )  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume {out}: {path} is unreadable ({exc})") from None
    _check(tune)
    return tune


# --- running the study ---------------------------------------------------------------------------


def executor_for(tune: TuneSetup) -> Executor:
    """A study's executor when the caller gives none: local processes with the study's
    --jobs and --threads. ``lipgan tune --executor`` builds its own (``from_options``)."""
    return LocalProcessExecutor(tune.parallel, tune.threads)


TPE_BATCH = 4
"""Trials asked at once with TPE on an executor of unbounded slots (a Slurm queue): TPE
learns from the trials finished before each batch, so asking all at once would make it a
random search."""


def trials_at_once(tune: TuneSetup, executor: Executor, pending: int) -> int:
    """How many trials are asked (and trained) together: one when pruning (a trial's first
    seed decides whether the rest train); else as many as the executor's slots hold, with
    every selection seed of a trial in the same batch; all pending trials (random) or
    ``TPE_BATCH`` (TPE) where the slots are unbounded."""
    if tune.prune:
        return 1
    slots = executor_slots(executor)
    if slots is None:
        return max(1, pending if tune.sampler == "random" else TPE_BATCH)
    return max(1, slots // len(tune.seeds))


def open_study(tune: TuneSetup) -> Any:
    """The study in ``tune.out`` (created on first use), with its sampler and pruner."""
    optuna = require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tune.out / JOURNAL_FILE)))
    if tune.sampler == "tpe":
        sampler = optuna.samplers.TPESampler(seed=tune.study_seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=tune.study_seed)
    pruner = optuna.pruners.NopPruner()
    if tune.prune:  # rungs at min_resource * 3^r generator iterations
        iters, log_every = int(tune.base.iters or 1), tune.base.log_every
        min_resource = max(log_every, iters // 10 // log_every * log_every)
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource)
    return optuna.create_study(
        study_name=STUDY_NAME, storage=storage, sampler=sampler, pruner=pruner,
        direction="minimize", load_if_exists=True,
    )  # fmt: skip


@dataclass
class _Asked:
    """A trial the study asked for and its runs."""

    draw: int
    trial: Any
    values: dict[str, Any]
    jobs: list[TrialJob]
    outcomes: dict[str, str] = field(default_factory=dict)
    pruned: bool = False


def run_tune(
    tune: TuneSetup,
    display: Display | None = None,
    should_stop: ShouldStop | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run the trials still to run, then write the outputs; returns results.json's data."""
    optuna = require_optuna()
    display = display or QuietDisplay()
    study = open_study(tune)
    _close_stale(study, optuna)
    pending = [k for k in range(tune.trials) if k not in latest_trials(study, optuna)]
    executor = executor or executor_for(tune)
    outcomes = _read_outcomes(tune.out)
    totals = {trial_run_name(k, s): int(tune.base.iters or 0) for k in pending for s in tune.seeds}
    display.start(
        f"tune {tune.constraint} on {tune.base.data}: {tune.trials} trials x seeds "
        f"{','.join(map(str, tune.seeds))}, {tune.base.iters} iterations each, {tune.sampler} "
        f"sampler{', pruned' if tune.prune else ''}: {len(pending)} trials to run -> {tune.out}",
        totals,
    )
    user_stopped: list[int] = []

    def stop() -> int | None:
        signum = should_stop() if should_stop is not None else None
        if signum is not None:
            user_stopped.append(signum)
        return signum

    try:
        with executor_session(executor):
            batch = trials_at_once(tune, executor, len(pending))
            for start in range(0, len(pending), batch):
                asked = [_ask(tune, study, k, outcomes) for k in pending[start : start + batch]]
                asked = [item for item in asked if item is not None]
                _run(tune, study, optuna, asked, executor, display, stop, outcomes)
                if user_stopped:
                    raise engine.Interrupted("stopped", exit_code=128 + user_stopped[0])
    except engine.Interrupted as exc:
        raise engine.Interrupted(
            "tune stopped; finished trials are kept in the study. Continue with: "
            f"lipgan tune --resume {shlex.quote(str(tune.out))}",
            exit_code=exc.exit_code,
        ) from None
    finally:
        display.stop()
    from lipgan.tune.outputs import write_outputs

    data = write_outputs(tune, study)
    for line in data["summary"]:
        display.note(line)
    return data


def latest_trials(study: Any, optuna: Any) -> dict[int, Any]:
    """Each draw's last finished trial (COMPLETE, PRUNED or FAIL), by draw."""
    finished = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    latest: dict[int, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        # a trial told by this module has a status; a stale one (closed below) has none
        if trial.state in finished and "status" in trial.user_attrs:
            latest[trial.user_attrs["draw"]] = trial
    return latest


def _close_stale(study: Any, optuna: Any) -> None:
    """Trials a dead process left RUNNING (or enqueued, not asked) are recorded FAIL,
    without a status, so their draws are asked again."""
    state = optuna.trial.TrialState
    for _ in study.get_trials(deepcopy=False, states=(state.WAITING,)):
        study.tell(study.ask(), state=state.FAIL)  # pops it: no later ask takes its values
    for trial in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        study.tell(trial.number, state=state.FAIL)


def _ask(tune: TuneSetup, study: Any, draw: int, outcomes: dict[str, Any]) -> _Asked | None:
    """Ask the study for trial ``draw`` and prepare its runs; None (the trial recorded as
    FAIL, status 'invalid') when its values make a config lipgan refuses."""
    values = tune.values_for(draw)
    if values is not None:
        study.enqueue_trial(values, user_attrs={"draw": draw})
    trial = study.ask()
    trial.set_user_attr("draw", draw)
    with warnings.catch_warnings():  # a default outside a --space range is still trial 0
        warnings.filterwarnings("ignore", message="Fixed parameter")
        values = {name: r.suggest(trial, name) for name, r in tune.ranges().items()}
    try:
        jobs = [_job(tune, draw, seed, values, outcomes) for seed in tune.seeds]
    except LipganError as exc:  # a combination the strategy or the model refuses
        trial.set_user_attr("status", "invalid")
        trial.set_user_attr("message", str(exc))
        study.tell(trial, state=require_optuna().trial.TrialState.FAIL)
        return None
    return _Asked(draw, trial, values, jobs)


def _job(
    tune: TuneSetup, draw: int, seed: int, values: dict[str, Any], outcomes: dict[str, Any]
) -> TrialJob:
    """A run of the trial: new, continued from its checkpoint, or (finished) reused."""
    config = trial_config(tune, values, seed, tune.out, draw)
    run_dir = Path(config.out or "")
    folder = RunFolder(run_dir)
    if folder.config.is_file() and not _same_values(load_toml(folder.config), config, values):
        shutil.rmtree(run_dir)  # an earlier ask of this draw (TPE) chose other values
        outcomes.pop(trial_run_name(draw, seed), None)
    if folder.last.is_file():
        records = folder.read_metrics()
        if records and records[-1].get("step", 0) >= (config.iters or 0):
            # killed after its final checkpoint, before summary.json: it trained to the end
            outcomes[trial_run_name(draw, seed)] = "ok"
            return TrialJob(draw, seed, load_toml(folder.config))
        return TrialJob(draw, seed, runs.prepare_resume(run_dir, {}).config, resume=True)
    if run_dir.exists():  # started, no checkpoint yet: ours to restart
        shutil.rmtree(run_dir)
    return TrialJob(draw, seed, runs.prepare(config).config)


def _same_values(saved: TrainConfig, planned: TrainConfig, values: dict[str, Any]) -> bool:
    def value(config: TrainConfig, name: str) -> Any:
        if "." in name:
            return config.constraint_options.get(name)
        if name in ADAM_ONLY:
            return None if config.betas is None else config.betas[ADAM_ONLY.index(name)]
        return getattr(config, name)

    return all(value(saved, n) == value(planned, n) for n in values)


def _run(
    tune: TuneSetup,
    study: Any,
    optuna: Any,
    asked: list[_Asked],
    executor: Executor,
    display: Display,
    stop: Callable[[], int | None],
    outcomes: dict[str, Any],
) -> None:
    """Train the asked trials' runs; tell each trial as soon as its runs have ended."""
    by_job = {job.name: item for item in asked for job in item.jobs}

    def on_event(event: Event) -> None:
        item = by_job[event.name]
        if tune.prune and event.metrics and event.name == item.jobs[0].name:
            key = quality_key([event.metrics])
            if key is not None and event.metrics.get(key) is not None:
                item.trial.report(float(event.metrics[key]), event.iteration)
                item.pruned = item.pruned or item.trial.should_prune()
        if event.outcome is not None and event.outcome.status != "interrupted":
            item.outcomes[event.name] = event.outcome.status
            if event.outcome.status in FINAL_RUNS:
                outcomes[event.name] = event.outcome.status
                atomic_write_text(tune.out / OUTCOMES_FILE, json.dumps(outcomes, indent=2) + "\n")
            if len(item.outcomes) == len(item.jobs) and not item.pruned:
                _tell(study, optuna, item)
        display(event)

    for item in asked:  # runs that ended before a kill are reused as they are
        for job in item.jobs:
            if outcomes.get(job.name) in FINAL_RUNS:
                item.outcomes[job.name] = outcomes[job.name]
    todo = [job for item in asked for job in item.jobs if job.name not in item.outcomes]
    for item in asked:
        if len(item.outcomes) == len(item.jobs):
            _tell(study, optuna, item)
    if not tune.prune:
        executor.run(todo, on_event, stop)
        return
    if not asked:  # its values made a config lipgan refuses: recorded, nothing to train
        return
    (item,) = asked
    first, rest = todo[:1], todo[1:]
    if first:
        try:
            executor.run(
                first, on_event, lambda: stop() or (signal.SIGINT if item.pruned else None)
            )
        except engine.Interrupted:
            if not item.pruned:
                raise
    if item.pruned:
        seconds = _seconds(item.jobs[0].run_dir)
        item.trial.set_user_attr("seconds", seconds)
        item.trial.set_user_attr("status", "pruned")
        study.tell(item.trial, state=optuna.trial.TrialState.PRUNED)
        return
    executor.run(rest, on_event, stop)


def _tell(study: Any, optuna: Any, item: _Asked) -> None:
    """The trial's objective: the headline metric's final value, mean over its seeds."""
    values, seconds = [], 0.0
    metric = None
    for job in item.jobs:
        records = RunFolder(job.run_dir).read_metrics() if job.run_dir.is_dir() else []
        metric = metric or quality_key(records)
        finals = [r[metric] for r in records if metric and r.get(metric) is not None]
        values.append(finals[-1] if finals else None)
        seconds += _seconds(job.run_dir) or 0.0
    statuses = [item.outcomes[job.name] for job in item.jobs]
    item.trial.set_user_attr("seed_values", values)
    item.trial.set_user_attr("seconds", round(seconds, 3))
    item.trial.set_user_attr("metric", metric)
    ok = all(s == "ok" for s in statuses) and all(
        v is not None and math.isfinite(v) for v in values
    )
    item.trial.set_user_attr("status", "ok" if ok else next(s for s in statuses if s != "ok"))
    if ok:
        study.tell(item.trial, sum(values) / len(values))
    else:
        study.tell(item.trial, state=optuna.trial.TrialState.FAIL)


def _seconds(run_dir: Path) -> float | None:
    """A run's training seconds so far (its summary, else its last timing record)."""
    folder = RunFolder(run_dir)
    if folder.summary.is_file():
        return float(json.loads(folder.summary.read_text("utf-8")).get("seconds", 0.0))
    timing = folder.read_timing()  # the run folder's own reader: skips a torn last line
    return float(timing[-1]["seconds"]) if timing else None


def _read_outcomes(out: Path) -> dict[str, Any]:
    path = out / OUTCOMES_FILE
    try:
        return json.loads(path.read_text("utf-8")) if path.is_file() else {}
    except ValueError:
        return {}  # written atomically: only a hand edit breaks it; train those runs again


def trial_runs(tune: TuneSetup) -> list[Path]:
    """Every trial run folder on disk (for the shared threshold)."""
    return sorted(p for p in (tune.out / "runs").glob("t*__s*") if p.is_dir())


def threshold(tune: TuneSetup) -> float | None:
    """The user's --threshold, else 2x the headline metric's mean noise floor."""
    return shared_threshold(trial_runs(tune), tune.threshold)
