"""The Ray executor: every job is a Ray Core task, on this machine or on a Ray cluster.

``RayExecutor(address)`` joins the cluster at ``address`` ('auto' or HOST:PORT) or, without
one, starts a Ray instance on this machine's cores (and stops it at the end). Each task
asks for ``threads`` CPUs (and ``gpus`` GPUs: by default one when the run's device is
cuda; Ray hides the GPUs from a task that asked for none) and sets torch's thread count
itself. Tasks send their events, and learn of a stop, through one small actor (the
board, ``_board_class``) that the driver drains, so the live display covers the whole grid.

A worker or node that dies is retried by Ray (``max_retries``; exceptions are never
retried) and the retry resumes from the run's last checkpoint (``cluster.attempt_of``).
Run folders are on a filesystem every node shares, checked at the start by a probe file;
with ``shared_fs=False`` each task trains into a folder of its node's temporary directory
and returns the finished folder as bytes, which the driver writes atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lipgan import engine
from lipgan.errors import ConfigError
from lipgan.executors.base import Event, Job, OnEvent, Outcome, ShouldStop, available_cores
from lipgan.executors.cluster import (
    attempt_of,
    pack,
    require,
    train_attempt,
    unpack,
)

FLUSH_SECONDS = 0.25
"""How often a task sends its buffered events and asks whether to stop (one round trip)."""


def _board_class() -> type:
    """The board's class, made here so that Ray ships it by value: its worker then imports
    neither lipgan nor torch (seconds of start-up, on the path of every task's first
    exchange). Events travel as plain dicts for the same reason (``_plain``/``_event``)."""

    class Board:
        """A Ray actor: the tasks' events, waiting for the driver, and the stop request."""

        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []
            self.signum: int | None = None

        def exchange(self, events: list[dict[str, Any]]) -> int | None:
            self.events.extend(events)
            return self.signum

        def drain(self) -> list[dict[str, Any]]:
            events, self.events = self.events, []
            return events

        def stop(self, signum: int) -> None:
            self.signum = signum

        def reset(self) -> None:
            """A new grid on the same board: no events, no stop."""
            self.events, self.signum = [], None

    return Board


def _plain(event: Event) -> dict[str, Any]:
    return dataclasses.asdict(event)


def _event(plain: dict[str, Any]) -> Event:
    outcome = plain.get("outcome")
    return Event(**{**plain, "outcome": None if outcome is None else Outcome(**outcome)})


class _Reporter:
    """A task's side of the board: buffers events and sends them with the stop question,
    without waiting for the answer (a round trip to the actor on a busy node would stall
    training), except at the start and the end."""

    def __init__(self, board: Any) -> None:
        self.board, self.buffer = board, []
        self.signum: int | None = None
        self.sent = time.monotonic()
        self.in_flight: Any = None

    def on_event(self, event: Event) -> None:
        self.buffer.append(_plain(event))

    def should_stop(self) -> int | None:
        if time.monotonic() - self.sent >= FLUSH_SECONDS:
            import ray

            if self.in_flight is not None and ray.wait([self.in_flight], timeout=0)[0]:
                self.signum = ray.get(self.in_flight) or self.signum
                self.in_flight = None
            if self.in_flight is None:
                self.in_flight = self.board.exchange.remote(self.buffer)
                self.buffer, self.sent = [], time.monotonic()
        return self.signum

    def flush(self) -> int | None:
        """Send what is buffered and wait for the answer (the driver then has every event
        before the task's result)."""
        if self.in_flight is not None:
            self.signum = _answer(self.in_flight) or self.signum
        self.signum = _answer(self.board.exchange.remote(self.buffer)) or self.signum
        self.buffer, self.in_flight, self.sent = [], None, time.monotonic()
        return self.signum


def _answer(ref: Any) -> Any:
    """``ray.get`` without blocking inside Ray. A task blocked in ``ray.get`` (or polling
    ``ray.wait``) lends its CPUs back to the scheduler, which starts the next queued task
    on them; the two then train side by side on one task's CPUs (measured: two runs at
    once on a 1-CPU instance). Waiting on the reference's future blocks only this thread,
    so the task keeps its CPUs."""
    return ref.future().result()


