"""What a compare runs: entries (strategy and clip value) times seeds, and its folder.

``plan`` turns ``--constraints`` and ``--clip-values`` into entries, ``parse_seeds`` turns
``--seeds`` into seeds; ``setup`` checks the options and resolves one job per (entry, seed)
before it creates anything, then claims and locks the output folder and saves the plan
there (plan.json, so ``--resume DIR`` needs nothing else). ``resume_setup`` locks the
folder and rebuilds the setup from plan.json, checking that every run folder still holds
the run the plan says. Paths inside a compare folder are read relative to it, so a
compare resumes from any working directory.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan import engine, runs
from lipgan.config import MAX_SEED, TrainConfig, fold_shorthands, replace
from lipgan.errors import CheckpointError, ConfigError
from lipgan.executors import check_identity, threads_per_run
from lipgan.runio import (
    LOCK_FILE,
    FolderLock,
    RunFolder,
    atomic_write_text,
    check_writable,
    default_folder,
    load_checkpoint,
)

DEFAULT_CONSTRAINTS = "clip,gp,gp-one-sided,fd,none"


DEFAULT_CLIP_VALUES = "0.01"
"""The paper's c. Its Fig. 1 bounds (0.1,0.01,0.001) are one option away; by default a
seeded compare does not pay 3x for clipping (7 strategies x seeds instead of 5)."""


# --- what to run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One strategy in the comparison: a run name and what it trains with."""

    name: str
    """'gp', or 'clip@0.01' for one clipping bound."""
    constraint: str
    clip_value: float | None = None


def plan(constraints: str, clip_values: list[float] | None) -> list[Entry]:
    """The runs for ``--constraints`` and ``--clip-values``.

    A strategy that clips runs once per clip value (``clip@0.1`` ...), so the per-layer
    gradient figure shows the paper's three bounds next to the penalties.
    """
    # 'sn + gp' and 'sn+gp' are one strategy, named without the spaces
    specs = ["+".join(p.strip() for p in s.split("+")) for s in constraints.split(",")]
    if not any(specs) or any(not p for s in specs for p in s.split("+")):
        raise ConfigError(
            f"--constraints {constraints!r} has an empty name; write e.g. 'clip,gp,none'"
        )
    entries: list[Entry] = []
    for spec in specs:
        infos = registry.parse(spec)  # unknown names raise with the list of valid ones
        clips = any("c" in info.params for info in infos)
        if clips and clip_values:
            for c in clip_values:
                if not (math.isfinite(c) and c > 0):
                    raise ConfigError(f"--clip-values must all be > 0, got {c:g}")
                entries.append(Entry(f"{spec}@{c:g}", spec, c))
        else:
            entries.append(Entry(spec, spec))
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"--constraints lists {duplicate!r} twice; name each strategy once")
    return entries


def parse_seeds(text: str | None, first: int = 0) -> list[int]:
    """``--seeds``: 'N' is N seeds from ``first`` (--seed), '0,3,7' lists them."""
    if text is None or not text.strip():
        return [first]
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ConfigError(f"--seeds must be >= 1, got {count}")
            if first + count - 1 > MAX_SEED:  # before the list: --seeds 10**12 is no list
                raise ConfigError(
                    f"--seeds {count} from --seed {first} goes past the largest seed "
                    f"{MAX_SEED} (the bound of --seed); ask for fewer seeds or a lower --seed"
                )
            return list(range(first, first + count))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds {text!r} is neither a count (5) nor a list of seeds (0,3,7)"
        ) from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must list distinct seeds >= 0, e.g. 0,3,7")
    if max(seeds) > MAX_SEED:
        raise ConfigError(
            f"--seeds: seed {max(seeds)} is past the largest seed {MAX_SEED} (the bound of "
            "--seed); choose seeds between 0 and it"
        )
    return seeds


@dataclass(frozen=True)
class Job:
    """One run of a compare: one entry on one seed, trained into its own run folder.

    Self-contained and picklable, so any executor (a local process, a cluster task) can
    run it given a shared filesystem.
    """

    entry: Entry
    seed: int
    config: TrainConfig
    """Validated and resolved; ``config.out`` is the run folder."""
    resume: bool = False
    """Continue from the folder's checkpoints/last.pt."""
    tensorboard_dir: Path | None = None

    @property
    def name(self) -> str:
        return run_name(self.entry, self.seed)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out)


