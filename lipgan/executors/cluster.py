"""What the cluster executors (Ray, Slurm) share, and ``from_options``, which builds any
executor from the command line's options (``lipgan compare`` and ``lipgan tune`` both
call it).

On a cluster a job may run more than once: a worker or node dies, a Slurm job is
preempted or reaches its time limit. Every attempt goes through ``train_attempt``, which
continues from the run folder's last checkpoint when an earlier attempt left one (never
from scratch, never counting an iteration twice: the engine truncates the logs to the
checkpoint), and reports a run that ended (ok, diverged, failed on bad input) as a result,
not an exception, so the backend does not retry it.
"""

from __future__ import annotations

import importlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from lipgan import engine
from lipgan.config import TrainConfig
from lipgan.errors import ConfigError
from lipgan.executors.base import (
    Executor,
    Job,
    NotStarted,
    OnEvent,
    Outcome,
    ShouldStop,
    peak_rss_mib,
    reset_peak_rss,
    run_job,
)
from lipgan.runio import RunFolder

EXECUTORS = ("local", "ray", "slurm")
EXTRAS = {"ray": ("ray", "lipgan[ray]"), "slurm": ("submitit", "lipgan[slurm]")}


def require(kind: str) -> ModuleType:
    """The backend's package (ray, submitit), imported now; one line naming the extra to
    install when it is missing (the plain install has neither)."""
    module, extra = EXTRAS[kind]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"--executor {kind} needs the {module} package; install it with: pip install '{extra}'"
        ) from None


def from_options(
    executor: str = "local",
    *,
    jobs: int = 1,
    threads: int | None = None,
    address: str | None = None,
    shared_fs: bool = True,
    partition: str | None = None,
    time_min: int | None = None,
    gpus_per_job: int | None = None,
) -> Executor:
    """The executor the command line asked for (``--executor`` and its options), checked.

    ``jobs`` is local only (on a cluster its CPUs decide how many runs train at once);
    ``address`` and ``shared_fs=False`` are Ray's; ``partition`` and ``time_min`` Slurm's
    (``time_min`` required there); ``gpus_per_job`` either cluster's.
    """
    if executor not in EXECUTORS:
        choices = ", ".join(EXECUTORS)
        raise ConfigError(f"--executor {executor!r} is unknown; choose one of {choices}")
    given = {
        "--address": (address is not None, ("ray",)),
        "--no-shared-fs": (not shared_fs, ("ray",)),
        "--partition": (partition is not None, ("slurm",)),
        "--time": (time_min is not None, ("slurm",)),
        "--gpus-per-job": (gpus_per_job is not None, ("ray", "slurm")),
        "--jobs": (jobs != 1, ("local",)),
    }
    for option, (is_given, kinds) in given.items():
        if is_given and executor not in kinds:
            where = " or ".join(f"--executor {k}" for k in kinds)
            why = "; on a cluster its free CPUs decide" if option == "--jobs" else ""
            raise ConfigError(f"{option} applies to {where} only{why}; drop it")
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    if gpus_per_job is not None and gpus_per_job < 0:
        raise ConfigError(f"--gpus-per-job must be >= 0, got {gpus_per_job}")
    if executor == "local":
        from lipgan.executors.local import LocalProcessExecutor

        return LocalProcessExecutor(jobs, threads)
    require(executor)
    if executor == "ray":
        from lipgan.executors.ray_executor import RayExecutor

        return RayExecutor(address, threads, gpus_per_job, shared_fs=shared_fs)
    if time_min is None or not time_min > 0:
        raise ConfigError(
            "--executor slurm needs --time MINUTES > 0 (each job's time limit; a job that "
            "reaches it is requeued and resumes from its checkpoint)"
        )
    from lipgan.executors.slurm_executor import SlurmExecutor

    return SlurmExecutor(partition, time_min, gpus_per_job, threads)


# --- one attempt of a job, where it runs ------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A job as one attempt trains it: possibly resumed, possibly in another folder."""

    name: str
    config: TrainConfig
    resume: bool
    tensorboard_dir: Path | None
    run_dir: Path


def attempt_of(job: Job, run_dir: Path | None = None) -> Attempt:
    """The job, resumed when its folder holds a checkpoint: an earlier attempt's (a lost
    worker, a requeued Slurm job) or the one ``--resume`` continues. A folder an earlier
    attempt left without a checkpoint starts over (the engine rewrites its logs)."""
    folder = RunFolder(run_dir or job.run_dir)
    resume = folder.last.is_file()
    if resume and not job.resume:
        print(f"lipgan: {job.name} resumes from its checkpoint {folder.last}", file=sys.stderr)
    return Attempt(job.name, job.config, resume, job.tensorboard_dir, folder.root)


def train_attempt(
    attempt: Attempt, threads: int, on_event: OnEvent, should_stop: ShouldStop
) -> Outcome | None:
    """``run_job`` with ``threads`` torch threads: the outcome ('interrupted' for a stop,
    with its checkpoint), or None when a stop came before it started. Only a lost process
    makes the backend retry a job; every end of a run is a result."""
    torch.set_num_threads(threads)  # a reused worker may carry another task's setting
    reset = reset_peak_rss()
    try:
        status, message = run_job(attempt, on_event, should_stop)
    except NotStarted:
        return None
    except engine.Interrupted:
        return Outcome("interrupted", peak_rss_mib(reset), "stopped by a signal")
    return Outcome(status, peak_rss_mib(reset), message)


# --- run folders that travel as bytes (no shared filesystem) -------------------------------


def pack(folder: Path) -> bytes:
    """A run folder as an uncompressed tar (checkpoints do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Write a packed run folder to ``folder`` atomically: into a temporary sibling, then
    renamed into place, so ``folder`` is always either the old copy or the new one."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{folder.name}.incoming-", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(incoming, filter="data")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.rename(folder, old)
        os.rename(incoming, folder)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
