"""Data parallelism is exact: N processes with batch B/N make the updates of one with B."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from lipgan.runio import load_checkpoint

ARGS = ["train", "--iters", "6", "--batch-size", "64", "--hidden", "32", "--log-every", "3",
        "--eval-samples", "64", "--sample-every", "1000", "--checkpoint-every", "3",
        "--device", "cpu", "--lr", "0.001"]  # fmt: skip

# lipgan in float64, so summation order (two half-batch means and an all-reduce versus
# one mean) cannot hide a real difference behind rounding.
FLOAT64_MAIN = """
import sys
import torch
torch.set_default_dtype(torch.float64)
from lipgan.cli import app
sys.argv = ["lipgan", *sys.argv[1:]]
app()
"""


def run(command: list[str]) -> str:
    """Run ``command``; its stdout and stderr together."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    return done.stdout + done.stderr


def parameters(folder, name="last.pt"):
    return load_checkpoint(folder / "checkpoints" / name)


def max_difference(a, b, net):
    assert a[net].keys() == b[net].keys()
    return max((a[net][k] - b[net][k]).abs().max().item() for k in a[net])


@pytest.mark.slow
@pytest.mark.parametrize("constraint", ["gp", "clip", "gn", "orthogonal", "alr"])
def test_torchrun_two_processes_make_exactly_the_updates_of_one(tmp_path, constraint):
    script = tmp_path / "lipgan64.py"
    script.write_text(FLOAT64_MAIN)
    args = [*ARGS, "--constraint", constraint]
    run([sys.executable, str(script), *args, "--out", str(tmp_path / "one")])
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(script), *args, "--out", str(tmp_path / "two")])  # fmt: skip
    one, two = parameters(tmp_path / "one"), parameters(tmp_path / "two")
    midway = parameters(tmp_path / "one", "step_000003.pt")
    for net in ("critic", "generator"):
        assert one[net][next(iter(one[net]))].dtype == torch.float64
        assert max_difference(one, two, net) < 1e-9
        assert max_difference(one, midway, net) > 1e-3  # and the runs did move
    # Logged losses are averaged across processes: the numbers of one process.
    lines = [(tmp_path / f / "metrics.jsonl").read_text().splitlines() for f in ("one", "two")]
    assert len(lines[0]) == len(lines[1]) == 2
    for a, b in zip(*lines, strict=True):
        ma, mb = json.loads(a), json.loads(b)
        for key in ("loss/critic", "loss/generator", "loss/penalty", "quality/w1"):
            assert mb[key] == pytest.approx(ma[key], rel=0, abs=2e-8)  # logged to 8 places


@pytest.mark.slow
def test_nproc_option_launches_torchrun_and_matches_one_process(tmp_path):
    # float32 through the real CLI: Adam turns rounding in near-zero gradients into steps
    # of up to lr, so compare loosely here; exactness is the float64 test's job.
    base = [sys.executable, "-m", "lipgan", *ARGS]
    run([*base, "--out", str(tmp_path / "one")])
    run([*base, "--out", str(tmp_path / "two"), "--nproc", "2"])
    one, two = parameters(tmp_path / "one"), parameters(tmp_path / "two")
    for net in ("critic", "generator"):
        diff = torch.cat([(one[net][k] - two[net][k]).abs().flatten() for k in one[net]])
        assert diff.median().item() < 1e-6
        assert (diff < 1e-4).float().mean().item() > 0.9


@pytest.mark.slow
def test_batch_norm_over_two_processes_warns_that_it_is_not_one_process(tmp_path):
    # gloo (CPU) has no SyncBatchNorm: each process normalises its own half batch.
    args = [*ARGS, "--iters", "2", "--constraint", "none", "--critic-norm", "batch"]
    one = run([sys.executable, "-m", "lipgan", *args, "--out", str(tmp_path / "one")])
    two = run([sys.executable, "-m", "lipgan", *args, "--out", str(tmp_path / "two"),
               "--nproc", "2"])  # fmt: skip
    two = " ".join(two.split())  # the console wraps long lines
    assert "batch norm" not in one
    assert "warning: batch norm in the critic normalises per process, so 2 processes" in two