def run_name(entry: Entry, seed: int) -> str:
    """The run's folder name under ``<out>/runs``: 'clip@0.01__s3'."""
    return f"{entry.name}__s{seed}"


@dataclass
class CompareSetup:
    """A validated comparison: the shared config, entries x seeds, and where it all goes."""

    base: TrainConfig
    """Validated; its constraint, clip value and seed are replaced per job."""
    entries: list[Entry]
    out: Path
    seeds: list[int] = field(default_factory=lambda: [0])
    parallel: int = 1
    """--jobs: runs trained at the same time."""
    threshold: float | None = None
    """Quality threshold for 'steps/seconds to threshold' (None: 2x the quality metric's
    noise floor)."""
    baseline: str | None = None
    """The entry every other is compared with (None: gp when present, else the first)."""
    critic_only: bool = False
    noise_std: float = 1.0
    """Critic-only: std of the Gaussian noise added to real data for the fixed generator."""
    tensorboard: bool = False
    command: str = ""
    threads: int | None = None
    """torch CPU threads per run (None: the cores / --jobs)."""
    jobs: list[Job] = field(default_factory=list)
    """The runs to train, seed-major; empty in critic-only mode."""
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Resume: outcomes of runs that already ended (reused, not trained again)."""
    notes: list[str] = field(default_factory=list)
    """Lines worth showing before the runs start (a run trained again, and why)."""
    lock: FolderLock | None = None
    """Held from setup until ``release``: no second compare works in the same folder."""

    def release(self) -> None:
        """Let another compare use the folder (also done when the process ends)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"

    def baseline_name(self) -> str:
        names = [e.name for e in self.entries]
        return self.baseline or ("gp" if "gp" in names else names[0])


PLAN_FILE = "plan.json"
OUTCOMES_FILE = "outcomes.json"


def default_out(config: TrainConfig, critic_only: bool = False) -> Path:
    kind = "critic-only" if critic_only else "compare"
    return default_folder("reports", kind, config.data, config.seed)


def setup(
    base: TrainConfig,
    entries: list[Entry],
    out: Path | None,
    *,
    overwrite: bool = False,
    configs: Mapping[str, TrainConfig] | None = None,
    **options: Any,
) -> CompareSetup:
    """Check the options, claim the output folder, save the plan and prepare every run.

    ``options`` are CompareSetup's fields (seeds, parallel, threshold, baseline,
    critic_only, noise_std, tensorboard, command, threads). ``configs`` gives an entry its
    own config in place of ``base`` (``compare --tune``: each strategy's best).
    """
    if base.iters is None:  # the family's default budget, shared by every run
        family = datasets.load_for(base).family
        iters = 1000 if options.get("critic_only") else engine.resolve_iters(base, family)
        base = replace(base, iters=iters)
    compare = CompareSetup(base, entries, Path("."), **options)
    _check(compare)
    compare.out = Path(out) if out is not None else default_out(base, compare.critic_only)
    _check_out(compare.out, overwrite)
    _resolve_jobs(compare, configs or {})  # before anything is created: a refused value
    compare.lock = _claim(compare.out, overwrite)  # leaves no folder behind
    if compare.jobs:
        atomic_write_text(compare.out / PLAN_FILE, json.dumps(_plan_data(compare), indent=2) + "\n")
    return compare


def _resolve_jobs(compare: CompareSetup, configs: Mapping[str, TrainConfig]) -> None:
    """Every run resolved, so the strategies' own checks (and whether each fits the
    critic) have run; critic-only fits critics, no jobs."""
    base = compare.base
    if compare.critic_only:
        data = datasets.load_for(base)
        for entry in compare.entries:
            engine.resolve(entry_config(base, entry, base.seed, compare.out), data.family)
        return
    for seed in compare.seeds:  # seed-major: a stopped compare has every strategy's first seeds
        for entry in compare.entries:
            start = configs.get(entry.name, base)
            config = runs.resolve_run(entry_config(start, entry, seed, compare.out))
            compare.jobs.append(_job(compare, entry, seed, config, resume=False))


