"""Executors: how a grid of runs (a compare's, a tuning study's) gets trained.

``base`` holds the interface every executor implements and the rules every job goes
through (``run_job``); ``local`` runs on this machine. Features submit ``Job``s and read
``Outcome``s; they never ask which executor ran them.
"""

from lipgan.executors.base import (
    MEMORY_NOTE,
    STOP_SIGNALS,
    Event,
    Executor,
    Job,
    NotStarted,
    OnEvent,
    Outcome,
    ShouldStop,
    available_cores,
    check_identity,
    executor_session,
    executor_slots,
    lost_worker_outcome,
    peak_rss_mib,
    reset_peak_rss,
    run_job,
    stop_signals,
    stop_signals_blocked,
    threads_per_run,
    torch_threads,
)
from lipgan.executors.cluster import from_options
from lipgan.executors.local import LocalProcessExecutor

__all__ = [
    "MEMORY_NOTE",
    "STOP_SIGNALS",
    "Event",
    "Executor",
    "Job",
    "LocalProcessExecutor",
    "NotStarted",
    "OnEvent",
    "Outcome",
    "ShouldStop",
    "available_cores",
    "check_identity",
    "executor_session",
    "executor_slots",
    "from_options",
    "lost_worker_outcome",
    "peak_rss_mib",
    "reset_peak_rss",
    "run_job",
    "stop_signals",
    "stop_signals_blocked",
    "threads_per_run",
    "torch_threads",
]
