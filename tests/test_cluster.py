"""The cluster executors on this machine: a real local Ray instance (one per test session)
and submitit's local executor (real subprocesses), against the same grid trained by
local processes. Tiny budgets; what is compared is exact (metrics logs, results.json)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipgan import callbacks, engine, executors
from lipgan.cli import app
from lipgan.compare import plan
from lipgan.errors import ConfigError
from lipgan.executors import LocalProcessExecutor
from lipgan.runio import RunFolder
from lipgan.runs import build_config

TINY = [
    "--iters", "6", "--hidden", "8", "--critic-layers", "2", "--generator-layers", "1",
    "--batch-size", "32", "--log-every", "2", "--eval-samples", "32", "--threads", "1",
]  # fmt: skip
TINY_CONFIG = {
    "iters": 6, "hidden": 8, "critic_layers": 2, "generator_layers": 1, "batch_size": 32,
    "log_every": 2, "eval_samples": 32, "threads": 1,
}  # fmt: skip
"""TINY as the CLI builds it, for tests that call an executor without a report."""
GRID = ["--constraints", "clip,gp", "--seeds", "2", "--threshold", "100", *TINY]
RUNS = ["clip@0.01__s0", "clip@0.01__s1", "gp__s0", "gp__s1"]
WALL_CLOCK = {
    "seconds_per_step", "seconds_to_threshold", "peak_memory_mib", "command", "training_seconds",
}  # fmt: skip


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def without_wall_clock(value):
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


def results(folder: Path):
    return without_wall_clock(json.loads((folder / "results.json").read_text()))


def metrics(folder: Path) -> str:
    return RunFolder(folder).metrics.read_text()


def final(folder: Path) -> dict:
    """summary.json without its wall-clock fields."""
    summary = json.loads(RunFolder(folder).summary.read_text())
    return {k: v for k, v in summary.items() if not k.startswith("seconds")}


@pytest.fixture(scope="session")
def ray_instance():
    ray = pytest.importorskip("ray")
    from lipgan.executors.ray_executor import _normal_priority_workers

    with _normal_priority_workers():  # as RayExecutor starts its own instance
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory) -> Path:
    """The reference: the 2 x 2 grid trained in this process (--jobs 1)."""
    out = tmp_path_factory.mktemp("local") / "grid"
    result = invoke("compare", "--out", str(out), "--jobs", "1", *GRID)
    assert result.exit_code == 0, result.output
    return out


# --- options and missing extras (no cluster needed) --------------------------------------


@pytest.mark.parametrize(
    ("kind", "module", "extra"),
    [("ray", "ray", "lipgan[ray]"), ("slurm", "submitit", "lipgan[slurm]")],
)
def test_an_executor_whose_extra_is_missing_names_the_install(
    monkeypatch, tmp_path, kind, module, extra
):
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    limit = {"time_min": 5} if kind == "slurm" else {}
    with pytest.raises(ConfigError, match=re.escape(f"pip install '{extra}'")):
        executors.from_options(kind, **limit)
    out = tmp_path / "r"
    args = ["compare", "--executor", kind, *(["--time", "5"] if limit else []), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and f"pip install '{extra}'" in result.output
    assert not out.exists()  # refused before the folder was claimed


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"address": "auto"}, "--address applies to --executor ray only"),
        ({"shared_fs": False}, "--no-shared-fs applies to --executor ray only"),
        ({"partition": "gpu"}, "--partition applies to --executor slurm only"),
        ({"executor": "ray", "jobs": 2}, "--jobs applies to --executor local only"),
        ({"executor": "slurm", "time_min": 5, "address": "auto"}, "--address applies to"),
        ({"executor": "slurm"}, "--executor slurm needs --time MINUTES > 0"),
        ({"executor": "ray", "gpus_per_job": -1}, "--gpus-per-job must be >= 0"),
        ({"executor": "slurm", "time_min": 5}, "srun is not on this machine's PATH"),
    ],
)
def test_executor_options_for_another_executor_are_one_line_errors(options, message):
    kind = options.pop("executor", "local")
    with pytest.raises(ConfigError, match=message):
        executors.from_options(kind, **options)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "-c", "gp", "--executor", "ray", "--jobs", "2"], "--jobs applies to"),
        (["tune", "-c", "gp", "--executor", "slurm"], "--executor slurm needs --time"),
        (["compare", "--tune", "2", "--executor", "slurm"], "--executor slurm needs --time"),
        (["compare", "--tune", "2", "--partition", "gpu"], "--partition applies to"),
    ],
)
def test_tune_refuses_bad_executor_options_before_claiming_its_folder(tmp_path, args, message):
    out = tmp_path / "study"
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message in result.output
    assert not out.exists()


def test_local_is_the_default_executor_and_needs_no_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "submitit", None)
    executor = executors.from_options("local", jobs=1, threads=1)
    assert isinstance(executor, LocalProcessExecutor) and executor.threads == 1


def test_a_packed_run_folder_is_written_back_whole(tmp_path):
    from lipgan.executors.cluster import pack, unpack

    source = tmp_path / "source"
    (source / "checkpoints").mkdir(parents=True)
    (source / "metrics.jsonl").write_text('{"step": 1}\n')
    (source / "checkpoints" / "last.pt").write_bytes(bytes(range(256)) * 10)
    target = tmp_path / "runs" / "gp__s0"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("an older copy")
    unpack(pack(source), target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "checkpoints", "checkpoints/last.pt", "metrics.jsonl",
    ]  # fmt: skip
    assert (target / "checkpoints" / "last.pt").read_bytes() == bytes(range(256)) * 10
    assert os.listdir(target.parent) == ["gp__s0"]  # no temporary sibling left behind


# --- Ray -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_ray_compare_gives_the_local_results(ray_instance, local_grid, tmp_path):
    out = tmp_path / "ray"
    result = invoke("compare", "--out", str(out), "--executor", "ray", *GRID)
    assert result.exit_code == 0, result.output
    for name in RUNS:
        assert metrics(out / "runs" / name) == metrics(local_grid / "runs" / name)
    assert results(out) == results(local_grid)
    peaks = [
        row["peak_memory_mib"]
        for row in json.loads((out / "results.json").read_text())["runs"].values()
    ]
    assert all(peak > 50 for peak in peaks)  # each Ray worker's own high-water mark


@pytest.mark.slow
def test_no_shared_fs_brings_every_run_folder_back(ray_instance, local_grid, tmp_path):
    from lipgan.executors.ray_executor import RayExecutor

    base = build_config(None, TINY_CONFIG, check_options=False)
    setup = plan.setup(base, plan.plan("clip,gp", [0.01]), tmp_path / "nfs", seeds=[0, 1])
    outcomes = RayExecutor(threads=1, shared_fs=False).run(setup.jobs, lambda event: None)
    assert {o.status for o in outcomes.values()} == {"ok"}
    for name in RUNS:
        run, reference = tmp_path / "nfs" / "runs" / name, local_grid / "runs" / name
        assert metrics(run) == metrics(reference) and final(run) == final(reference)
        config = (
            RunFolder(reference).config.read_text().replace(str(local_grid), str(tmp_path / "nfs"))
        )
        assert RunFolder(run).config.read_text() == config  # its own path, not the node's
        files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
        assert files == sorted(p.relative_to(reference).as_posix() for p in reference.rglob("*"))
    assert sorted(os.listdir(tmp_path / "nfs" / "runs")) == RUNS  # nothing half-written beside


@pytest.mark.slow
def test_the_shared_folder_check_names_a_folder_the_tasks_cannot_see(
    ray_instance, tmp_path, monkeypatch
):
    from lipgan.executors import ray_executor

    base = build_config(None, {"iters": 2, "hidden": 8, "batch_size": 32, "threads": 1})
    setup = plan.setup(base, plan.plan("gp", None), tmp_path / "cmp", seeds=[0])
    elsewhere = tmp_path / "elsewhere"  # what the driver's path is on the task's node
    probe = ray_executor._probe_task

    def on_another_node(path: str, token: str):
        return probe(path.replace(str(tmp_path), str(elsewhere)), token)

    monkeypatch.setattr(ray_executor, "_probe_task", on_another_node)  # pickled by value
    runs = tmp_path / "cmp" / "runs"
    with pytest.raises(
        ConfigError, match=rf"^Ray node \S+ cannot see {runs} .*or pass --no-shared-fs"
    ):
        ray_executor.RayExecutor(threads=1).run(setup.jobs, lambda event: None)
    assert not any(runs.glob(".lipgan-probe-*"))  # the probe is removed
    assert not RunFolder(runs / "gp__s0").metrics.exists()  # nothing trained


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _processes_titled(prefix: bytes) -> list[int]:
    """This session's Ray processes whose title starts with ``prefix`` (Ray titles a worker
    by its task's function or its actor's class; their parent is the raylet this process
    started)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if (entry / "cmdline").read_bytes().startswith(prefix):
                    if _parent(_parent(int(entry.name))) == os.getpid():
                        found.append(int(entry.name))
    return found


