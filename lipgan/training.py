"""The library entries: ``train`` and ``resume`` for Python code, and the one entry
behind each command (``train_command``, ``sample``) that the CLI dispatches to.

``lipgan.train(config, run_dir, callbacks=[...])`` checks the config at the edge,
fills the strategy's and the data's defaults, claims the run folder and trains; the
callbacks (lipgan/callbacks.py) see the run as it goes. It returns the summary that
summary.json holds; when a callback stopped the run early, no summary.json is written
and the returned summary has ``stopped_at`` (resume with ``lipgan.resume``).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lipgan import engine, runs
from lipgan.callbacks import Callback, StopOnSignals
from lipgan.config import TrainConfig, replace, validate
from lipgan.engine.loop import interrupted
from lipgan.runio import RunFolder

__all__ = ["resume", "sample", "train", "train_command"]


def train(
    config: TrainConfig,
    run_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train a WGAN as ``config`` says into ``run_dir`` (default: ``config.out`` or
    runs/<constraint>__<data>__s<seed>__<time>); returns the summary.

    Runs under torchrun train data-parallel (every process calls this with the same
    arguments). An existing non-empty ``run_dir`` is refused unless ``overwrite``.
    """
    if run_dir is not None:
        config = replace(config, out=str(run_dir))
    validate(config)
    prepared = runs.prepare(config, overwrite)
    return _train(prepared, callbacks)


def resume(
    run_dir: str | Path, callbacks: Sequence[Callback] = (), **changes: Any
) -> dict[str, Any]:
    """Continue a run from its last checkpoint, exactly as if it had not stopped.

    ``changes`` may raise the budget or change the logging (``iters=2000``,
    ``log_every=10`` ...); any other setting is refused.
    """
    prepared = runs.prepare_resume(Path(run_dir), changes)
    return _train(prepared, callbacks)


def _train(prepared: runs.PreparedRun, callbacks: Sequence[Callback]) -> dict[str, Any]:
    return engine.train(
        prepared.config,
        prepared.run_dir,
        data=prepared.data,
        resume=prepared.resume,
        callbacks=callbacks,
    )


def train_command(
    config: TrainConfig | None,
    *,
    resume_dir: Path | None = None,
    changes: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    tensorboard: bool = False,
    nproc: int = 1,
    argv: Sequence[str] = (),
    display: Callback | None = None,
) -> int:
    """What ``lipgan train`` does; returns the exit code.

    ``config`` is the validated config of a new run, or None with ``resume_dir`` (and the
    options given, ``changes``). ``nproc > 1`` re-runs the command (``argv``, the words
    after ``lipgan``) in that many torchrun processes. Ctrl-C / SIGTERM stop after the
    current iteration with a checkpoint and raise ``Interrupted`` naming the resume
    command.
    """
    if tensorboard:  # before any folder is claimed or replaced
        from lipgan.tensorboard import require_tensorboard

        require_tensorboard()
    if nproc > 1:
        from lipgan.launch import launch

        target = None
        if config is not None:  # every process must write to (and only rank 0 writes) one folder
            target = str(config.out or runs.default_out(config))
        return launch(nproc, list(argv), target)
    if config is None:
        assert resume_dir is not None
        prepared = runs.prepare_resume(resume_dir, dict(changes or {}))
    else:
        prepared = runs.prepare(config, overwrite)
    with contextlib.ExitStack() as stack:
        callbacks: list[Callback] = [] if display is None else [display]
        if isinstance(display, contextlib.AbstractContextManager):
            stack.enter_context(display)
        if tensorboard:
            from lipgan.tensorboard import TensorBoardLogger

            callbacks.append(stack.enter_context(TensorBoardLogger()))  # in RUN/tensorboard
        signals = stack.enter_context(StopOnSignals())
        summary = _train(prepared, [*callbacks, signals])
    if "stopped_at" in summary:
        signum = signals.signum or signal.SIGINT  # a peer process may have had the signal
        run = RunFolder(prepared.run_dir)
        raise interrupted(summary["stopped_at"], prepared.config.iters, run, signum)
    return 0


def sample(run_dir: Path, n: int = 512, seed: int = 0, out: Path = Path("samples.png")) -> Path:
    """Draw ``n`` samples from a run's generator into ``out`` (.png, .npy or .txt)."""
    return runs.sample(Path(run_dir), n, seed, Path(out))
