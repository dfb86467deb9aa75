"""Ctrl-C and SIGTERM sent to a real `lipgan train` process.

The run finishes its iteration, writes checkpoints/last.pt, prints the command that
resumes it and exits 128 + signal (130 / 143); resuming from there works.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipgan.runio import RunFolder

from runkit import TINY, TINY_ARGS, cli, last_state, train_run


def start_training(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "lipgan", "train", *TINY_ARGS]
    command += ["--iters", "100000", "--log-every", "2", "--out", str(out)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_a_metrics_line(process: subprocess.Popen, out: Path, timeout: float = 60) -> None:
    """Training is under way (signal handlers installed) once a metrics line exists."""
    metrics = RunFolder(out).metrics
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            pytest.fail(f"training ended early ({process.returncode}): {stdout}{stderr}")
        if metrics.exists() and metrics.read_text().strip():
            return
        time.sleep(0.1)
    process.kill()
    pytest.fail("no metrics line within the time limit")


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_with_a_checkpoint_and_the_resume_command(tmp_path, signum, code) -> None:
    out = tmp_path / "my run"  # a space: the printed command must quote it
    process = start_training(out)
    try:
        wait_for_a_metrics_line(process, out)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == code, stdout + stderr
    assert "Traceback" not in stdout + stderr
    error_lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1, stderr
    command = error_lines[0].split("resume with: ")[1]
    assert shlex.split(command) == ["lipgan", "train", "--resume", str(out)]

    state = last_state(out)  # loadable, weights_only
    stopped = int(state["iteration"])
    assert f"stopped at iteration {stopped}/100000" in error_lines[0]
    assert stopped >= RunFolder(out).read_metrics()[-1]["step"]

    result = cli("train", "--resume", out, "--iters", stopped + 3)
    assert result.exit_code == 0, result.output
    assert last_state(out)["iteration"] == stopped + 3
    assert "Traceback" not in result.output


# --- a compare's worker processes and signals to the whole process group -------------------

COMPARE = [
    "--constraints", "clip,gp", "--seeds", "2", "--jobs", "2", "--threads", "1",
    "--iters", "100000", "--hidden", "8", "--critic-layers", "2", "--generator-layers", "1",
    "--batch-size", "32", "--log-every", "2", "--eval-samples", "32", "--threshold", "100",
]  # fmt: skip
STARTED = {"clip@0.01__s0", "gp__s0"}
"""--jobs 2 over seed-major runs: the first two are seed 0's; seed 1's are queued."""


def start_compare(out: Path) -> subprocess.Popen:
    """`lipgan compare` as the leader of its own process group (as a shell job is)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "lipgan", "compare", *COMPARE, "--out", str(out)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip


