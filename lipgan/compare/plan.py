"""What a compare runs: entries (strategy and clip value) times seeds, and its folder.

``plan`` turns ``--constraints`` and ``--clip-values`` into entries, ``parse_seeds`` turns
``--seeds`` into seeds; ``setup`` checks the options, claims the output folder, saves the
plan there (plan.json, so ``--resume DIR`` needs nothing else) and prepares one job per
(entry, seed) before any work starts. ``resume_setup`` rebuilds the setup from plan.json.
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
from lipgan.config import TrainConfig, fold_shorthands, replace
from lipgan.errors import ConfigError
from lipgan.executors import threads_per_run
from lipgan.runio import RunFolder, atomic_write_text, default_folder

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
            return list(range(first, first + count))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds {text!r} is neither a count (5) nor a list of seeds (0,3,7)"
        ) from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must list distinct seeds >= 0, e.g. 0,3,7")
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
    _claim(compare.out, overwrite)
    if compare.critic_only:
        data = datasets.load_for(base)
        for entry in entries:  # resolve now so a bad combination fails before any work
            engine.resolve(entry_config(base, entry, base.seed, compare.out), data.family)
        return compare
    for seed in compare.seeds:  # seed-major: a stopped compare has every strategy's first seeds
        for entry in entries:
            start = (configs or {}).get(entry.name, base)
            prepared = runs.prepare(entry_config(start, entry, seed, compare.out))
            compare.jobs.append(_job(compare, entry, seed, prepared.config, resume=False))
    atomic_write_text(compare.out / PLAN_FILE, json.dumps(_plan_data(compare), indent=2) + "\n")
    return compare


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
        out=str(out / "runs" / run_name(entry, seed)),
    )


def _parts(entry: Entry) -> set[str]:
    return {part.strip() for part in entry.constraint.split("+")}


def _options_for(options: dict[str, float], entry: Entry) -> dict[str, float]:
    """The shared options that belong to ``entry``'s strategies."""
    return {k: v for k, v in options.items() if k.partition(".")[0] in _parts(entry)}


def _claim(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
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
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


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
    """
    path = out / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"cannot resume {out}: no {PLAN_FILE} there (not a compare folder)")
    try:
        saved = json.loads(path.read_text("utf-8"))
        base = TrainConfig.from_dict(saved.pop("base"), source=str(path))
        entries = [Entry(**e) for e in saved.pop("entries")]
        planned = {
            name: TrainConfig.from_dict(config, source=str(path))
            for name, config in saved.pop("runs", {}).items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot resume {out}: {path} is unreadable ({exc})") from None
    if parallel is not None:
        saved["parallel"] = parallel
    if threads is not None:
        saved["threads"] = threads
    compare = CompareSetup(base, entries, out, **saved)
    _check(compare)
    compare.finished = _read_outcomes(out)
    for seed in compare.seeds:
        for entry in entries:
            name = run_name(entry, seed)
            if compare.finished.get(name, {}).get("status") in FINAL:
                continue
            if RunFolder(compare.runs_dir / name).summary.is_file():  # ended, not yet recorded
                compare.finished[name] = {"status": "ok", "peak_mib": None, "message": ""}
                continue
            compare.jobs.append(_resume_job(compare, entry, seed, planned.get(name)))
    return compare


FINAL = ("ok", "diverged")
"""Outcomes reused by --resume; 'failed' and 'interrupted' runs are trained again."""


def _read_outcomes(out: Path) -> dict[str, dict[str, Any]]:
    path = out / OUTCOMES_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text("utf-8"))
    except ValueError:
        return {}  # written atomically, so only a hand edit breaks it: train the runs again


def _resume_job(compare: CompareSetup, entry: Entry, seed: int, planned: TrainConfig | None) -> Job:
    # plan.json from before the resolved configs were saved: rebuild from the base
    config = planned or entry_config(compare.base, entry, seed, compare.out)
    run_dir = Path(config.out)
    folder = RunFolder(run_dir)
    if folder.last.is_file():
        prepared = runs.prepare_resume(run_dir, {})
        return _job(compare, entry, seed, prepared.config, resume=True)
    if run_dir.exists():  # started but no checkpoint yet: ours to restart
        shutil.rmtree(run_dir)
    prepared = runs.prepare(config)
    return _job(compare, entry, seed, prepared.config, resume=False)


def write_outcomes(out: Path, outcomes: dict[str, dict[str, Any]]) -> None:
    """Each run's outcome, rewritten as runs end, so --resume knows what finished."""
    atomic_write_text(out / OUTCOMES_FILE, json.dumps(outcomes, indent=2) + "\n")
