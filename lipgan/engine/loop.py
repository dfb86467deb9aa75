"""The training loop. It reads top to bottom in ``train`` and ``_loop``; strategies, data
and models plug into it through their small interfaces and it never asks for a
strategy's name. Each named step below is one thing the loop does per iteration.
"""

from __future__ import annotations

import gc
import json
import re
import shlex
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lipgan import data as datasets
from lipgan import distributed
from lipgan.callbacks import Callback, Callbacks
from lipgan.config import TrainConfig, dump_toml
from lipgan.ema import evaluating
from lipgan.engine.measure import _eval_noise, _finite, draw_samples, measure, summarize
from lipgan.engine.parts import Parts, build_parts
from lipgan.engine.state import restore, set_lr_scale, snapshot
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
    callbacks: Sequence[Callback] = (),
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Any]:
    """Train for ``config.iters`` generator iterations, writing the run folder.

    ``config`` must be validated and resolved (``resolve``); ``lipgan.train`` is the
    entry that does both. Returns the summary written to summary.json; when a callback's
    ``should_stop`` ended the run early, a checkpoint is written instead and the summary
    returned has ``stopped_at``.

    ``on_progress`` and ``should_stop`` are the older form of a callback (a ``Progress``
    per iteration; a signal number to stop, which raises ``Interrupted`` with exit code
    128 + signal).
    """
    legacy = _ProgressCallback(on_progress, should_stop)
    everyone = Callbacks([*callbacks, legacy])
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    processes = distributed.setup(config.device)
    parts = None
    try:
        data = data or datasets.load_for(config)
        parts, notes = build_parts(config, data, processes)
        # Only the main process reports; every process is asked whether to stop.
        tell = everyone if processes.is_main else Callback()
        run = RunFolder(run_dir)
        summary = _loop(config, parts, run, resume, notes, tell, everyone.should_stop)
        # Rank 0 writes the last files after the last collective; the others wait for it
        # so no process tears the group down while a peer still holds it.
        distributed.wait_for_all(processes)
        if "stopped_at" in summary and legacy.signum is not None:
            raise interrupted(summary["stopped_at"], config.iters, run, legacy.signum)
        return summary
    except BaseException as error:
        # The failed call's frames hold the DDP wrappers; free them with the group below.
        traceback.clear_frames(error.__traceback__)
        if _out_of_memory(error):
            raise _allocation_error(config, error) from None
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
    t0: float = 0.0
    """perf_counter at the (virtual) start of training, earlier runs' seconds included."""
    good: dict[str, Any] = field(default_factory=dict)
    """The last snapshot known to hold only finite values."""
    last_metrics: dict[str, float] = field(default_factory=dict)
    window_t0: float = 0.0
    window_start: int = 0

    def bookkeeping(self, parts: Parts) -> dict[str, Any]:
        return {
            "rollbacks": self.rollbacks,
            "lr_scale": parts.lr_scale,
            "seconds": time.perf_counter() - self.t0,
        }