def workers_of(parent: int) -> list[int]:
    """The pids of multiprocessing's spawned workers whose parent is ``parent``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"--multiprocessing-fork" in cmdline:
            found.append(int(proc.name))
    return found


def wait_until(process: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            pytest.fail(f"compare ended early ({process.returncode}): {stdout}{stderr}")
        if ready():
            return
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"no {what} within the time limit")


def stop_group(process: subprocess.Popen, signum: int) -> tuple[str, str]:
    os.killpg(process.pid, signum)  # what a terminal's Ctrl-C or `kill -TERM -PGID` does
    try:
        return process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def outcomes_of(out: Path) -> dict[str, str]:
    path = out / "outcomes.json"
    return (
        {n: o["status"] for n, o in json.loads(path.read_text()).items()} if path.exists() else {}
    )


def run_folders(out: Path) -> set[str]:
    return {p.name for p in (out / "runs").iterdir()} if (out / "runs").exists() else set()


@pytest.mark.slow
def test_ctrl_c_to_the_group_while_workers_start_fails_no_run_and_starts_none(tmp_path) -> None:
    out = tmp_path / "grid é"
    process = start_compare(out)
    wait_until(process, lambda: len(workers_of(process.pid)) == 2, "two workers")
    stdout, stderr = stop_group(process, signal.SIGINT)  # the workers are still importing

    assert process.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert f"lipgan compare --resume {shlex.quote(str(out))}" in stderr
    # a run a stop signal ended is 'interrupted' (resumable), never 'failed'
    assert set(outcomes_of(out).values()) <= {"interrupted"}
    assert set(outcomes_of(out)) <= STARTED
    assert run_folders(out) <= STARTED  # nothing queued started after the stop


@pytest.mark.slow
def test_sigterm_to_the_group_checkpoints_every_running_run(tmp_path) -> None:
    from lipgan.compare import plan

    out = tmp_path / "grid"
    process = start_compare(out)

    def both_training() -> bool:
        return all(RunFolder(out / "runs" / n).read_metrics() for n in STARTED)

    wait_until(process, both_training, "metrics line in both first runs")
    stdout, stderr = stop_group(process, signal.SIGTERM)

    assert process.returncode == 143, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert outcomes_of(out) == dict.fromkeys(STARTED, "interrupted")
    assert run_folders(out) == STARTED  # seed 1's runs never started
    for name in STARTED:
        run = out / "runs" / name
        stopped = int(last_state(run)["iteration"])  # each worker wrote its checkpoint
        assert stopped >= RunFolder(run).read_metrics()[-1]["step"] >= 2
    resumed = plan.resume_setup(out)  # and --resume continues both from there
    try:
        assert {job.name: job.resume for job in resumed.jobs} == {
            "clip@0.01__s0": True, "gp__s0": True, "clip@0.01__s1": False, "gp__s1": False,
        }  # fmt: skip
    finally:
        resumed.release()


# --- the rules every executor gets from run_job ----------------------------------------------


def tiny_job(out: Path, **changes):
    from lipgan import runs
    from lipgan.compare.plan import Entry, Job

    options = {**TINY, "iters": 40, **changes, "out": str(out)}
    config = runs.resolve_run(runs.build_config(None, options))
    return Job(Entry(config.constraint, config.constraint), config.seed, config)


def test_a_worker_that_a_stop_signal_ended_is_interrupted_never_failed() -> None:
    from lipgan.executors import lost_worker_outcome

    for code in (-signal.SIGINT, -signal.SIGTERM, 130, 143):
        assert lost_worker_outcome(code, stopping=True).status == "interrupted"
        assert lost_worker_outcome(code, stopping=False).status == "failed"  # no stop asked
    for code in (-signal.SIGKILL, 1, None):  # the OOM killer, a crash
        assert lost_worker_outcome(code, stopping=True).status == "failed"


def test_run_job_starts_nothing_after_a_stop(tmp_path) -> None:
    from lipgan.executors import NotStarted, run_job

    events = []
    job = tiny_job(tmp_path / "run")
    with pytest.raises(NotStarted) as stopped:
        run_job(job, events.append, lambda: signal.SIGTERM)
    assert stopped.value.exit_code == 143
    assert events == [] and not job.run_dir.exists()


def test_run_job_handles_sigterm_itself_with_a_checkpoint(tmp_path) -> None:
    from lipgan import engine
    from lipgan.executors import run_job

    job = tiny_job(tmp_path / "run")

    def on_event(event) -> None:
        if event.iteration == 3:  # as a supervisor would, with no should_stop given
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(engine.Interrupted) as stopped:
        run_job(job, on_event)
    assert stopped.value.exit_code == 143
    assert last_state(job.run_dir)["iteration"] in (3, 4)  # the iteration it was in
    assert signal.getsignal(signal.SIGTERM) is before  # its handlers are gone after


def test_run_job_refuses_a_folder_that_holds_another_run(tmp_path) -> None:
    from lipgan.executors import run_job

    train_run(tmp_path / "run", iters=4, constraint="sn")
    files = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    status, message = run_job(tiny_job(tmp_path / "run", constraint="gp"), lambda e: None)
    assert status == "failed"
    assert "holds another run: its config.toml has constraint = 'sn'" in message
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == files
