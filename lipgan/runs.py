"""Setting up, resuming and sampling runs: the checks the CLI delegates to.

Everything here validates at the edge and raises ``LipganError`` subclasses with a
one-line message; the engine behind it can trust what it receives.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan import data as datasets
from lipgan import engine, models
from lipgan.config import TrainConfig, load_toml, replace, validate
from lipgan.errors import ConfigError, LipganError
from lipgan.runio import RunFolder, atomic_write_bytes, load_checkpoint, load_state


@dataclass
class PreparedRun:
    config: TrainConfig
    """Validated and resolved."""
    run_dir: Path
    data: datasets.DataSource
    resume: bool


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """The config file (if any), then the options the user gave, then validation."""
    config = load_toml(config_file) if config_file is not None else TrainConfig()
    given = {k: v for k, v in overrides.items() if v is not None}
    config = replace(config, **given)
    validate(config)
    return config


def prepare(config: TrainConfig, overwrite: bool = False) -> PreparedRun:
    """Load the data, resolve defaults and claim the output folder."""
    data = datasets.load(config.data, **engine._data_options(config))
    resolved = engine.resolve(config, data.family)
    run_dir = Path(resolved.out) if resolved.out else engine.default_out(resolved)
    if run_dir.exists() and run_dir.is_file():
        raise ConfigError(f"--out {run_dir} is a file; choose a folder")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {run_dir} already exists; pass --overwrite to replace it "
                f"or --resume {run_dir} to continue it"
            )
        if not (run_dir / "config.toml").exists():
            raise ConfigError(
                f"--overwrite refused: {run_dir} is not a lipgan run folder (no config.toml); "
                "choose another --out"
            )
        shutil.rmtree(run_dir)
    resolved = replace(resolved, out=str(run_dir))
    return PreparedRun(resolved, run_dir, data, resume=False)


# Options that may change when a run is resumed: the budget and the bookkeeping.
RESUMABLE = {"iters", "log_every", "sample_every", "checkpoint_every", "keep", "device"}


def prepare_resume(run_dir: Path, overrides: dict[str, Any]) -> PreparedRun:
    """Reload a run's saved config; only the budget and logging may change."""
    run = RunFolder(run_dir)
    if not run.config.exists():
        raise ConfigError(f"cannot resume {run_dir}: no config.toml there; check the path")
    if not run.last.exists():
        raise ConfigError(f"cannot resume {run_dir}: no checkpoints/last.pt yet; start anew")
    config = load_toml(run.config)
    given = {k: v for k, v in overrides.items() if v is not None}
    changed = sorted(k for k, v in given.items() if getattr(config, k) != v)
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        raise ConfigError(
            f"--resume keeps the run's settings; {refused[0]!r} cannot change "
            f"(only {', '.join(sorted(RESUMABLE))} can)"
        )
    config = replace(config, **given)
    validate(config)
    state = load_checkpoint(run.last)
    if int(state["iteration"]) >= config.iters:
        raise ConfigError(
            f"{run_dir} already finished {state['iteration']} iterations; "
            "raise --iters to train further"
        )
    data = datasets.load(config.data, **engine._data_options(config))
    return PreparedRun(engine.resolve(config, data.family), run_dir, data, resume=True)


def load_generator(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]]:
    """(generator, critic, checkpoint) rebuilt from a run folder alone."""
    run = RunFolder(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} does not exist; check the path")
    state = load_checkpoint(run.last)
    config = TrainConfig.from_dict(state["config"], source=f"{run.last} config")
    generator, critic = models.build(config, state["data"])
    load_state(generator, state["generator"], "generator", run.last)
    # The critic may carry a reparametrisation (e.g. spectral norm) from its strategy.
    try:
        engine.build_constraint(config, state["data"]["family"]).attach(critic)
        load_state(critic, state["critic"], "critic", run.last)
    except LipganError:
        critic = None
    generator.eval()
    return generator, critic, state


SAMPLE_SUFFIXES = (".png", ".npy", ".txt")


def sample(run_dir: Path, n: int, seed: int, out: Path) -> Path:
    """Draw ``n`` samples from a run's generator: a picture, raw array or text."""
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if out.suffix not in SAMPLE_SUFFIXES:
        raise ConfigError(
            f"--out {out} has an unknown type; end it in {', '.join(SAMPLE_SUFFIXES)}"
        )
    generator, critic, state = load_generator(run_dir)
    z_dim = int(state["config"]["z_dim"])
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        samples = generator(z)
    if out.suffix == ".npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, samples.numpy())
        atomic_write_bytes(out, buffer.getvalue())
        return out
    source = datasets.restore(state["data"])
    if out.suffix == ".txt" and source.family != "text":
        raise ConfigError(f"--out {out}: .txt is for text runs; use .png or .npy")
    written = source.save_samples(samples, out.with_suffix(""), critic)
    if written != out:
        written.replace(out)
    return out