def _train_task(
    job: Job, board: Any, threads: int, shared_fs: bool, folder: bytes | None
) -> tuple[Outcome | None, bytes | None]:
    """One job in a Ray worker: (outcome, the packed run folder without a shared
    filesystem); (None, None) when a stop came before it started."""
    reporter = _Reporter(board)
    reporter.flush()  # learn of a stop before starting: then run_job starts nothing
    try:
        if shared_fs:
            attempt = attempt_of(job)
            return train_attempt(attempt, threads, reporter.on_event, reporter.should_stop), None
        local = _node_folder(job)
        if not (local / "checkpoints" / "last.pt").is_file():  # not a retry on this node
            shutil.rmtree(local, ignore_errors=True)
            if folder is not None:
                unpack(folder, local)
        attempt = attempt_of(job, local)
        outcome = train_attempt(attempt, threads, reporter.on_event, reporter.should_stop)
        packed = pack(local) if outcome is not None and local.is_dir() else None
        shutil.rmtree(local, ignore_errors=True)
        return outcome, packed
    finally:
        reporter.flush()


def _node_folder(job: Job) -> Path:
    """Where a job trains without a shared filesystem: a retry on the same node finds it."""
    key = zlib.crc32(str(Path(job.run_dir).absolute()).encode())
    return Path(tempfile.gettempdir()) / "lipgan-ray-runs" / f"{job.name}-{key:08x}"


@contextlib.contextmanager
def _normal_priority_workers() -> Iterator[None]:
    """Ray runs its workers at nice 15 unless told otherwise (the raylet reads
    RAY_worker_niceness when it starts); on a machine shared with other work that makes
    every run yield to everything else, so a local instance runs them at 0, as local
    processes do."""
    before = os.environ.get(WORKER_NICENESS)
    os.environ[WORKER_NICENESS] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(WORKER_NICENESS)
        else:
            os.environ[WORKER_NICENESS] = before


WORKER_NICENESS = "RAY_worker_niceness"


def _probe_task(path: str, token: str) -> tuple[str, bool]:
    try:
        return socket.gethostname(), Path(path).read_text("utf-8") == token
    except OSError:
        return socket.gethostname(), False