def _task_workers() -> list[int]:
    """This session's Ray workers running a training task."""
    return _processes_titled(b"ray::_train_task")


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_from_the_checkpoint(ray_instance, tmp_path):
    from lipgan.executors.ray_executor import RayExecutor

    base = build_config(
        None,
        {"iters": 300, "hidden": 8, "batch_size": 32, "threads": 1, "log_every": 20,
         "checkpoint_every": 20, "eval_samples": 32},
    )  # fmt: skip
    reference = plan.setup(base, plan.plan("gp", None), tmp_path / "ref", seeds=[0])
    LocalProcessExecutor(1, 1).run(reference.jobs, lambda event: None)
    grid = plan.setup(base, plan.plan("gp", None), tmp_path / "ray", seeds=[0])
    killed: list[int] = []
    events = []

    def kill_once_past_a_checkpoint(event) -> None:
        events.append(event)
        # one run, so one training worker: kill it once a checkpoint is behind it
        if not killed and event.outcome is None and event.iteration >= 30:
            workers = _task_workers()
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])

    outcomes = RayExecutor(threads=1).run(grid.jobs, kill_once_past_a_checkpoint)
    assert killed, "no worker was killed: the run ended before iteration 30 was seen"
    assert {name: o.status for name, o in outcomes.items()} == {"gp__s0": "ok"}
    for ours, theirs in zip(grid.jobs, reference.jobs, strict=True):
        assert metrics(ours.run_dir) == metrics(theirs.run_dir)  # no step logged twice
        assert final(ours.run_dir) == final(theirs.run_dir)
    # the retried run started again, and its first progress after that was past a checkpoint
    restarted = [e.name for e in events if e.started]
    again = next(name for name in set(restarted) if restarted.count(name) == 2)
    second_start = [i for i, e in enumerate(events) if e.name == again and e.started][1]
    first_after = next(e for e in events[second_start:] if e.name == again and not e.started)
    assert first_after.iteration > 20 and first_after.iteration % 20 == 1