def _check(compare: CompareSetup) -> None:
    if compare.parallel < 1:
        raise ConfigError(f"--jobs must be >= 1, got {compare.parallel}")
    if compare.threads is not None and compare.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {compare.threads}")
    if not compare.critic_only:
        threads_per_run(compare.parallel, compare.threads)
    threshold = compare.threshold
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    if not (math.isfinite(compare.noise_std) and compare.noise_std > 0):
        raise ConfigError(f"--noise-std must be > 0, got {compare.noise_std:g}")
    options = compare.base.constraint_options
    parts = {part for e in compare.entries for part in _parts(e)}
    unused = [k for k in options if k.partition(".")[0] not in parts]
    if unused:
        raise ConfigError(
            f"strategy option {unused[0]!r} applies to none of the compared strategies; "
            "drop it from the config or add its strategy to --constraints"
        )
    bounds = [k for k in options if k.endswith(".c")]
    if bounds:
        raise ConfigError(
            f"{bounds[0]!r} in the config: a compare takes its clipping bounds from "
            "--clip-values; drop it from the config"
        )
    for entry in compare.entries:  # each strategy's own options, checked against it
        registry.resolve_params(entry.constraint, "", options=_options_for(options, entry))
    names = [e.name for e in compare.entries]
    if compare.baseline is not None and compare.baseline not in names:
        raise ConfigError(
            f"--baseline {compare.baseline!r} is not one of the compared runs "
            f"({', '.join(names)}); name one of them"
        )
    if compare.critic_only and len(compare.seeds) > 1:
        raise ConfigError("--critic-only fits one critic per strategy; drop --seeds")
    if compare.tensorboard:
        from lipgan.tensorboard import require_tensorboard

        require_tensorboard()


def _job(compare: CompareSetup, entry: Entry, seed: int, config: TrainConfig, resume: bool):
    name = run_name(entry, seed)
    tensorboard = compare.out / "tensorboard" / name if compare.tensorboard else None
    return Job(entry, seed, config, resume, tensorboard)


def entry_config(base: TrainConfig, entry: Entry, seed: int, out: Path) -> TrainConfig:
    """One run's config: the shared base, the entry's strategy, the base's options for the
    strategies this entry has (a config file's 'gp.weight' reaches gp and gp+sn only)."""
    options = fold_shorthands(entry.constraint, clip_value=entry.clip_value)
    shared = _options_for(base.constraint_options, entry)
    return replace(
        base,
        constraint=entry.constraint,
        constraint_options={**shared, **options},
        seed=seed,
        out=str(run_folder(out, entry, seed)),
    )


def run_folder(out: Path, entry: Entry, seed: int) -> Path:
    """A run's folder: always under the compare folder, as an absolute path (a worker on
    another machine or in another working directory finds the same folder)."""
    return Path(out).absolute() / "runs" / run_name(entry, seed)


def _parts(entry: Entry) -> set[str]:
    return {part.strip() for part in entry.constraint.split("+")}


def _options_for(options: dict[str, float], entry: Entry) -> dict[str, float]:
    """The shared options that belong to ``entry``'s strategies."""
    return {k: v for k, v in options.items() if k.partition(".")[0] in _parts(entry)}


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out that cannot become this compare's folder; creates nothing."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.exists() and _contents(out):
        if not overwrite:
            raise ConfigError(
                f"output folder {out} already exists and is not empty; pass --overwrite to "
                "replace it, --resume to continue it, or choose another --out"
            )
        if not any((out / marker).exists() for marker in ("results.json", "runs", PLAN_FILE)):
            raise ConfigError(
                f"--overwrite refused: {out} is not a lipgan compare folder (no results.json, "
                f"runs/ or {PLAN_FILE}); choose another --out"
            )
    check_writable(out)


