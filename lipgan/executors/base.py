"""What every executor shares: the job it is given, the events it reports, and ``run_job``.

An executor takes jobs (anything with the ``Job`` protocol's fields: a compare's run, a
tuning trial) and reports ``Event``s as they progress and end; the features that submit
jobs never see how. Every job runs through ``run_job``, the ordinary ``engine.train`` on
the job's run folder, so an executor for a cluster (Ray, Slurm) only has to call
``run_job`` where the job runs and forward its events.

The rules every executor gets from ``run_job`` (issue 24; signatures unchanged):

- stop signals: ``run_job`` handles SIGINT and SIGTERM itself while it runs (in the main
  thread of its process, ``stop_signals``), besides asking its ``should_stop``; a stop ends
  the run at a checkpoint with ``engine.Interrupted`` (outcome 'interrupted', exit code
  128 + signal), never as 'failed'. A second signal raises KeyboardInterrupt there.
- nothing new starts after a stop: when a stop was asked before the job started,
  ``run_job`` raises ``NotStarted`` (an ``engine.Interrupted``) without touching its folder;
  an executor records no outcome for such a job and starts no other.
- identity: before training into a folder that already holds a config.toml, ``run_job``
  checks it against the job's resolved config (``check_identity``) and ends the job
  'failed', the folder untouched, when it holds another run.
- worker processes: start them inside ``stop_signals_blocked()``, so a signal that reaches
  a worker while it starts waits for ``run_job``'s handlers.
- a worker that ended without reporting: ``lost_worker_outcome(exit_code, stopping)`` is
  'interrupted' when it died of a stop signal while a stop was asked (a signal sent to the
  whole process group reaches a worker before its handlers exist), else 'failed'.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import torch

from lipgan import engine
from lipgan.callbacks import StopOnSignals
from lipgan.config import TrainConfig, load_toml
from lipgan.errors import ConfigError, DivergenceError, LipganError
from lipgan.runio import RunFolder

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

    When ``should_stop`` returns a signal number, running jobs stop at a checkpoint,
    nothing new starts, and ``engine.Interrupted`` (exit code 128 + signal) is raised once
    the running jobs have ended. Every job runs through ``run_job``.
    """

    def run(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None = None
    ) -> dict[str, Outcome]: ...


# Two optional parts of an executor, read through the functions below so that an executor
# without them (a user's own) still works: ``session()``, a context manager that holds the
# backend open across several ``run`` calls (a tuning study calls ``run`` once per batch of
# trials; Ray would otherwise start and stop an instance each time), and ``slots``, how
# many jobs it trains at once (None: as many as it is given, a Slurm queue).


def executor_session(executor: Executor | None) -> contextlib.AbstractContextManager[Any]:
    """``executor.session()`` where it has one (None: the default, local), else a context
    that does nothing."""
    session = getattr(executor, "session", None)
    return session() if callable(session) else contextlib.nullcontext()


def executor_slots(executor: Executor) -> int | None:
    """How many jobs ``executor`` trains at once (None: unbounded, or not known)."""
    slots = getattr(executor, "slots", None)
    return slots if isinstance(slots, int) and slots >= 1 else None


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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class NotStarted(engine.Interrupted):
    """A stop was asked before the job started: nothing of it was written."""


def run_job(job: Job, on_event: OnEvent, should_stop: ShouldStop | None = None) -> tuple[str, str]:
    """Train one job to its end; returns (status, message), never raising for a run that
    diverged or failed. ``engine.Interrupted`` propagates: a stop (``should_stop`` or a
    SIGINT/SIGTERM to this process) ended the run at a checkpoint, or ``NotStarted``."""
    with stop_signals() as signals:

        def stop() -> int | None:
            return signals() or (should_stop() if should_stop is not None else None)

        signum = stop()
        if signum is not None:
            raise NotStarted(f"{job.name} not started: stopped", exit_code=128 + signum)
        try:
            check_identity(job.run_dir, job.config)
        except LipganError as exc:
            return "failed", str(exc)
        return _train(job, on_event, stop)


def _train(job: Job, on_event: OnEvent, stop: ShouldStop) -> tuple[str, str]:
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
            on_progress=on_progress, should_stop=stop,
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
def stop_signals() -> Iterator[ShouldStop]:
    """SIGINT and SIGTERM ask to stop while the block runs (``StopOnSignals``); yields
    what to ask. Outside the main thread, where Python cannot install handlers, it asks
    nothing and the executor's ``should_stop`` alone decides.

    The two signals are unblocked inside (a worker started under ``stop_signals_blocked``
    receives here one that arrived while it was starting) and blocked again after, as
    they were."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    with StopOnSignals() as signals:
        before = signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        try:
            yield signals
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Start worker processes inside: they begin with SIGINT and SIGTERM blocked (a signal
    mask survives fork and exec), so a signal sent to the process group while a worker is
    still importing waits for the handlers ``run_job`` installs instead of killing it (and
    printing a KeyboardInterrupt traceback). This process gets its own once the block
    ends."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


IDENTITY_EXEMPT = frozenset({"out", "threads"})
"""Fields a run folder's config may differ in from its job's and still hold that run:
where the folder is (a moved compare folder) and the executor's thread count."""


def check_identity(run_dir: Path, config: TrainConfig, only: Sequence[str] | None = None) -> None:
    """Refuse a folder whose config.toml holds another run than ``config`` (a folder
    replaced by hand, another strategy's run); a folder without one is not checked.

    Every field counts but ``IDENTITY_EXEMPT``, or only the fields named in ``only``.
    """
    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        return
    saved = load_toml(folder.config)
    names = only or [f.name for f in fields(TrainConfig) if f.name not in IDENTITY_EXEMPT]
    differs = [name for name in names if getattr(saved, name) != getattr(config, name)]
    if differs:
        name = differs[0]
        raise ConfigError(
            f"run folder {run_dir} holds another run: its config.toml has {name} = "
            f"{getattr(saved, name)!r} where this run has {getattr(config, name)!r}; move "
            "that folder out of the way (nothing in it was changed)"
        )


STOP_EXIT_CODES = frozenset({-s for s in STOP_SIGNALS} | {128 + s for s in STOP_SIGNALS})
"""How a process that a stop signal ended exits: killed by it (-2, -15 as
multiprocessing reports it) or exiting 128 + signal (130, 143)."""


def lost_worker_outcome(exit_code: int | None, stopping: bool) -> Outcome:
    """The outcome of a worker process that ended without reporting one.

    A signal sent to the whole process group (a terminal's Ctrl-C, ``kill -TERM -PGID``,
    Slurm, ``timeout``) reaches a worker that is still starting, before its handlers are
    installed; it dies of the signal having written nothing, and is as resumable as a
    run stopped at a checkpoint.
    """
    if stopping and exit_code in STOP_EXIT_CODES:
        return Outcome("interrupted", None, "stopped by a signal while starting")
    return Outcome("failed", None, f"worker exited with code {exit_code}")


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
