"""One run as a submitit job (imported only where submitit is installed).

``SlurmJob.__call__`` trains the run in a thread; ``checkpoint``, which submitit calls on
the main thread when Slurm preempts the job or its time limit nears, asks the run to stop,
waits for the checkpoint it writes, and hands submitit the job to requeue, which resumes
from that checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from lipgan.executors.base import Event, Job, Outcome
from lipgan.executors.cluster import attempt_of, train_attempt
from lipgan.executors.slurm_executor import POLL_SECONDS, Files
from lipgan.runio import atomic_write_text


class _Progress:
    """The job's side of the files: its latest iteration, and the stop file, polled."""

    def __init__(self, files: Files, name: str) -> None:
        self.files, self.name = files, name
        self.iteration, self.total = 0, 0
        self.written = 0.0
        self.signum: int | None = None

    def on_event(self, event: Event) -> None:
        self.iteration, self.total = event.iteration, event.total
        if event.started or time.monotonic() - self.written >= POLL_SECONDS:
            self.write()

    def write(self) -> None:
        record = {"iteration": self.iteration, "total": self.total, "pid": os.getpid()}
        atomic_write_text(self.files.progress(self.name), json.dumps(record) + "\n")
        self.written = time.monotonic()
        if self.files.stop.exists():
            self.signum = int(self.files.stop.read_text().strip() or signal.SIGINT)


class SlurmJob(Checkpointable):
    """One run: ``__call__`` trains, ``checkpoint`` stops at a checkpoint and requeues."""

    def __init__(self, job: Job, threads: int, folder: Path) -> None:
        self.job, self.threads, self.folder = job, threads, folder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"job": self.job, "threads": self.threads, "folder": self.folder}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["job"], state["threads"], state["folder"])

    def __call__(self) -> Outcome | None:
        files = Files(self.folder)
        if files.stop.exists():
            return None  # nothing new starts after a stop
        progress = _Progress(files, self.job.name)
        attempt = attempt_of(self.job)

        def should_stop() -> int | None:
            if self._stop.is_set():
                return signal.SIGUSR2
            if time.monotonic() - progress.written >= POLL_SECONDS:
                progress.write()
            return progress.signum

        result: dict[str, Outcome] = {}

        def train() -> None:
            result["outcome"] = train_attempt(attempt, self.threads, progress.on_event, should_stop)

        self._thread = threading.Thread(target=train, name=f"lipgan-{self.job.name}")
        self._thread.start()
        while self._thread.is_alive():
            self._thread.join(0.5)  # short waits: signal handlers run on this thread
        progress.write()
        return result.get("outcome", Outcome("failed", None, "the training thread raised"))

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """submitit's preemption / time-limit hook: checkpoint now, then be requeued."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # the run stops after this iteration and writes last.pt
        return DelayedSubmission(SlurmJob(self.job, self.threads, self.folder))