@pytest.mark.slow
def test_a_stopped_ray_compare_resumes_with_no_run_lost_or_trained_twice(
    ray_instance, local_grid, tmp_path, monkeypatch
):
    out = tmp_path / "stopped"

    @contextlib.contextmanager
    def stop_once_a_run_has_ended():
        yield lambda: signal.SIGINT if (out / "outcomes.json").exists() else None

    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "StopOnSignals", stop_once_a_run_has_ended)
        stopped = CliRunner().invoke(
            app, ["compare", "--out", str(out), "--executor", "ray", *GRID]
        )
    assert stopped.exit_code == 130, stopped.output
    assert f"lipgan compare --resume {out}" in stopped.output
    outcomes = json.loads((out / "outcomes.json").read_text())
    done = [name for name, o in outcomes.items() if o["status"] == "ok"]
    assert 1 <= len(done) < len(RUNS)
    assert all(o["status"] in ("ok", "interrupted") for o in outcomes.values())
    stamps = {name: RunFolder(out / "runs" / name).summary.stat().st_mtime_ns for name in done}
    resumed = invoke("compare", "--resume", str(out), "--executor", "ray")
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(done)} reused" in resumed.output
    assert stamps == {n: RunFolder(out / "runs" / n).summary.stat().st_mtime_ns for n in done}
    for name in RUNS:
        assert metrics(out / "runs" / name) == metrics(local_grid / "runs" / name)
    assert results(out) == results(local_grid)


@pytest.mark.slow
def test_a_ray_session_keeps_one_board_and_a_stop_does_not_outlive_its_grid(
    ray_instance, local_grid, tmp_path
):
    """run() calls inside one session share the progress board (a study's batches do not
    each start a worker for it); a stop asked in one grid is not seen by the next."""
    from lipgan.executors.ray_executor import RayExecutor

    base = build_config(None, TINY_CONFIG)
    first = plan.setup(base, plan.plan("clip,gp", [0.01]), tmp_path / "first", seeds=[0, 1])
    second = plan.setup(base, plan.plan("clip,gp", [0.01]), tmp_path / "second", seeds=[0, 1])
    executor = RayExecutor(threads=1)
    with executor.session():
        with pytest.raises(engine.Interrupted):
            executor.run(first.jobs, lambda event: None, lambda: signal.SIGINT)
        board = executor._board
        outcomes = executor.run(second.jobs, lambda event: None)
        assert executor._board is board  # the same actor, reset
        # the board's worker starts in about a second: it never imports torch
        (pid,) = _processes_titled(b"ray::Board")
        assert "libtorch" not in Path(f"/proc/{pid}/maps").read_text()
    assert executor._board is None  # killed with the session
    assert {o.status for o in outcomes.values()} == {"ok"} and len(outcomes) == len(RUNS)
    for name in RUNS:
        assert metrics(tmp_path / "second" / "runs" / name) == metrics(local_grid / "runs" / name)