def _loop(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    resume: bool,
    notes: list[str],
    tell: Callback,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    loop = _begin(config, parts, run, resume)
    tell.on_train_start(config, run.root, loop.iteration)
    for note in notes:
        tell.on_message(note)
    eval_z = _eval_noise(config, parts.data.family, parts.processes.device)
    loop.good = snapshot(parts, loop.iteration, loop.bookkeeping(parts))
    loop.window_t0, loop.window_start = time.perf_counter(), loop.iteration

    while loop.iteration < config.iters:
        train_iteration(parts, loop.iteration)
        loop.iteration += 1
        iteration = loop.iteration
        last = iteration == config.iters
        log_step = iteration % config.log_every == 0 or last
        # The guard also runs before every checkpoint, so none ever holds a NaN.
        if (log_step or iteration % config.checkpoint_every == 0) and not _finite(parts):
            _roll_back_or_raise(config, parts, run, loop, tell)
            continue
        if log_step:
            tell.on_log(iteration, _log(config, parts, run, loop, eval_z))
        _write_outputs(config, parts, run, loop, eval_z, last, tell)
        tell.on_iteration(iteration, config.iters)
        if not last and _agreed_stop(parts, should_stop, log_step):
            if not _finite(parts):
                _roll_back_or_raise(config, parts, run, loop, tell)
                continue
            return _stop_early(parts, run, loop, tell)

    return _finish(config, parts, run, loop, tell)


def _begin(config: TrainConfig, parts: Parts, run: RunFolder, resume: bool) -> LoopState:
    """A fresh run folder, or the state of the last checkpoint for a resume."""
    loop = LoopState()
    seconds_before = 0.0
    if resume:
        state = load_checkpoint(run.last)
        restore(parts, state, run.last)
        loop.iteration = int(state["iteration"])
        loop.rollbacks = int(state.get("rollbacks", 0))
        seconds_before = float(state.get("seconds", 0.0))
        set_lr_scale(parts, float(state.get("lr_scale", 1.0)))
        if parts.processes.is_main:
            run.truncate_logs(loop.iteration)
        loop.last_metrics = _logged_at(run, loop.iteration)
    elif parts.processes.is_main:
        run.create()
        atomic_write_text(run.config, dump_toml(config))
        for path in (run.metrics, run.timing):
            atomic_write_text(path, "")
    loop.t0 = time.perf_counter() - seconds_before
    return loop


def _logged_at(run: RunFolder, iteration: int) -> dict[str, float]:
    """The metrics and timing logged at ``iteration`` (empty if it was no log step): what
    the summary needs when a resume starts at the last iteration (a run killed between
    its final checkpoint and summary.json has nothing left to train)."""
    logged: dict[str, float] = {}
    for records in (run.read_metrics(), run.read_timing()):
        if records and records[-1].get("step") == iteration:
            logged.update(records[-1])
    return logged


def _agreed_stop(parts: Parts, should_stop: Callable[[], bool], log_step: bool) -> bool:
    stop = should_stop()
    if parts.processes.world > 1:
        # Every process must stop at the same iteration; agreeing costs a host sync,
        # so it happens on log steps only (a stop request stays pending until then).
        flag = 1 if stop else None
        stop = log_step and distributed.agree_on_signal(flag, parts.processes) is not None
    return stop


def _roll_back_or_raise(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    loop: LoopState,
    tell: Callback,
) -> None:
    """Non-finite values: back to the last good state at half the learning rate, or stop."""
    if config.on_nan == "rollback" and loop.rollbacks < config.max_rollbacks:
        loop.rollbacks += 1
        scale = parts.lr_scale * 0.5
        restore(parts, loop.good, run.last)
        loop.iteration = int(loop.good["iteration"])
        set_lr_scale(parts, scale)
        tell.on_message(
            f"non-finite values: rolled back to iteration {loop.iteration}, "
            f"learning rate x{parts.lr_scale:g} (rollback {loop.rollbacks}/{config.max_rollbacks})"
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
    loop.good = snapshot(parts, iteration, loop.bookkeeping(parts))
    return metrics


def _write_outputs(
    config: TrainConfig,
    parts: Parts,
    run: RunFolder,
    loop: LoopState,
    eval_z: Tensor,
    last: bool,
    tell: Callback,
) -> None:
    """Samples and checkpoints on their schedules (the main process only)."""
    if not parts.processes.is_main:
        return
    iteration = loop.iteration
    if iteration % config.sample_every == 0 or last:
        with evaluating(parts.critic):  # the picture's critic surface moves no state
            written = parts.data.save_samples(
                draw_samples(parts, eval_z[: config.eval_samples]),
                run.sample_path(iteration),
                parts.critic,
            )
        tell.on_sample(iteration, written)
    if iteration % config.checkpoint_every == 0 or last:
        state = snapshot(parts, iteration, loop.bookkeeping(parts))
        save_checkpoint(run.last, state)
        save_checkpoint(run.numbered_checkpoint(iteration), state)
        run.prune_checkpoints(config.keep)
        tell.on_checkpoint(iteration, run.last)


def _stop_early(parts: Parts, run: RunFolder, loop: LoopState, tell: Callback) -> dict[str, Any]:
    """A callback asked to stop: checkpoint (no summary.json: the run is not finished)."""
    if parts.processes.is_main:
        save_checkpoint(run.last, snapshot(parts, loop.iteration, loop.bookkeeping(parts)))
        tell.on_checkpoint(loop.iteration, run.last)
    summary = summarize(
        loop.last_metrics, time.perf_counter() - loop.t0, loop.iteration, loop.rollbacks
    )
    summary["stopped_at"] = loop.iteration
    tell.on_train_end(summary)
    return summary


def _finish(
    config: TrainConfig, parts: Parts, run: RunFolder, loop: LoopState, tell: Callback
) -> dict[str, Any]:
    seconds = time.perf_counter() - loop.t0
    summary = summarize(loop.last_metrics, seconds, config.iters, loop.rollbacks)
    if parts.processes.is_main:
        atomic_write_text(run.summary, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    tell.on_train_end(summary)
    return summary


def _out_of_memory(error: BaseException) -> bool:
    """torch's allocation failures: OutOfMemoryError on devices, a RuntimeError on the CPU."""
    text = str(error)
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("can't allocate" in text or "out of memory" in text)
    )


def _allocation_error(config: TrainConfig, error: BaseException) -> LipganError:
    """The one line for a run too large for its device's memory: the size, what to lower."""
    text = str(error)
    size = ""
    if match := re.search(r"allocate (\d+) bytes", text):  # the CPU allocator
        size = f" {int(match.group(1)) / 2**30:,.1f} GiB"
    elif match := re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]iB)", text):  # CUDA
        size = f" {match.group(1)}"
    return LipganError(
        f"out of memory: could not allocate{size} with --batch-size {config.batch_size} "
        f"(--eval-samples {config.eval_samples}, --hidden {config.hidden}); lower "
        "--batch-size (or --eval-samples, --hidden)"
    )


def interrupted(iteration: int, total: int, run: RunFolder, signum: int) -> Interrupted:
    """The error a signal-stopped run ends with: where it stopped and how to resume."""
    return Interrupted(
        f"stopped at iteration {iteration}/{total}; checkpoint in {run.last}; "
        f"resume with: lipgan train --resume {shlex.quote(str(run.root))}",
        exit_code=128 + signum,
    )


class _ProgressCallback(Callback):
    """The older callback form: ``on_progress(Progress)`` and a signal-number stop."""

    def __init__(
        self,
        on_progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], int | None] | None,
    ) -> None:
        self.on_progress = on_progress
        self.ask = should_stop
        self.signum: int | None = None
        self.iteration = 0
        self.total = 0
        self.metrics: dict[str, float] | None = None

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        self.iteration, self.total = iteration, config.iters

    def on_message(self, text: str) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(self.iteration, self.total, message=text))

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        self.metrics = dict(metrics)

    def on_iteration(self, iteration: int, total: int) -> None:
        self.iteration = iteration
        if self.on_progress is not None:
            self.on_progress(Progress(iteration, total, self.metrics))
        self.metrics = None

    def should_stop(self) -> bool:
        if self.ask is not None and self.signum is None:
            self.signum = self.ask()
        return self.signum is not None
