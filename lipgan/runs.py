"""Setting up, resuming and sampling runs: the checks the CLI delegates to.

Everything here validates at the edge and raises ``LipganError`` subclasses with a
one-line message; the engine behind it can trust what it receives.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipgan import data as datasets
from lipgan import distributed, engine, models
from lipgan.config import (
    SHORTHANDS,
    TrainConfig,
    dump_toml,
    fold_shorthands,
    load_toml,
    option_name,
    replace,
    validate,
)
from lipgan.constraints import registry
from lipgan.errors import CheckpointError, ConfigError, LipganError
from lipgan.runio import (
    RunFolder,
    atomic_write_bytes,
    atomic_write_text,
    check_writable,
    default_folder,
    is_run_folder,
    load_checkpoint,
    load_state,
)


@dataclass
class PreparedRun:
    config: TrainConfig
    """Validated and resolved."""
    run_dir: Path
    data: datasets.DataSource
    resume: bool


def build_config(
    config_file: Path | None, overrides: dict[str, Any], check_options: bool = True
) -> TrainConfig:
    """The config file (if any), then the options the user gave, then validation.

    ``check_options=False`` leaves the strategy options unchecked (a compare checks them
    against each of its strategies instead of the config's own ``constraint``)."""
    config = load_toml(config_file) if config_file is not None else TrainConfig()
    config = with_options(config, overrides)
    validate(config if check_options else replace(config, constraint_options={}))
    return config


def with_options(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with the options given (None: not given). --lambda / --clip become
    strategy options here, at the edge; ``--option`` values win over them."""
    given = {k: v for k, v in overrides.items() if v is not None}
    shorthands = {k: given.pop(k) for k in SHORTHANDS if k in given}
    options = given.pop("constraint_options", {})
    config = replace(config, source="option", **given)
    folded = fold_shorthands(config.constraint, **shorthands) if shorthands else {}
    if folded or options:
        merged = {**config.constraint_options, **folded, **options}
        config = replace(config, constraint_options=merged)
    return config


def default_out(config: TrainConfig) -> Path:
    """runs/<constraint>__<data>__s<seed>__<time>."""
    return default_folder("runs", config.constraint.replace("+", "-"), config.data, config.seed)


def prepare(config: TrainConfig, overwrite: bool = False) -> PreparedRun:
    """Load the data, resolve defaults and claim the output folder."""
    data = datasets.load_for(config)
    resolved = _resolve(config, data)
    run_dir = Path(resolved.out) if resolved.out else default_out(resolved)
    if not distributed.is_main_process():  # only the main process claims the folder
        return PreparedRun(replace(resolved, out=str(run_dir)), run_dir, data, resume=False)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file; choose a folder")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {run_dir} already exists; pass --overwrite to replace it "
                f"or --resume {shlex.quote(str(run_dir))} to continue it"
            )
        if not is_run_folder(run_dir):
            raise ConfigError(
                f"--overwrite refused: {run_dir} is not a lipgan run folder (no config.toml "
                "and metrics.jsonl); nothing was deleted; choose another --out"
            )
    check_writable(run_dir)
    if run_dir.exists() and overwrite:
        shutil.rmtree(run_dir)
    resolved = replace(resolved, out=str(run_dir))
    return PreparedRun(resolved, run_dir, data, resume=False)


def resolve_run(config: TrainConfig) -> TrainConfig:
    """A new run's resolved config after every check that needs no folder (the strategy's
    own, whether it fits the critic, the device); creates nothing."""
    return _resolve(config, datasets.load_for(config))


def _resolve(config: TrainConfig, data: datasets.DataSource) -> TrainConfig:
    """engine.resolve, plus the checks that would otherwise fail only once training
    started: the strategy's own parameter checks, whether it can rebuild or wrap this
    critic (tried on a throwaway one) and the device's availability."""
    resolved = engine.resolve(config, data.family)  # the strategy's own checks run here
    constraint = engine.build_constraint(resolved, data.family)
    constraint.attach(models.build(resolved, data.meta())[1])
    distributed.pick_device(resolved.device)
    return resolved


# Options that may change when a run is resumed: the budget and the bookkeeping.
RESUMABLE = {"iters", "log_every", "sample_every", "checkpoint_every", "keep", "device", "threads"}


def with_registered_defaults(config: TrainConfig) -> TrainConfig:
    """A saved config with every strategy parameter it lacks at the registered default.

    A run folder names every parameter of the release that wrote it; one added since
    ran at the registered default, the behaviour the parameter was added to keep, and a
    data family's default (sn's FullSort on points) must not replace it on resume."""
    params = registry.resolve_params(config.constraint, "", options=config.constraint_options)
    options = {f"{name}.{k}": value for name, part in params.items() for k, value in part.items()}
    return replace(config, constraint_options=options)


def prepare_resume(run_dir: Path, overrides: dict[str, Any]) -> PreparedRun:
    """Reload a run's saved config; only the budget and logging may change.

    A changed budget is written back to config.toml, so the folder keeps describing
    the run it holds.
    """
    run = RunFolder(run_dir)
    if not run.config.exists():
        raise ConfigError(f"cannot resume {run_dir}: no config.toml there; check the path")
    if not run.last.exists():
        raise ConfigError(f"cannot resume {run_dir}: no checkpoints/last.pt yet; start anew")
    saved = load_toml(run.config)
    # Compare after coercion: --betas 0.5,0.9 (a list) equals the saved (0.5, 0.9).
    config = with_options(saved, overrides)
    changed = sorted(
        f.name for f in fields(TrainConfig) if getattr(config, f.name) != getattr(saved, f.name)
    )
    refused = [k for k in changed if k not in RESUMABLE]
    if refused:
        raise ConfigError(
            f"--resume keeps the run's settings; {option_name(refused[0])} cannot change "
            f"(only {', '.join(option_name(k) for k in sorted(RESUMABLE))} can); "
            "start a new run to change it"
        )
    validate(config)
    try:
        state = load_checkpoint(run.last)
    except CheckpointError as exc:
        numbered = sorted(run.checkpoints.glob("step_*.pt"))
        hint = (
            f"; to resume from an older one, copy {numbered[-1]} over {run.last}"
            if numbered
            else ""
        )
        raise CheckpointError(f"cannot resume {run_dir}: {exc}{hint}") from None
    trained = TrainConfig.from_dict(dict(state["config"]), source=f"{run.last} config")
    edited = [
        f.name
        for f in fields(TrainConfig)
        if f.name not in RESUMABLE | {"out"} and getattr(trained, f.name) != getattr(saved, f.name)
    ]
    if edited:
        name = edited[0]
        raise ConfigError(
            f"cannot resume {run_dir}: config.toml says {name} = {getattr(saved, name)!r} but "
            f"the checkpoint was trained with {getattr(trained, name)!r}; undo the edit"
        )
    finished = int(state["iteration"]) == config.iters and run.summary.is_file()
    if int(state["iteration"]) > config.iters or finished:
        # at exactly --iters without summary.json: killed before it was written; the
        # resume writes it and trains nothing
        raise ConfigError(
            f"{run_dir} already finished {state['iteration']} iterations; "
            "raise --iters to train further"
        )
    data = datasets.load_for(config)
    # the folder is where it is now: config.toml's out may name it from another working
    # directory, or before the folder was moved
    resolved = replace(_resolve(with_registered_defaults(config), data), out=str(run_dir))
    if changed:
        check_writable(run_dir)
        atomic_write_text(run.config, dump_toml(resolved))
    return PreparedRun(resolved, run_dir, data, resume=True)


def load_generator(run_dir: Path) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, Any]]:
    """(generator, critic, checkpoint) rebuilt from a run folder alone, both in eval mode;
    the generator is the run's EMA generator where it has one."""
    run = RunFolder(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} does not exist; check the path")
    state = load_checkpoint(run.last)
    config = TrainConfig.from_dict(dict(state["config"]), source=f"{run.last} config")
    validate(config)
    generator, critic = models.build(config, state["data"])
    # The EMA generator where the run has one (as its metrics and pictures were drawn).
    if "generator_ema" in state:
        load_state(generator, state["generator_ema"]["model"], "generator", run.last)
    else:
        load_state(generator, state["generator"], "generator", run.last)
    # The critic may carry a reparametrisation (spectral norm) or be replaced (gn) by
    # its strategy.
    try:
        constraint = engine.build_constraint(config, state["data"]["family"])
        critic = constraint.attach(critic) or critic
        load_state(critic, state["critic"], "critic", run.last)
    except LipganError:
        critic = None
    generator.eval()
    if critic is not None:
        critic.eval()  # its picture surface must not run sn's power iteration either
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