@pytest.mark.slow
def test_a_ray_task_waiting_for_the_board_does_not_lend_its_cpus(ray_instance):
    """A task blocked in ray.get lends its CPUs to the next queued task; the board's answer
    is awaited on its future instead, so two tasks that each ask for every CPU never
    overlap (measured before: two runs at once on a 1-CPU instance)."""
    from lipgan.executors.ray_executor import _Reporter

    def warm() -> int:  # both workers import lipgan (torch) now, not when the tasks start
        from lipgan.executors import ray_executor  # noqa: F401

        time.sleep(0.5)
        return os.getpid()

    warm_task = ray_instance.remote(num_cpus=1)(warm)
    ray_instance.get([warm_task.remote(), warm_task.remote()])

    def slow_board_class():  # defined in a function: Ray ships it by value
        class SlowBoard:
            def exchange(self, events):
                time.sleep(3.0)
                return None

        return SlowBoard

    def task(board):
        start = time.monotonic()
        _Reporter(board).flush()
        return start, time.monotonic()

    board = ray_instance.remote(num_cpus=0)(slow_board_class()).remote()
    ray_instance.get(board.exchange.remote([]))  # started: the tasks wait only on its answers
    remote = ray_instance.remote(num_cpus=2)(task)  # the instance has 2 CPUs
    first, second = sorted(ray_instance.get([remote.remote(board), remote.remote(board)]))
    assert first[1] - first[0] >= 3.0
    assert second[0] >= first[1] - 0.05, (first, second)  # started after the first ended
    ray_instance.kill(board)


# --- Slurm through submitit's local executor ----------------------------------------------


@pytest.fixture
def slurm_on_this_machine(monkeypatch):
    """``--executor slurm`` with submitit's local executor: real subprocesses, no Slurm."""
    pytest.importorskip("submitit")
    from lipgan.executors import slurm_executor

    local = functools.partial(slurm_executor.SlurmExecutor, cluster="local")
    monkeypatch.setattr(slurm_executor, "SlurmExecutor", local)
    return local


@pytest.mark.slow
def test_a_slurm_compare_gives_the_local_results(slurm_on_this_machine, local_grid, tmp_path):
    out = tmp_path / "slurm"
    result = invoke("compare", "--out", str(out), "--executor", "slurm", "--time", "10", *GRID)
    assert result.exit_code == 0, result.output
    for name in RUNS:
        assert metrics(out / "runs" / name) == metrics(local_grid / "runs" / name)
    assert results(out) == results(local_grid)
    assert len(list((out / "slurm" / "logs").glob("*_log.out"))) == len(RUNS)  # one job each


@pytest.mark.slow
def test_a_slurm_job_signalled_at_its_time_limit_is_requeued_and_resumes(
    slurm_on_this_machine, tmp_path
):
    base = build_config(
        None,
        {"iters": 150, "hidden": 8, "batch_size": 32, "threads": 1, "log_every": 25,
         "checkpoint_every": 1000, "eval_samples": 32},
    )  # fmt: skip
    reference = plan.setup(base, plan.plan("gp", None), tmp_path / "ref", seeds=[0])
    LocalProcessExecutor(1, 1).run(reference.jobs, lambda event: None)
    grid = plan.setup(base, plan.plan("gp", None), tmp_path / "slurm", seeds=[0])
    executor = slurm_on_this_machine(None, 10, folder=tmp_path / "jobs")
    progress = tmp_path / "jobs" / "progress" / "gp__s0.json"
    signalled: list[int] = []

    def signal_like_the_time_limit() -> None:
        # what submitit's controller sends the task before the limit (SIGUSR2); sent
        # by hand here so that the test does not depend on how fast the task starts
        while not signalled:
            with contextlib.suppress(OSError, ValueError):
                record = json.loads(progress.read_text())
                if record["iteration"] >= 50:
                    os.kill(record["pid"], signal.SIGUSR2)
                    signalled.append(record["iteration"])
            time.sleep(0.05)

    watcher = threading.Thread(target=signal_like_the_time_limit, daemon=True)
    watcher.start()
    outcomes = executor.run(grid.jobs, lambda event: None)
    assert signalled and outcomes["gp__s0"].status == "ok", outcomes
    assert metrics(grid.jobs[0].run_dir) == metrics(reference.jobs[0].run_dir)
    log = "".join(p.read_text() for p in (tmp_path / "jobs" / "logs").glob("*_log.*"))
    assert "Requeued job" in log
    assert "gp__s0 resumes from its checkpoint" in log  # not a periodic one: none before 1000


