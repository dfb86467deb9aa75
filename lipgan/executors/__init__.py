"""Executors: how a grid of runs (a compare's, a tuning study's) gets trained.

``base`` holds the interface every executor implements and the rules every job goes
through (``run_job``); ``local`` runs on this machine. Features submit ``Job``s and read
``Outcome``s; they never ask which executor ran them.
"""

from lipgan.executors.base import (
    MEMORY_NOTE,
    Event,
    Executor,
    Job,
    OnEvent,
    Outcome,
    ShouldStop,
    available_cores,
    peak_rss_mib,
    reset_peak_rss,
    run_job,
    threads_per_run,
    torch_threads,
)
from lipgan.executors.local import LocalProcessExecutor

__all__ = [
    "MEMORY_NOTE",
    "Event",
    "Executor",
    "Job",
    "LocalProcessExecutor",
    "OnEvent",
    "Outcome",
    "ShouldStop",
    "available_cores",
    "peak_rss_mib",
    "reset_peak_rss",
    "run_job",
    "threads_per_run",
    "torch_threads",
]
