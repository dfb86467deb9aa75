"""What every executor shares: the job it is given, the events it reports, and ``run_job``.

An executor takes jobs (anything with the ``Job`` protocol's fields: a compare's run, a
tuning trial) and reports ``Event``s as they progress and end; the features that submit
jobs never see how. Every job runs through ``run_job``, the ordinary ``engine.train`` on
the job's run folder, so an executor for a cluster (Ray, Slurm) only has to call
``run_job`` where the job runs and forward its events.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from lipgan import engine
from lipgan.config import TrainConfig
from lipgan.errors import ConfigError, DivergenceError, LipganError

MEMORY_NOTE = (
    "peak resident memory (MiB) of the process while the run trained: the child process's "
    "ru_maxrss with --jobs > 1; with --jobs 1 the Linux high-water mark VmHWM, reset before "
    "each run through /proc/self/clear_refs (the process-wide ru_maxrss where that is "
    "unavailable, then an upper bound)"
)


class Job(Protocol):
    """One run to train into its own folder: self-contained and picklable, so any executor
    can run it where the folder is reachable."""

    @property
    def name(self) -> str: ...

    config: TrainConfig
    """Validated and resolved; ``config.out`` is the run folder."""
    resume: bool
    """Continue from the folder's checkpoints/last.pt."""
    tensorboard_dir: Path | None

    @property
    def run_dir(self) -> Path: ...


@dataclass
class Outcome:
    """How a job ended."""

    status: str
    """'ok', 'diverged', 'failed' or 'interrupted' (stopped by a signal; resumable)."""
    peak_mib: float | None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    """Progress of one job, as the display needs it."""

    name: str
    iteration: int
    total: int
    metrics: dict[str, float] | None = None
    outcome: Outcome | None = None
    """Set once, when the job has ended."""
    started: bool = False
    """Set once, when the job starts (its first iteration may be later on a resume)."""

    @property
    def status(self) -> str | None:
        return None if self.outcome is None else self.outcome.status


OnEvent = Callable[[Event], None]
ShouldStop = Callable[[], int | None]


class Executor(Protocol):
    """Runs jobs, reports their events, returns every job's outcome by name.

    When ``should_stop`` returns a signal number, running jobs stop at a checkpoint and
    ``engine.Interrupted`` is raised once they have.
    """

    def run(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None = None
    ) -> dict[str, Outcome]: ...


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


def run_job(job: Job, on_event: OnEvent, should_stop: ShouldStop | None = None) -> str:
    """Train one job to its end; returns (status, message), never raising for a run that
    diverged or failed (``engine.Interrupted`` does propagate)."""
    total = job.config.iters
    logger = None
    if job.tensorboard_dir is not None:
        from lipgan.tensorboard import TensorBoardLogger

        logger = TensorBoardLogger(job.tensorboard_dir)

    def on_progress(progress: engine.Progress) -> None:
        on_event(Event(job.name, progress.iteration, progress.total, progress.metrics))

    on_event(Event(job.name, 0, total, started=True))
    try:
        engine.train(
            job.config, job.run_dir, resume=job.resume, callbacks=[logger] if logger else [],
            on_progress=on_progress, should_stop=should_stop,
        )  # fmt: skip
        return "ok", ""
    except DivergenceError as exc:
        return "diverged", str(exc)
    except engine.Interrupted:
        raise
    except LipganError as exc:
        return "failed", str(exc)
    finally:
        if logger is not None:
            logger.close()


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


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_run(jobs: int, threads: int | None) -> int:
    """torch threads per run: the given number, else the cores shared by the jobs; jobs x
    threads may not exceed the cores (threads that wait for a core spin and slow all)."""
    cores = available_cores()
    per_run = threads or max(1, cores // jobs)
    if jobs * per_run > cores:
        raise ConfigError(
            f"--jobs {jobs} x --threads {per_run} = {jobs * per_run} threads on {cores} "
            "cores; lower --jobs or --threads so that jobs x threads <= cores"
        )
    return per_run
