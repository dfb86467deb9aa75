"""Running a compare's jobs: one interface, one local implementation.

An executor takes jobs (``plan.Job``: one entry on one seed, self-contained) and reports
``Event``s as they progress and end; plan, examine and report never see how. Every job
runs through ``run_job``, the ordinary ``engine.train`` on the job's run folder, so a
cluster executor (Ray, Slurm) only has to call ``run_job`` where the run folders are
shared and forward its events; nothing else changes.

``LocalProcessExecutor(jobs=N)`` trains in this process when N is 1 (peak memory through
VmHWM resets) and in N spawned worker processes otherwise, each with its share of the
cores. Ctrl-C asks every running job to stop after its current iteration and write a
checkpoint, so ``lipgan compare --resume`` continues exactly.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue as queue_module
import resource
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch

from lipgan import engine
from lipgan.compare.plan import Job, threads_per_run
from lipgan.errors import DivergenceError, LipganError

MEMORY_NOTE = (
    "peak resident memory (MiB) of the process while the run trained: the child process's "
    "ru_maxrss with --jobs > 1; with --jobs 1 the Linux high-water mark VmHWM, reset before "
    "each run through /proc/self/clear_refs (the process-wide ru_maxrss where that is "
    "unavailable, then an upper bound)"
)


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


class LocalProcessExecutor:
    """``jobs`` runs at a time on this machine, each with ``threads`` torch threads."""

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = threads_per_run(jobs, threads)

    def run(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None = None
    ) -> dict[str, Outcome]:
        if self.jobs == 1:
            with torch_threads(self.threads):
                return self._in_process(jobs, on_event, should_stop)
        return _Workers(self.jobs, self.threads, on_event).run(jobs, should_stop)

    def _in_process(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None
    ) -> dict[str, Outcome]:
        outcomes = {}
        for job in jobs:
            reset = reset_peak_rss()
            try:
                status, message = run_job(job, on_event, should_stop)
            except engine.Interrupted:
                outcome = Outcome("interrupted", None, "stopped by a signal")
                on_event(Event(job.name, 0, job.config.iters, outcome=outcome))
                raise
            outcomes[job.name] = Outcome(status, peak_rss_mib(reset), message)
            total = job.config.iters
            on_event(Event(job.name, total, total, outcome=outcomes[job.name]))
        return outcomes


def _child(job: Job, events: Any, stop: Any, threads: int) -> None:
    """Entry point of a worker process (spawned: nothing shared but the queue and event)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    torch.set_num_threads(threads)

    def forward(event: Event) -> None:
        events.put(("event", event))

    try:
        status, message = run_job(job, forward, lambda: signal.SIGINT if stop.is_set() else None)
    except engine.Interrupted:
        status, message = "interrupted", "stopped by a signal"
    except Exception as exc:  # report, never hang the parent
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    events.put(("done", job.name, Outcome(status, peak_rss_mib(False), message)))


class _Workers:
    """One spawned process per running job, at most ``jobs`` at a time."""

    def __init__(self, jobs: int, threads: int, on_event: OnEvent) -> None:
        self.jobs, self.threads, self.on_event = jobs, threads, on_event
        self.context = mp.get_context("spawn")
        self.events = self.context.Queue()
        self.stop = self.context.Event()
        self.running: dict[str, Any] = {}
        self.outcomes: dict[str, Outcome] = {}

    def run(self, jobs: Sequence[Job], should_stop: ShouldStop | None) -> dict[str, Outcome]:
        waiting = list(jobs)
        totals = {job.name: job.config.iters for job in jobs}
        signum = None
        try:
            while waiting or self.running:
                while waiting and len(self.running) < self.jobs and signum is None:
                    self._start(waiting.pop(0))
                if signum is None and should_stop is not None:
                    signum = should_stop()
                    if signum is not None:
                        self.stop.set()  # every worker checkpoints and ends
                        waiting.clear()
                self._receive(totals)
        finally:
            for process in self.running.values():
                process.terminate()
                process.join()
        if signum is not None:
            raise engine.Interrupted("compare stopped", exit_code=128 + signum)
        return {job.name: self.outcomes[job.name] for job in jobs}

    def _start(self, job: Job) -> None:
        process = self.context.Process(
            target=_child, args=(job, self.events, self.stop, self.threads), daemon=True
        )
        process.start()
        self.running[job.name] = process

    def _receive(self, totals: dict[str, int]) -> None:
        try:
            message = self.events.get(timeout=0.5)
        except queue_module.Empty:
            for name, process in list(self.running.items()):
                if not process.is_alive() and process.exitcode not in (0, None):
                    self.running.pop(name)
                    text = f"worker exited with code {process.exitcode}"
                    self._end(name, Outcome("failed", None, text), totals[name])
            return
        if message[0] == "event":
            self.on_event(message[1])
        else:
            _, name, outcome = message
            self.running.pop(name).join()
            self._end(name, outcome, totals[name])

    def _end(self, name: str, outcome: Outcome, total: int) -> None:
        self.outcomes[name] = outcome
        self.on_event(Event(name, total, total, outcome=outcome))