class RayExecutor:
    """Every job a Ray task with ``threads`` CPUs (None: the run's own ``threads``, else
    1), on the cluster at ``address`` (None: a Ray instance started on this machine)."""

    def __init__(
        self,
        address: str | None = None,
        threads: int | None = None,
        gpus: int | None = None,
        *,
        shared_fs: bool = True,
        max_retries: int = 3,
    ) -> None:
        self.address, self.threads, self.gpus = address, threads, gpus
        self.shared_fs, self.max_retries = shared_fs, max_retries
        self._depth = 0
        self._board: Any = None
        self._checked: set[Path] = set()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Connected to the cluster (or a local instance started) for every ``run`` inside,
        with one progress board and one shared-folder check per folder: a worker for the
        board costs seconds to start (it imports torch), which a study would otherwise pay
        per batch of trials. A Ray connection already open (the caller's own ``ray.init``)
        is kept."""
        ray = require("ray")
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                if self._board is not None:
                    ray.kill(self._board)
                self._board, self._checked = None, set()
            if started_here:
                ray.shutdown()

    @property
    def slots(self) -> int | None:
        """Tasks the cluster trains at once: its CPUs over each task's (None before a
        session, or on a cluster that can grow: its CPUs now are a lower bound)."""
        ray = require("ray")
        if not ray.is_initialized():
            return None
        cpus = ray.cluster_resources().get("CPU", 0)
        return max(1, int(cpus // (self.threads or 1)))

    def run(
        self, jobs: Sequence[Job], on_event: OnEvent, should_stop: ShouldStop | None = None
    ) -> dict[str, Outcome]:
        ray = require("ray")
        if not self.shared_fs and any(job.tensorboard_dir is not None for job in jobs):
            raise ConfigError(
                "--tensorboard writes beside the runs and needs a shared filesystem; "
                "drop --tensorboard or --no-shared-fs"
            )
        with self.session():
            if self._board is None:
                self._board = ray.remote(num_cpus=0)(_board_class()).remote()
            else:
                ray.get(self._board.reset.remote())
            if self.shared_fs and jobs:
                self._check_shared_folder(ray, jobs)
            return self._run(ray, jobs, self._board, on_event, should_stop)

    def _connect(self, ray: Any) -> None:
        options: dict[str, Any] = {"include_dashboard": False}
        try:
            if self.address is None:
                with _normal_priority_workers():
                    ray.init(num_cpus=available_cores(), **options)
            else:
                ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(
                f"cannot reach a Ray cluster at --address {self.address}: {first}; start one "
                "with `ray start --head` or drop --address to run on this machine"
            ) from None

    def _check_shared_folder(self, ray: Any, jobs: Sequence[Job]) -> None:
        """Every node must see the driver's folder: a probe file written here, read there."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        folder = Path(os.path.commonpath([str(Path(job.run_dir).parent) for job in jobs]))
        if folder in self._checked:  # this session's nodes already saw it
            return
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        probe = folder / f".lipgan-probe-{token}"
        probe.write_text(token, "utf-8")
        try:
            task = ray.remote(num_cpus=0)(_probe_task)
            nodes = [node for node in ray.nodes() if node.get("Alive")]
            answers = ray.get(
                [
                    task.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], False)
                    ).remote(str(probe), token)
                    for node in nodes
                ]
            )
        finally:
            probe.unlink(missing_ok=True)
        blind = [host for host, seen in answers if not seen]
        if not blind:
            self._checked.add(folder)
        if blind:
            raise ConfigError(
                f"Ray node {blind[0]} cannot see {folder} (the run folders must be on a "
                "filesystem every node mounts at the same absolute path); put --out there, "
                "or pass --no-shared-fs to send each run folder back to this machine"
            )

    def _run(
        self,
        ray: Any,
        jobs: Sequence[Job],
        board: Any,
        on_event: OnEvent,
        should_stop: ShouldStop | None,
    ) -> dict[str, Outcome]:
        task = ray.remote(_train_task)
        pending = {}
        for job in jobs:
            folder = None
            if not self.shared_fs and Path(job.run_dir, "checkpoints", "last.pt").is_file():
                folder = pack(Path(job.run_dir))  # a --resume: the task continues this
            threads = self.threads or job.config.threads or 1
            ref = task.options(
                num_cpus=threads,
                num_gpus=self._gpus(job),
                max_retries=self.max_retries,
                retry_exceptions=False,  # an exception is a bug, not a lost worker
            ).remote(job, board, threads, self.shared_fs, folder)
            pending[ref] = job
        outcomes: dict[str, Outcome] = {}
        signum = None
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=FLUSH_SECONDS)
            for plain in ray.get(board.drain.remote()):
                on_event(_event(plain))
            for ref in ready:
                job = pending.pop(ref)
                outcome = self._result(ray, ref, job)
                if outcome is None:
                    continue  # stopped before it started: --resume trains it
                outcomes[job.name] = outcome
                total = job.config.iters
                on_event(Event(job.name, total, total, outcome=outcome))
            if signum is None and should_stop is not None:
                signum = should_stop()
                if signum is not None:
                    board.stop.remote(signum)  # every task checkpoints and ends
        if signum is not None:
            raise engine.Interrupted("compare stopped", exit_code=128 + signum)
        return {job.name: outcomes[job.name] for job in jobs}

    def _gpus(self, job: Job) -> float:
        if self.gpus is not None:
            return self.gpus
        return 1 if str(job.config.device).startswith("cuda") else 0

    def _result(self, ray: Any, ref: Any, job: Job) -> Outcome | None:
        try:
            outcome, folder = ray.get(ref)
        except ray.exceptions.RayError as exc:  # retries used up, or an unexpected error
            lines = str(exc).strip().splitlines()
            return Outcome("failed", None, f"{type(exc).__name__}: {lines[-1] if lines else ''}")
        if folder is not None:
            unpack(folder, Path(job.run_dir))
        return outcome
