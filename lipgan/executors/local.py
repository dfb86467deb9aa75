"""The local executor: runs on this machine, in this process or in worker processes.

``LocalProcessExecutor(jobs=N)`` trains in this process when N is 1 (peak memory through
VmHWM resets) and in N spawned worker processes otherwise, each with its share of the
cores. Ctrl-C or SIGTERM asks every running job to stop after its current iteration and
write a checkpoint, so ``--resume`` continues exactly; nothing new starts after it. The
workers handle both signals themselves (through ``run_job``): a signal sent to the whole
process group reaches them too.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue as queue_module
import signal
from collections.abc import Sequence
from multiprocessing import resource_tracker
from typing import Any

import torch

from lipgan import engine
from lipgan.executors.base import (
    Event,
    Job,
    NotStarted,
    OnEvent,
    Outcome,
    ShouldStop,
    lost_worker_outcome,
    peak_rss_mib,
    reset_peak_rss,
    run_job,
    stop_signals_blocked,
    threads_per_run,
    torch_threads,
)


class LocalProcessExecutor:
    """``jobs`` runs at a time on this machine, each with ``threads`` torch threads."""

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = threads_per_run(jobs, threads)

    @property
    def slots(self) -> int:
        return self.jobs

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
            except NotStarted:
                raise
            except engine.Interrupted:
                outcome = Outcome("interrupted", None, "stopped by a signal")
                on_event(Event(job.name, 0, job.config.iters, outcome=outcome))
                raise
            outcomes[job.name] = Outcome(status, peak_rss_mib(reset), message)
            total = job.config.iters
            on_event(Event(job.name, total, total, outcome=outcomes[job.name]))
        return outcomes


def _child(job: Job, events: Any, stop: Any, threads: int) -> None:
    """Entry point of a worker process (spawned: nothing shared but the queue and event).

    The worker starts with the stop signals blocked (``stop_signals_blocked``); ``run_job``
    handles them while the job runs and blocks them again after, so a signal while the
    outcome is sent cannot lose it (the parent's event says stop).
    """
    torch.set_num_threads(threads)

    def forward(event: Event) -> None:
        events.put(("event", event))

    def asked() -> int | None:
        return signal.SIGINT if stop.is_set() else None

    try:
        status, message = run_job(job, forward, asked)
    except NotStarted:
        events.put(("not started", job.name))
        return
    except (engine.Interrupted, KeyboardInterrupt):  # KeyboardInterrupt: a second signal
        status, message = "interrupted", "stopped by a signal"
    except Exception as exc:  # report, never hang the parent
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    events.put(("done", job.name, Outcome(status, peak_rss_mib(False), message)))


class _Workers:
    """One spawned process per running job, at most ``jobs`` at a time."""

    def __init__(self, jobs: int, threads: int, on_event: OnEvent) -> None:
        self.jobs, self.threads, self.on_event = jobs, threads, on_event
        self.context = mp.get_context("spawn")
        # started now: its launch unblocks the stop signals, which the workers' start needs
        # blocked (multiprocessing starts it with the first queue; this makes it explicit)
        resource_tracker.ensure_running()
        self.events = self.context.Queue()
        self.stop = self.context.Event()
        self.running: dict[str, Any] = {}
        self.outcomes: dict[str, Outcome] = {}
        self.signum: int | None = None
        self.should_stop: ShouldStop | None = None

    def run(self, jobs: Sequence[Job], should_stop: ShouldStop | None) -> dict[str, Outcome]:
        waiting = list(jobs)
        self.totals = {job.name: job.config.iters for job in jobs}
        self.should_stop = should_stop
        try:
            while waiting or self.running:
                # asked before every start: nothing new starts after a stop
                while waiting and len(self.running) < self.jobs and not self._stopping():
                    self._start(waiting.pop(0))
                if self._stopping():
                    waiting.clear()
                if self.running:
                    self._receive()
        finally:
            self._end_all()
        if self.signum is not None:
            raise engine.Interrupted("compare stopped", exit_code=128 + self.signum)
        return {job.name: self.outcomes[job.name] for job in jobs}

    def _stopping(self) -> bool:
        """Whether a stop was asked; the first time, every worker is told."""
        if self.signum is None and self.should_stop is not None:
            self.signum = self.should_stop()
            if self.signum is not None:
                self.stop.set()  # every worker checkpoints and ends
        return self.signum is not None

    def _start(self, job: Job) -> None:
        process = self.context.Process(
            target=_child, args=(job, self.events, self.stop, self.threads), daemon=True
        )
        with stop_signals_blocked():
            process.start()
        self.running[job.name] = process

    def _receive(self) -> None:
        try:
            self._handle(self.events.get(timeout=0.5))
        except queue_module.Empty:
            pass
        self._reap()

    def _handle(self, message: tuple) -> None:
        if message[0] == "event":
            self.on_event(message[1])
            return
        name = message[1]
        self.running.pop(name).join()
        if message[0] == "done":
            self._end(name, message[2])

    def _reap(self) -> None:
        """Workers that died without reporting (killed, or a signal while starting)."""
        dead = [n for n, p in self.running.items() if p.exitcode not in (0, None)]
        if not dead:
            return
        with contextlib.suppress(queue_module.Empty):  # what they sent before dying
            while True:
                self._handle(self.events.get_nowait())
        for name in dead:
            if name in self.running:
                process = self.running.pop(name)
                self._end(name, lost_worker_outcome(process.exitcode, self._stopping()))

    def _end(self, name: str, outcome: Outcome) -> None:
        self.outcomes[name] = outcome
        total = self.totals[name]
        self.on_event(Event(name, total, total, outcome=outcome))

    def _end_all(self) -> None:
        """On the way out (a second Ctrl-C): SIGTERM asks each worker to checkpoint."""
        for process in self.running.values():
            process.terminate()
        for process in self.running.values():
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
