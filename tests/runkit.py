"""Helpers for tests that train tiny runs end to end: ``from runkit import train_run``.

Every run here is a few dozen iterations of a 16-wide MLP on 8gaussians: well under a
second each once torch is warm.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from typer.testing import CliRunner

from lipgan import engine, runs
from lipgan.cli import app
from lipgan.runio import RunFolder, load_checkpoint

# The same tiny model and cheap metrics for every run (field names of TrainConfig).
TINY: dict[str, Any] = {
    "hidden": 16,
    "critic_layers": 2,
    "generator_layers": 2,
    "batch_size": 32,
    "eval_samples": 32,
    "log_every": 4,
    "sample_every": 10_000,
    "checkpoint_every": 10_000,
    "seed": 7,
}

# The same as command-line options.
TINY_ARGS = [
    "--hidden", "16", "--critic-layers", "2", "--generator-layers", "2",
    "--batch-size", "32", "--eval-samples", "32", "--log-every", "4",
    "--sample-every", "10000", "--checkpoint-every", "10000", "--seed", "7",
]  # fmt: skip


def train_run(
    out: Path, should_stop: Callable[[], int | None] | None = None, **changes: Any
) -> dict[str, Any]:
    """A fresh tiny run in ``out`` through the same path the CLI takes."""
    options = {**TINY, **changes, "out": str(out)}
    prepared = runs.prepare(runs.build_config(None, options))
    return engine.train(
        prepared.config, prepared.run_dir, data=prepared.data, should_stop=should_stop
    )


def resume_run(
    out: Path, should_stop: Callable[[], int | None] | None = None, **overrides: Any
) -> dict[str, Any]:
    prepared = runs.prepare_resume(out, overrides)
    return engine.train(
        prepared.config, prepared.run_dir, data=prepared.data, resume=True,
        should_stop=should_stop,
    )  # fmt: skip


def stop_after(iterations: int, signum: int = signal.SIGINT) -> Callable[[], int | None]:
    """A should_stop that asks to stop after ``iterations`` more generator iterations."""
    calls = [0]

    def should_stop() -> int | None:
        calls[0] += 1
        return signum if calls[0] >= iterations else None

    return should_stop


def last_state(out: Path) -> dict[str, Any]:
    return load_checkpoint(RunFolder(out).last)


def parameters(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every generator, critic and generator-EMA tensor of a checkpoint, by a flat name."""
    nets = {"generator": state["generator"], "critic": state["critic"]}
    if "generator_ema" in state:
        nets["generator_ema"] = state["generator_ema"]["model"]
        nets["generator_ema.updates"] = {"": torch.tensor(state["generator_ema"]["updates"])}
    return {
        f"{net}.{name}": tensor for net, tensors in nets.items() for name, tensor in tensors.items()
    }


def cli(*args: str):
    """Run the CLI in-process; returns typer's Result (exit_code, output, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args])
