"""The Slurm executor: every job a Slurm job, submitted through submitit.

``SlurmExecutor(partition, time_min)`` submits one job per run with ``threads`` CPUs,
``gpus`` GPUs and the time limit ``time_min`` (always passed: submitit's own default is
short). Every job is a ``submitit.helpers.Checkpointable``: when Slurm preempts it or its
time limit nears, submitit signals it, the run stops after its current iteration and
writes a checkpoint, and submitit requeues the job, which then resumes from that
checkpoint (``cluster.attempt_of``). Training runs in a thread of the job so the signal
handler, which runs on the main thread, can wait for that checkpoint.

The run folders and the executor's folder (job logs, progress files, the stop file) must
be on a filesystem the nodes share, as on any Slurm cluster. Progress reaches the driver
through one small file per job, rewritten about once a second; a stop is a file the jobs
look for.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lipgan import engine
from lipgan.errors import ConfigError
from lipgan.executors.base import Event, Job, OnEvent, Outcome, ShouldStop
from lipgan.executors.cluster import require
from lipgan.runio import atomic_write_text

POLL_SECONDS = 1.0
"""How often a job rewrites its progress file and looks for the stop file."""


class Files:
    """The files through which the driver and its jobs talk."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.stop = self.folder / "stop"
        self.progress_dir = self.folder / "progress"

    def progress(self, name: str) -> Path:
        return self.progress_dir / f"{name}.json"


class SlurmExecutor:
    """One Slurm job per run on ``partition`` (None: the cluster's default), each with a
    ``time_min`` minute limit, ``threads`` CPUs (None: the run's own ``threads``, else 1)
    and ``gpus`` GPUs (None: 1 when the run's device is cuda, else 0)."""

    def __init__(
        self,
        partition: str | None,
        time_min: int,
        gpus: int | None = None,
        threads: int | None = None,
        *,
        folder: Path | None = None,
        cluster: str = "slurm",
        signal_delay_s: int | None = None,
        max_requeues: int = 3,
    ) -> None:
        if cluster == "slurm" and shutil.which("srun") is None:
            raise ConfigError(
                "--executor slurm needs Slurm, and srun is not on this machine's PATH; run "
                "lipgan on the cluster's login node"
            )
        self.partition, self.time_min, self.gpus, self.threads = partition, time_min, gpus, threads
        self.folder, self.cluster = folder, cluster
        self.signal_delay_s, self.max_requeues = signal_delay_s, max_requeues

    def run(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None = None
    ) -> dict[str, Outcome]:
        submitit = require("slurm")
        files = Files(self.folder or _default_folder(jobs))
        files.progress_dir.mkdir(parents=True, exist_ok=True)
        files.stop.unlink(missing_ok=True)
        from lipgan.executors.slurm_job import SlurmJob  # imports submitit

        executor = submitit.AutoExecutor(
            folder=files.folder / "logs",
            cluster=self.cluster,
            slurm_max_num_timeout=self.max_requeues,
            local_max_num_timeout=self.max_requeues,
        )
        parameters: dict[str, Any] = {"name": "lipgan", "timeout_min": self.time_min}
        if self.partition is not None:
            parameters["slurm_partition"] = self.partition
        if self.signal_delay_s is not None:
            parameters[f"{self.cluster}_signal_delay_s"] = self.signal_delay_s
        submitted = {}
        for job in jobs:
            files.progress(job.name).unlink(missing_ok=True)
            threads = self.threads or job.config.threads or 1
            gpus = self.gpus if self.gpus is not None else int(job.config.device == "cuda")
            executor.update_parameters(cpus_per_task=threads, gpus_per_node=gpus, **parameters)
            submitted[job.name] = executor.submit(SlurmJob(job, threads, files.folder))
        return self._wait(jobs, submitted, files, on_event, should_stop)

    def _wait(
        self,
        jobs: Sequence[Job],
        submitted: dict[str, Any],
        files: Files,
        on_event: OnEvent,
        should_stop: ShouldStop | None,
    ) -> dict[str, Outcome]:
        seen: dict[str, int] = {}
        outcomes: dict[str, Outcome] = {}
        signum = None
        pending = {job.name: job for job in jobs}
        while pending:
            time.sleep(POLL_SECONDS / 2)
            for name, job in list(pending.items()):
                self._forward_progress(files, job, seen, on_event)
                handle = submitted[name]
                if not handle.done():
                    continue
                del pending[name]
                outcome = _result(handle, stopping=signum is not None)
                if outcome is None:
                    continue  # stopped before it started
                outcomes[name] = outcome
                total = job.config.iters
                on_event(Event(name, total, total, outcome=outcome))
            if signum is None and should_stop is not None:
                signum = should_stop()
                if signum is not None:
                    atomic_write_text(files.stop, f"{signum}\n")  # every job checkpoints
                    for name in pending:
                        if name not in seen and submitted[name].state == "PENDING":
                            submitted[name].cancel(check=False)
        if signum is not None:
            raise engine.Interrupted("compare stopped", exit_code=128 + signum)
        return {job.name: outcomes[job.name] for job in jobs}

    @staticmethod
    def _forward_progress(files: Files, job: Job, seen: dict[str, int], on_event: OnEvent) -> None:
        try:
            record = json.loads(files.progress(job.name).read_text("utf-8"))
        except (OSError, ValueError):
            return
        iteration = int(record["iteration"])
        if job.name not in seen:
            on_event(Event(job.name, 0, job.config.iters, started=True))
        if seen.get(job.name) != iteration:
            seen[job.name] = iteration
            on_event(Event(job.name, iteration, job.config.iters))


def _result(handle: Any, stopping: bool) -> Outcome | None:
    try:
        return handle.result()
    except Exception as exc:  # submitit re-raises the job's failure here
        if stopping:  # a job the stop's signal reached before its handlers: resumable
            return Outcome("interrupted", None, "stopped by a signal")
        lines = str(exc).strip().splitlines()
        return Outcome("failed", None, f"{type(exc).__name__}: {lines[-1] if lines else ''}")


def _default_folder(jobs: Sequence[Job]) -> Path:
    """Beside the runs' parent folder: <compare>/slurm for a compare's <compare>/runs/*."""
    parent = Path(os.path.commonpath([str(Path(job.run_dir).parent) for job in jobs]))
    return parent.parent / "slurm"
