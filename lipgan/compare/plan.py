"""What a compare runs: the entries (one per strategy and clip value) and the setup.

``plan`` turns ``--constraints`` and ``--clip-values`` into entries; ``setup`` checks the
options, claims the output folder and prepares every run folder before any work starts.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lipgan import constraints as registry
from lipgan import data as datasets
from lipgan import engine, runs
from lipgan.config import TrainConfig, replace
from lipgan.errors import ConfigError

DEFAULT_CONSTRAINTS = "clip,gp,gp-one-sided,fd,none"


DEFAULT_CLIP_VALUES = "0.1,0.01,0.001"


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
    specs = [s.strip() for s in constraints.split(",")]
    if not any(specs) or any(not s for s in specs):
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


@dataclass
class CompareSetup:
    """A validated comparison: the shared config, the runs, and where it all goes."""

    base: TrainConfig
    """Validated; its constraint is replaced per entry."""
    entries: list[Entry]
    out: Path
    jobs: int = 1
    threshold: float | None = None
    """Quality threshold for 'steps/seconds to threshold' (None: 2x the W1 noise floor)."""
    critic_only: bool = False
    noise_std: float = 1.0
    """Critic-only: std of the Gaussian noise added to real data for the fixed generator."""
    tensorboard: bool = False
    command: str = ""
    threads: int | None = None
    """torch CPU threads per run (None: all cores / jobs)."""
    prepared: dict[str, runs.PreparedRun] = field(default_factory=dict)

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def figures_dir(self) -> Path:
        return self.out / "figures"


def default_out(config: TrainConfig, critic_only: bool = False) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    data = config.data.replace("/", "_").replace(":", "-")[:40]
    kind = "critic-only" if critic_only else "compare"
    return Path("reports") / f"{kind}__{data}__s{config.seed}__{stamp}"


def setup(
    base: TrainConfig,
    entries: list[Entry],
    out: Path | None,
    *,
    overwrite: bool = False,
    jobs: int = 1,
    threshold: float | None = None,
    critic_only: bool = False,
    noise_std: float = 1.0,
    tensorboard: bool = False,
    command: str = "",
    threads: int | None = None,
) -> CompareSetup:
    """Check the options, claim the output folder and prepare every run folder."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        raise ConfigError(f"--threshold must be > 0, got {threshold:g}")
    if not (math.isfinite(noise_std) and noise_std > 0):
        raise ConfigError(f"--noise-std must be > 0, got {noise_std:g}")
    if tensorboard:
        from lipgan.tensorboard import require_tensorboard

        require_tensorboard()
    out = Path(out) if out is not None else default_out(base, critic_only)
    _claim(out, overwrite)
    result = CompareSetup(
        base, entries, out, jobs, threshold, critic_only, noise_std, tensorboard, command, threads
    )
    if critic_only:
        data = datasets.load(base.data, **engine._data_options(base))
        for entry in entries:  # resolve now so a bad combination fails before any work
            engine.resolve(entry_config(base, entry, out), data.family)
        return result
    for entry in entries:
        result.prepared[entry.name] = runs.prepare(entry_config(base, entry, out))
    return result


def entry_config(base: TrainConfig, entry: Entry, out: Path) -> TrainConfig:
    return replace(
        base,
        constraint=entry.constraint,
        clip_value=entry.clip_value,
        out=str(out / "runs" / entry.name),
    )


def _claim(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; choose a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {out} already exists and is not empty; pass --overwrite to "
                "replace it or choose another --out"
            )
        if not ((out / "results.json").exists() or (out / "runs").is_dir()):
            raise ConfigError(
                f"--overwrite refused: {out} is not a lipgan compare folder (no results.json "
                "or runs/); choose another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
