"""Training every entry of a compare through the ordinary ``engine.train``.

One run after another in this process (``--jobs 1``), or in spawned worker processes
that report progress through a queue. A run that diverges or fails is recorded, never
fatal to the compare.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_module
import resource
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lipgan import data as datasets
from lipgan import engine
from lipgan.compare.plan import CompareSetup
from lipgan.config import TrainConfig
from lipgan.errors import DivergenceError, LipganError

MEMORY_NOTE = (
    "peak resident memory (MiB) of the process while the run trained: the child process's "
    "ru_maxrss with --jobs > 1; with --jobs 1 the Linux high-water mark VmHWM, reset before "
    "each run through /proc/self/clear_refs (the process-wide ru_maxrss where that is "
    "unavailable, then an upper bound)"
)


@dataclass
class Event:
    """Progress of one run, as the display needs it."""

    name: str
    iteration: int
    total: int
    metrics: dict[str, float] | None = None
    status: str | None = None
    """Set once, when the run has ended: 'ok', 'diverged' or 'failed: ...'."""


@dataclass
class Outcome:
    status: str
    peak_mib: float | None
    message: str = ""


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib(reset_worked: bool) -> float:
    if reset_worked:
        try:
            with open("/proc/self/status") as handle:
                for line in handle:
                    if line.startswith("VmHWM:"):
                        return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _train_one(
    config: TrainConfig,
    run_dir: Path,
    data: datasets.DataSource | None,
    report: Callable[[engine.Progress], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_dir: Path | None,
) -> tuple[str, str]:
    """Train one run; a diverged or failed run is recorded, not fatal to the compare."""
    callbacks = [report]
    logger = None
    if tensorboard_dir is not None:
        from lipgan.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(tensorboard_dir, run_dir)
        callbacks.append(logger)

    def on_progress(progress: engine.Progress) -> None:
        for callback in callbacks:
            callback(progress)

    try:
        engine.train(config, run_dir, data=data, on_progress=on_progress, should_stop=should_stop)
        return "ok", ""
    except engine.Interrupted:
        raise
    except DivergenceError as exc:
        return "diverged", str(exc)
    except LipganError as exc:
        return "failed", str(exc)
    finally:
        if logger is not None:
            logger.close()


def _child(
    config: TrainConfig,
    run_dir: Path,
    name: str,
    events: Any,
    threads: int,
    tensorboard_dir: Path | None,
) -> None:
    """Entry point of a --jobs worker process (spawned: nothing shared but the queue)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    torch.set_num_threads(threads)

    def report(progress: engine.Progress) -> None:
        events.put(("progress", name, progress.iteration, progress.total, progress.metrics))

    try:
        status, message = _train_one(config, run_dir, None, report, None, tensorboard_dir)
    except Exception as exc:  # report, never hang the parent
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    events.put(("done", name, status, message, peak_rss_mib(False)))


def train_all(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None = None,
) -> dict[str, Outcome]:
    """Train every entry, one after another (jobs 1) or in worker processes."""
    tensorboard_root = compare.out / "tensorboard" if compare.tensorboard else None
    if compare.jobs == 1:
        with torch_threads(compare.threads):
            return _train_sequential(compare, on_event, should_stop, tensorboard_root)
    return _train_parallel(compare, on_event, should_stop, tensorboard_root)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count for a block (unchanged when None)."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_sequential(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_root: Path | None,
) -> dict[str, Outcome]:
    """One run after another in this process (peak memory via VmHWM resets)."""
    outcomes = {}
    for entry in compare.entries:
        prepared = compare.prepared[entry.name]
        total = prepared.config.iters

        def report(progress: engine.Progress, name: str = entry.name) -> None:
            on_event(Event(name, progress.iteration, progress.total, progress.metrics))

        reset = reset_peak_rss()
        status, message = _train_one(
            prepared.config,
            prepared.run_dir,
            prepared.data,
            report,
            should_stop,
            None if tensorboard_root is None else tensorboard_root / entry.name,
        )
        outcomes[entry.name] = Outcome(status, peak_rss_mib(reset), message)
        on_event(Event(entry.name, total, total, status=status))
    return outcomes


def _train_parallel(
    compare: CompareSetup,
    on_event: Callable[[Event], None],
    should_stop: Callable[[], int | None] | None,
    tensorboard_root: Path | None,
) -> dict[str, Outcome]:
    context = mp.get_context("spawn")
    events = context.Queue()
    threads = compare.threads or max(1, (os.cpu_count() or 1) // compare.jobs)
    waiting = list(compare.entries)
    running: dict[str, Any] = {}
    outcomes: dict[str, Outcome] = {}
    totals = {e.name: compare.prepared[e.name].config.iters for e in compare.entries}
    try:
        while waiting or running:
            while waiting and len(running) < compare.jobs:
                entry = waiting.pop(0)
                prepared = compare.prepared[entry.name]
                tb = None if tensorboard_root is None else tensorboard_root / entry.name
                process = context.Process(
                    target=_child,
                    args=(prepared.config, prepared.run_dir, entry.name, events, threads, tb),
                    daemon=True,
                )
                process.start()
                running[entry.name] = process
            signum = should_stop() if should_stop is not None else None
            if signum is not None:
                raise engine.Interrupted(
                    f"compare stopped; finished runs are in {compare.runs_dir}",
                    exit_code=128 + signum,
                )
            try:
                message = events.get(timeout=0.5)
            except queue_module.Empty:
                for name, process in list(running.items()):
                    if not process.is_alive() and process.exitcode not in (0, None):
                        running.pop(name)
                        status = f"worker exited with code {process.exitcode}"
                        outcomes[name] = Outcome("failed", None, status)
                        on_event(Event(name, totals[name], totals[name], status="failed"))
                continue
            if message[0] == "progress":
                _, name, iteration, total, metrics = message
                on_event(Event(name, iteration, total, metrics))
            else:
                _, name, status, text, peak = message
                running.pop(name).join()
                outcomes[name] = Outcome(status, peak, text)
                on_event(Event(name, totals[name], totals[name], status=status))
    finally:
        for process in running.values():
            process.terminate()
            process.join()
    return {e.name: outcomes[e.name] for e in compare.entries}