def _claim(out: Path, overwrite: bool) -> FolderLock:
    """Create and lock the folder, then (--overwrite) empty it: under the lock, so a
    compare still working there is refused rather than deleted."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out} cannot be created ({exc.strerror or exc})") from None
    lock = FolderLock(out, "compare")
    for path in _contents(out) if overwrite else []:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return lock


def _contents(out: Path) -> list[Path]:
    """What the folder holds besides its lock file."""
    return [path for path in out.iterdir() if path.name != LOCK_FILE]


# --- the saved plan and --resume -------------------------------------------------------------


def _plan_data(compare: CompareSetup) -> dict[str, Any]:
    return {
        "base": compare.base.to_dict(),
        "entries": [asdict(e) for e in compare.entries],
        "seeds": compare.seeds,
        "parallel": compare.parallel,
        "threshold": compare.threshold,
        "baseline": compare.baseline,
        "tensorboard": compare.tensorboard,
        "command": compare.command,
        "threads": compare.threads,
        # each run's resolved config: a resume trains what was planned even if lipgan's
        # defaults changed in between
        "runs": {run_name(job.entry, job.seed): job.config.to_dict() for job in compare.jobs},
    }


def resume_setup(
    out: Path, parallel: int | None = None, threads: int | None = None
) -> CompareSetup:
    """The compare saved in ``out``: finished runs reused, the others resumed or restarted.

    ``parallel`` and ``threads`` may differ from the first invocation; nothing else can.
    Every run folder must hold the run the plan says (its config.toml), else nothing
    starts; a finished run whose checkpoint cannot be read is trained again (deterministic:
    the same numbers), with a note saying so.
    """
    path = out / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"cannot resume {out}: no {PLAN_FILE} there (not a compare folder)")
    lock = FolderLock(out, "compare")
    try:
        compare, planned = _read_plan(out, path, parallel, threads)
        compare.lock = lock
        _check(compare)
        compare.finished = _read_outcomes(out)
        for seed in compare.seeds:
            for entry in compare.entries:
                _resume_run(compare, entry, seed, planned.get(run_name(entry, seed)))
    except BaseException:
        lock.release()
        raise
    return compare


def _read_plan(
    out: Path, path: Path, parallel: int | None, threads: int | None
) -> tuple[CompareSetup, dict[str, TrainConfig]]:
    """plan.json as a CompareSetup (no jobs yet) and each run's planned config; its shape
    is checked, not trusted."""
    try:
        saved = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot resume {out}: {path} is unreadable ({exc})") from None
    problem = _plan_problem(saved)
    if problem is not None:
        raise ConfigError(
            f"cannot resume {out}: {path} is damaged ({problem}); restore it or start the "
            "compare anew"
        )
    base = TrainConfig.from_dict(saved.pop("base"), source=str(path))
    entries = [Entry(**e) for e in saved.pop("entries")]
    planned = {
        name: TrainConfig.from_dict(config, source=str(path))
        for name, config in saved.pop("runs", {}).items()
    }
    if parallel is not None:
        saved["parallel"] = parallel
    if threads is not None:
        saved["threads"] = threads
    return CompareSetup(base, entries, out, **saved), planned


# plan.json's keys and the JSON types each may hold (None: null)
_PLAN_TYPES: dict[str, tuple[type | None, ...]] = {
    "base": (dict,),
    "entries": (list,),
    "seeds": (list,),
    "parallel": (int,),
    "threshold": (int, float, None),
    "baseline": (str, None),
    "tensorboard": (bool,),
    "command": (str,),
    "threads": (int, None),
    "runs": (dict,),
}
_PLAN_REQUIRED = ("base", "entries", "seeds")


def _plan_problem(saved: Any) -> str | None:
    """What is wrong with plan.json's parsed content, or None."""
    if not isinstance(saved, dict):
        return f"a {_json_type(saved)} where an object belongs"
    missing = [key for key in _PLAN_REQUIRED if key not in saved]
    if missing:
        return f"no {missing[0]!r}"
    for key, value in saved.items():
        if key not in _PLAN_TYPES:
            return f"unknown key {key!r}"
        if not _is(value, _PLAN_TYPES[key]):
            return f"{key!r} is a {_json_type(value)}"
    if not saved["entries"]:
        return "'entries' is empty"
    for entry in saved["entries"]:
        if not (
            isinstance(entry, dict)
            and set(entry) <= {"name", "constraint", "clip_value"}
            and _is(entry.get("name"), (str,))
            and _is(entry.get("constraint"), (str,))
            and _is(entry.get("clip_value"), (int, float, None))
        ):
            return f"entry {entry!r} is not {{name, constraint, clip_value}}"
    if not saved["seeds"] or not all(_is(seed, (int,)) and seed >= 0 for seed in saved["seeds"]):
        return f"'seeds' {saved['seeds']!r} is not a list of seeds >= 0"
    if any(not isinstance(v, dict) for v in saved.get("runs", {}).values()):
        return "'runs' holds a value that is not a config"
    return None


