"""The training loop. It reads top to bottom in ``train`` and ``_loop``; strategies, data
and models plug into it through their small interfaces and it never asks for a
strategy's name. Each named step below is one thing the loop does per iteration.
"""

from __future__ import annotations

import gc
import json
import shlex
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lipgan import data as datasets
from lipgan import distributed
from lipgan.config import TrainConfig, dump_toml
from lipgan.ema import evaluating
from lipgan.engine.measure import _eval_noise, _finite, draw_samples, measure, summarize
from lipgan.engine.parts import Parts, build_parts
from lipgan.engine.resolve import _data_options
from lipgan.engine.state import _set_lr_scale, restore, snapshot
from lipgan.engine.updates import train_iteration
from lipgan.errors import DivergenceError, LipganError
from lipgan.runio import RunFolder, atomic_write_text, load_checkpoint, save_checkpoint


@dataclass
class Progress:
    """What the loop reports after every generator iteration."""

    iteration: int
    total: int
    metrics: dict[str, float] | None = None
    """Set on log steps only."""
    message: str | None = None
    """A line worth showing (a rollback, a compile note)."""


class Interrupted(LipganError):
    """Training stopped on a signal after writing a checkpoint."""


def train(
    config: TrainConfig,
    run_dir: Path,
    *,
    data: datasets.DataSource | None = None,
    resume: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """Train for ``config.iters`` generator iterations, writing the run folder.

    ``config`` must be validated and resolved (``resolve``). ``should_stop`` returns a
    signal number when the run must end: the loop finishes the current iteration,
    writes a checkpoint and raises ``Interrupted`` with exit code 128 + signal.
    Returns the summary written to summary.json.
    """
    report = on_progress or (lambda progress: None)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    processes = distributed.setup(config.device)
    parts = None
    try:
        data = data or datasets.load(config.data, **_data_options(config))
        parts, notes = build_parts(config, data, processes)
        for note in notes:
            report(Progress(0, config.iters, message=note))
        summary = _loop(config, parts, RunFolder(run_dir), resume, report, should_stop)
        # Rank 0 writes the last files after the last collective; the others wait for it
        # so no process tears the group down while a peer still holds it.
        distributed.wait_for_all(processes)
        return summary
    except BaseException as error:
        # The failed call's frames hold the DDP wrappers; free them with the group below.
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        # DDP keeps the process group and its last work handles alive. Left to interpreter
        # exit, gloo's worker threads can abort a finished process (SIGABRT), so free
        # them now, while the interpreter is whole, then destroy the group.
        del parts
        gc.collect()
        distributed.teardown(processes)


@dataclass
class LoopState:
    """The loop's own bookkeeping (besides ``Parts``); part of every checkpoint."""

    iteration: int = 0
    rollbacks: int = 0
    lr_scale: float = 1.0
    t0: float = 0.0
    """perf_counter at the (virtual) start of training, earlier runs' seconds included."""
    good: dict[str, Any] = field(default_factory=dict)
    """The last snapshot known to hold only finite values."""
    last_metrics: dict[str, float] = field(default_factory=dict)
    window_t0: float = 0.0
    window_start: int = 0

    def bookkeeping(self) -> dict[str, Any]:
        return {
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "seconds": time.perf_counter() - self.t0,
        }


def _loop(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    resume: bool,
    report: Callable[[Progress], None],
    should_stop: Callable[[], int | None] | None,
) -> dict[str, Any]:
    loop = _begin(config, parts, run, resume)
    eval_z = _eval_noise(config, parts.data.family, parts.processes.device)
    loop.good = snapshot(parts, loop.iteration, loop.bookkeeping())
    loop.window_t0, loop.window_start = time.perf_counter(), loop.iteration

    while loop.iteration < config.iters:
        train_iteration(parts, loop.iteration)
        loop.iteration += 1
        iteration = loop.iteration
        last = iteration == config.iters
        log_step = iteration % config.log_every == 0 or last
        signum = _stop_signal(parts, should_stop, log_step)
        # The guard also runs before every checkpoint, so none ever holds a NaN.
        saving = signum is not None or iteration % config.checkpoint_every == 0
        if (log_step or saving) and not _finite(parts):
            _roll_back_or_raise(config, parts, run, loop, report)
            continue
        metrics = _log(config, parts, run, loop, eval_z) if log_step else None
        _write_outputs(config, parts, run, loop, eval_z, last)
        report(Progress(iteration, config.iters, metrics))
        if signum is not None and not last:
            _interrupt(config, parts, run, loop, signum)

    return _finish(config, parts, run, loop)


def _begin(config: TrainConfig, parts: Parts, run: RunFolder, resume: bool) -> LoopState:
    """A fresh run folder, or the state of the last checkpoint for a resume."""
    loop = LoopState()
    seconds_before = 0.0
    if resume:
        state = load_checkpoint(run.last)
        restore(parts, state, run.last)
        loop.iteration = int(state["iteration"])
        loop.rollbacks = int(state.get("rollbacks", 0))
        loop.lr_scale = float(state.get("lr_scale", 1.0))
        seconds_before = float(state.get("seconds", 0.0))
        _set_lr_scale(parts, loop.lr_scale)
        if parts.processes.is_main:
            run.truncate_logs(loop.iteration)
    elif parts.processes.is_main:
        run.create()
        atomic_write_text(run.config, dump_toml(config))
        for path in (run.metrics, run.timing):
            atomic_write_text(path, "")
    loop.t0 = time.perf_counter() - seconds_before
    return loop


def _stop_signal(
    parts: Parts, should_stop: Callable[[], int | None] | None, log_step: bool
) -> int | None:
    signum = should_stop() if should_stop is not None else None
    if parts.processes.world > 1:
        # Every process must stop at the same iteration; agreeing costs a host sync,
        # so it happens on log steps only (a received signal stays pending until then).
        signum = distributed.agree_on_signal(signum, parts.processes) if log_step else None
    return signum


def _roll_back_or_raise(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    loop: LoopState,
    report: Callable[[Progress], None],
) -> None:
    """Non-finite values: back to the last good state at half the learning rate, or stop."""
    if config.on_nan == "rollback" and loop.rollbacks < config.max_rollbacks:
        loop.rollbacks += 1
        loop.lr_scale *= 0.5
        restore(parts, loop.good, run.last)
        loop.iteration = int(loop.good["iteration"])
        _set_lr_scale(parts, loop.lr_scale)
        report(
            Progress(
                loop.iteration,
                config.iters,
                message=f"non-finite values: rolled back to iteration {loop.iteration}, "
                f"learning rate x{loop.lr_scale:g} (rollback {loop.rollbacks}/"
                f"{config.max_rollbacks})",
            )
        )
        return
    good_iteration = int(loop.good["iteration"])
    if parts.processes.is_main:
        save_checkpoint(run.last, loop.good)
    raise DivergenceError(
        f"training diverged (non-finite loss or weights) between iterations "
        f"{good_iteration} and {loop.iteration}; last good state saved at iteration "
        f"{good_iteration} in {run.last}; lower --lr, raise --lambda, or use "
        "--on-nan rollback"
    )


def _log(
    config: TrainConfig, parts: Parts, run: RunFolder, loop: LoopState, eval_z: Tensor
) -> dict[str, float]:
    """Measure, append to metrics.jsonl and timing.jsonl, and remember a good state."""
    iteration = loop.iteration
    metrics = measure(parts, iteration, eval_z)
    parts.window.zero_()
    now = time.perf_counter()
    timing = {
        "step": iteration,
        "seconds": round(now - loop.t0, 4),
        "seconds_per_iter": round((now - loop.window_t0) / (iteration - loop.window_start), 6),
    }
    loop.window_t0, loop.window_start = now, iteration
    if parts.processes.is_main:
        run.append_jsonl(run.metrics, metrics)
        run.append_jsonl(run.timing, timing)
    loop.last_metrics = {**metrics, **timing}
    loop.good = snapshot(parts, iteration, loop.bookkeeping())
    return metrics


def _write_outputs(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    loop: LoopState,
    eval_z: Tensor,
    last: bool,
) -> None:
    """Samples and checkpoints on their schedules (the main process only)."""
    if not parts.processes.is_main:
        return
    iteration = loop.iteration
    if iteration % config.sample_every == 0 or last:
        with evaluating(parts.critic):  # the picture's critic surface moves no state
            parts.data.save_samples(
                draw_samples(parts, eval_z[: config.eval_samples]),
                run.sample_path(iteration),
                parts.critic,
            )
    if iteration % config.checkpoint_every == 0 or last:
        state = snapshot(parts, iteration, loop.bookkeeping())
        save_checkpoint(run.last, state)
        save_checkpoint(run.numbered_checkpoint(iteration), state)
        run.prune_checkpoints(config.keep)


def _interrupt(
    config: TrainConfig, parts: Parts, run: RunFolder, loop: LoopState, signum: int
) -> None:
    if parts.processes.is_main:
        save_checkpoint(run.last, snapshot(parts, loop.iteration, loop.bookkeeping()))
    raise Interrupted(
        f"stopped at iteration {loop.iteration}/{config.iters}; checkpoint in {run.last}; "
        f"resume with: lipgan train --resume {shlex.quote(str(run.root))}",
        exit_code=128 + signum,
    )


def _finish(config: TrainConfig, parts: Parts, run: RunFolder, loop: LoopState) -> dict[str, Any]:
    seconds = time.perf_counter() - loop.t0
    summary = summarize(loop.last_metrics, seconds, config.iters, loop.rollbacks)
    if parts.processes.is_main:
        atomic_write_text(run.summary, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
