"""The local executor: runs on this machine, in this process or in worker processes.

``LocalProcessExecutor(jobs=N)`` trains in this process when N is 1 (peak memory through
VmHWM resets) and in N spawned worker processes otherwise, each with its share of the
cores. Ctrl-C asks every running job to stop after its current iteration and write a
checkpoint, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import signal
from collections.abc import Sequence
from typing import Any

import torch

from lipgan import engine
from lipgan.executors.base import (
    Event,
    Job,
    OnEvent,
    Outcome,
    ShouldStop,
    peak_rss_mib,
    reset_peak_rss,
    run_job,
    threads_per_run,
    torch_threads,
)


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