def _is(value: Any, types: tuple[type | None, ...]) -> bool:
    if value is None:
        return None in types
    if isinstance(value, bool):  # JSON true is no number
        return bool in types
    return isinstance(value, tuple(t for t in types if t is not None))


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "number")


FINAL = ("ok", "diverged")
"""Outcomes reused by --resume; 'failed' and 'interrupted' runs are trained again."""

STATUSES = ("ok", "diverged", "failed", "interrupted")


def _read_outcomes(out: Path) -> dict[str, dict[str, Any]]:
    path = out / OUTCOMES_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}  # written atomically, so only a hand edit breaks it: train the runs again
    problem = _outcomes_problem(saved)
    if problem is not None:
        raise ConfigError(
            f"cannot resume {out}: {path} is damaged ({problem}); delete it to train every "
            "unfinished run again"
        )
    return saved


def _outcomes_problem(saved: Any) -> str | None:
    if not isinstance(saved, dict):
        return f"a {_json_type(saved)} where an object of runs belongs"
    for name, outcome in saved.items():
        if not isinstance(outcome, dict) or set(outcome) != {"status", "peak_mib", "message"}:
            return f"{name!r} is not {{status, peak_mib, message}}"
        if outcome["status"] not in STATUSES:
            return f"{name!r} has status {outcome['status']!r}, not one of {', '.join(STATUSES)}"
        if not _is(outcome["peak_mib"], (int, float, None)) or not _is(outcome["message"], (str,)):
            return f"{name!r}: peak_mib must be a number or null and message a string"
    return None


def _resume_run(
    compare: CompareSetup, entry: Entry, seed: int, planned: TrainConfig | None
) -> None:
    """Reuse, resume or restart one run, after checking its folder holds it."""
    name = run_name(entry, seed)
    # The folder is the one under this compare folder, whatever plan.json says.
    run_dir = run_folder(compare.out, entry, seed)
    if planned is not None:
        config = replace(planned, out=str(run_dir))
        check_identity(run_dir, config)
    else:  # plan.json from before the resolved configs were saved: rebuild from the base,
        # and ask the folder only for what the entry defines (defaults may have changed)
        config = runs.resolve_run(entry_config(compare.base, entry, seed, compare.out))
        check_identity(run_dir, config, only=("data", "constraint", "constraint_options", "seed"))
    folder = RunFolder(run_dir)
    ended = compare.finished.get(name, {}).get("status") in FINAL or folder.summary.is_file()
    if ended:
        unreadable = _unreadable_checkpoint(folder)
        if unreadable is None:
            if compare.finished.get(name, {}).get("status") not in FINAL:  # ended, unrecorded
                compare.finished[name] = {"status": "ok", "peak_mib": None, "message": ""}
            return
        compare.notes.append(f"{name}: {unreadable}; training it again")
        compare.finished.pop(name, None)
    elif folder.last.is_file():
        prepared = runs.prepare_resume(run_dir, {})
        compare.jobs.append(_job(compare, entry, seed, prepared.config, resume=True))
        return
    if run_dir.exists():  # ours (checked above) and not worth continuing: start it again
        shutil.rmtree(run_dir)
    # resolved again for the checks that depend on this machine (the device)
    config = runs.resolve_run(config)
    compare.jobs.append(_job(compare, entry, seed, config, resume=False))


def _unreadable_checkpoint(folder: RunFolder) -> str | None:
    """Why a finished run's checkpoint cannot give its diagnostics, or None."""
    try:
        load_checkpoint(folder.last)
    except CheckpointError as exc:
        return str(exc).split(";")[0]
    return None


def write_outcomes(out: Path, outcomes: dict[str, dict[str, Any]]) -> None:
    """Each run's outcome, rewritten as runs end, so --resume knows what finished."""
    atomic_write_text(out / OUTCOMES_FILE, json.dumps(outcomes, indent=2) + "\n")