# --- tune and compare --tune on the cluster executors ---------------------------------------

TUNE_TINY = [
    "--data", "8gaussians", "--hidden", "16", "--critic-layers", "2", "--generator-layers",
    "2", "--batch-size", "64", "--eval-samples", "64", "--eval-sets", "1", "--threads", "1",
    "--log-every", "10",
]  # fmt: skip
TUNE = ["tune", "--constraint", "gp", "--trials", "3", "--seeds", "2", "--iters", "20", *TUNE_TINY]


def trials(folder: Path) -> list[dict]:
    """results.json's trials without their wall-clock seconds."""
    rows = json.loads((folder / "results.json").read_text())["trials"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.fixture(scope="module")
def local_study(tmp_path_factory) -> Path:
    pytest.importorskip("optuna")
    out = tmp_path_factory.mktemp("local-tune") / "study"
    result = invoke(*TUNE, "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_trials_are_asked_in_batches_the_executor_can_train_at_once(tmp_path):
    pytest.importorskip("optuna")
    from lipgan.tune import study

    base = build_config(None, {**TINY_CONFIG, "constraint": "gp"})
    tune = study.setup(base, tmp_path / "s", trials=9, seeds=[0, 1], threads=1)
    assert study.trials_at_once(tune, LocalProcessExecutor(2, 1), 9) == 1  # 2 seeds, 2 slots
    assert study.trials_at_once(tune, types.SimpleNamespace(slots=6), 9) == 3  # Ray: 6 CPUs
    assert study.trials_at_once(tune, types.SimpleNamespace(), 9) == 9  # a Slurm queue
    tune.sampler = "tpe"  # TPE learns between batches: a bounded batch even on a queue
    assert study.trials_at_once(tune, types.SimpleNamespace(), 9) == study.TPE_BATCH
    tune.prune = True  # a trial's first seed decides whether its others train
    assert study.trials_at_once(tune, types.SimpleNamespace(slots=6), 9) == 1


@pytest.mark.slow
def test_a_ray_tune_gives_the_local_trials(ray_instance, local_study, tmp_path):
    out = tmp_path / "ray"
    result = invoke(*TUNE, "--executor", "ray", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert trials(out) == trials(local_study)  # the same draws, objectives to every digit
    for run in (local_study / "runs").iterdir():
        assert metrics(out / "runs" / run.name) == metrics(run)
    again = invoke("tune", "--resume", str(out), "--executor", "ray")  # all reused
    assert again.exit_code == 0, again.output
    assert trials(out) == trials(local_study)


@pytest.mark.slow
def test_a_pruned_trial_on_ray_stops_and_its_other_seed_never_trains(ray_instance, tmp_path):
    from lipgan.tune import study

    out = tmp_path / "pruned"
    args = ["--constraint", "clip", "--trials", "3", "--seeds", "2", "--iters", "20", "--prune"]
    result = invoke("tune", *args, *TUNE_TINY, "--executor", "ray", "--out", str(out))
    assert result.exit_code == 0, result.output
    # the same statuses as local processes give (tests/tune/test_study.py)
    assert [row["status"] for row in trials(out)] == ["ok", "ok", "pruned"]
    assert not (out / "runs" / study.trial_run_name(2, 1)).exists()


@pytest.mark.slow
def test_a_slurm_tune_gives_the_local_trials(slurm_on_this_machine, local_study, tmp_path):
    out = tmp_path / "slurm"
    result = invoke(*TUNE, "--executor", "slurm", "--time", "10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert trials(out) == trials(local_study)
    # unbounded slots, random draws: every trial's runs were submitted at once
    assert len(list((out / "slurm" / "logs").glob("*_log.out"))) == 6


@pytest.mark.slow
def test_compare_tune_on_ray_gives_the_local_report(ray_instance, tmp_path):
    pytest.importorskip("optuna")
    args = ["compare", "--constraints", "gp,clip", "--tune", "2", "--tune-seeds", "1",
            "--seeds", "1", "--iters", "20", "--tune-iters", "10", *TUNE_TINY]  # fmt: skip
    local, ray = tmp_path / "local", tmp_path / "ray"
    assert invoke(*args, "--out", str(local)).exit_code == 0
    result = invoke(*args, "--executor", "ray", "--out", str(ray))
    assert result.exit_code == 0, result.output
    assert results(ray)["strategies"] == results(local)["strategies"]
    for name in ("gp", "clip"):
        assert trials(ray / "studies" / name) == trials(local / "studies" / name)
