"""Ctrl-C and SIGTERM sent to a real `lipgan train` process.

The run finishes its iteration, writes checkpoints/last.pt, prints the command that
resumes it and exits 128 + signal (130 / 143); resuming from there works.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lipgan.runio import RunFolder

from runkit import TINY_ARGS, cli, last_state


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
