"""A compare's folder against damaged state and concurrent use (issue 24).

Every case starts from a copy of one finished tiny compare and checks what --resume,
diagnose or a second compare does with it: one line and exit 2 for what cannot be
trusted, never a wrong run reported or a file written where it does not belong.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipgan import callbacks
from lipgan.cli import app
from lipgan.compare import plan
from lipgan.config import MAX_SEED
from lipgan.errors import ConfigError
from lipgan.runio import RunFolder

TINY = [
    "--iters", "4", "--hidden", "8", "--critic-layers", "2", "--generator-layers", "1",
    "--batch-size", "32", "--log-every", "2", "--eval-samples", "32", "--threads", "1",
    "--threshold", "100",
]  # fmt: skip
RUNS = ["gp__s0", "sn__s0"]
WALL_CLOCK = {"seconds_per_step", "seconds_to_threshold", "peak_memory_mib", "command"}


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, code: int = 2) -> str:
    """The single stderr line of a refused command (CliRunner mixes it into output)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def without_wall_clock(value):
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("grid") / "finished"
    result = invoke("compare", "--constraints", "gp,sn", "--out", out, *TINY)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def grid(finished, tmp_path) -> Path:
    """A private copy of the finished compare."""
    copy = tmp_path / "grid"
    shutil.copytree(finished, copy)
    return copy


# --- plan.json and outcomes.json that parse but have the wrong shape ------------------------


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda plan: None, "a null where an object belongs"),
        (lambda plan: {k: v for k, v in plan.items() if k != "entries"}, "no 'entries'"),
        (lambda plan: {**plan, "entries": []}, "'entries' is empty"),
        (lambda plan: {**plan, "entries": [1]}, "entry 1 is not"),
        (lambda plan: {**plan, "parallel": "2"}, "'parallel' is a string"),
        (lambda plan: {**plan, "seeds": "0"}, "'seeds' is a string"),
        (lambda plan: {**plan, "base": []}, "'base' is a list"),
        (lambda plan: {**plan, "threshold": True}, "'threshold' is a true/false"),
        (lambda plan: {**plan, "runs": {"gp__s0": 3}}, "'runs' holds a value"),
    ],
)
def test_a_plan_json_of_the_wrong_shape_is_one_line(grid, edit, problem):
    path = grid / "plan.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    line = one_line_error(invoke("compare", "--resume", grid))
    assert f"{path} is damaged ({problem}" in line, line


@pytest.mark.parametrize(
    ("outcomes", "problem"),
    [
        ([], "a list where an object of runs belongs"),
        ({"gp__s0": "ok"}, "'gp__s0' is not {status, peak_mib, message}"),
        ({"gp__s0": {"status": 1, "peak_mib": None, "message": ""}}, "'gp__s0' has status 1"),
        (
            {"gp__s0": {"status": "ok", "peak_mib": "x", "message": ""}},
            "'gp__s0': peak_mib must be",
        ),
    ],
)
def test_an_outcomes_json_of_the_wrong_shape_is_one_line(grid, outcomes, problem):
    path = grid / "outcomes.json"
    path.write_text(json.dumps(outcomes))
    line = one_line_error(invoke("compare", "--resume", grid))
    assert f"{path} is damaged ({problem}" in line, line


# --- the run folders' identity and checkpoints -----------------------------------------------


def test_a_run_folder_replaced_by_another_strategys_run_is_refused(grid):
    shutil.rmtree(grid / "runs" / "gp__s0")
    shutil.copytree(grid / "runs" / "sn__s0", grid / "runs" / "gp__s0")
    before = snapshot(grid)
    line = one_line_error(invoke("compare", "--resume", grid))
    assert f"run folder {(grid / 'runs' / 'gp__s0').absolute()} holds another run" in line
    assert "constraint = 'sn' where this run has 'gp'" in line
    after = snapshot(grid)
    before.pop(".lipgan.lock"), after.pop(".lipgan.lock")  # the pid of the last compare
    assert after == before  # nothing written anywhere, the foreign run untouched


@pytest.mark.slow
def test_a_finished_runs_unreadable_checkpoint_is_said_and_the_run_trained_again(finished, grid):
    last = RunFolder(grid / "runs" / "gp__s0").last
    last.write_bytes(last.read_bytes()[:100])  # torn
    result = invoke("compare", "--resume", grid)
    assert result.exit_code == 0, result.output
    output = result.output.replace("\n", "")  # the console wraps long lines
    assert f"gp__s0: checkpoint {last.absolute()} is corrupt" in output
    assert "training it again" in output
    again = json.loads((grid / "results.json").read_text())
    assert again["runs"]["gp__s0"]["diagnostics"] is not None  # no silent hole
    # the same seed trains the same run: the table is the uninterrupted one
    original = json.loads((finished / "results.json").read_text())
    assert without_wall_clock(again) == without_wall_clock(original)


def test_a_run_killed_before_its_summary_is_finished_by_resume_not_refused(finished, grid):
    """Killed after its final checkpoint, before summary.json and its outcome were written:
    --resume writes the summary (nothing to train) and the report is the finished one."""
    run = RunFolder(grid / "runs" / "gp__s0")
    run.summary.unlink()
    outcomes = json.loads((grid / "outcomes.json").read_text())
    del outcomes["gp__s0"]
    (grid / "outcomes.json").write_text(json.dumps(outcomes))
    (grid / "results.json").unlink()
    result = invoke("compare", "--resume", grid)
    assert result.exit_code == 0, result.output
    assert run.summary.is_file()
    again = json.loads((grid / "results.json").read_text())
    original = json.loads((finished / "results.json").read_text())
    assert without_wall_clock(again) == without_wall_clock(original)


@pytest.mark.slow
def test_resume_from_another_directory_writes_only_inside_the_compare_folder(tmp_path, monkeypatch):
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir(), elsewhere.mkdir()
    calls = []

    @contextlib.contextmanager
    def stop_in_the_first_run():
        yield lambda: signal.SIGINT if len(calls.append(1) or calls) >= 3 else None

    monkeypatch.chdir(first)
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "StopOnSignals", stop_in_the_first_run)
        stopped = invoke("compare", "--constraints", "gp,sn", "--out", "grid", *TINY)
    assert stopped.exit_code == 130, stopped.output
    assert RunFolder(first / "grid" / "runs" / "gp__s0").last.is_file()  # stopped mid-run

    monkeypatch.chdir(elsewhere)
    resumed = invoke("compare", "--resume", first / "grid")
    assert resumed.exit_code == 0, resumed.output
    assert list(elsewhere.iterdir()) == []
    outcomes = json.loads((first / "grid" / "outcomes.json").read_text())
    assert {n: o["status"] for n, o in outcomes.items()} == dict.fromkeys(RUNS, "ok")
    for name in RUNS:  # every run finished in its own folder
        assert [m["step"] for m in RunFolder(first / "grid" / "runs" / name).read_metrics()] == [
            2, 4,
        ]  # fmt: skip


# --- one compare per folder ------------------------------------------------------------------


def test_a_second_compare_on_a_folder_in_use_is_refused_in_one_line(grid):
    held = plan.resume_setup(grid)  # a compare working in the folder
    try:
        message = f"{grid} is in use by another lipgan compare (pid {os.getpid()})"
        assert message in one_line_error(invoke("compare", "--resume", grid))
        args = ["--constraints", "gp,sn", "--overwrite", "--out", grid, *TINY]
        assert message in one_line_error(invoke("compare", *args))
        assert (grid / "plan.json").is_file()  # --overwrite deleted nothing
    finally:
        held.release()
    again = plan.resume_setup(grid)  # free once the first one ended
    again.release()


@pytest.mark.slow
def test_a_crashed_compares_lock_does_not_stick(grid):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from lipgan.runio import FolderLock; "
         "lock = FolderLock(sys.argv[1], 'compare'); print('locked', flush=True); "
         "time.sleep(600)", str(grid)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(
            ConfigError, match=f"in use by another lipgan compare .pid {holder.pid}"
        ):
            plan.resume_setup(grid)
    finally:
        holder.kill()  # SIGKILL: no clean-up of any kind
        holder.wait()
    plan.resume_setup(grid).release()  # the kernel dropped the dead process's lock


# --- refused before anything is created ------------------------------------------------------


def test_seeds_past_the_seed_bound_are_refused_up_front(tmp_path):
    assert plan.parse_seeds("1", MAX_SEED) == [MAX_SEED]
    assert plan.parse_seeds(f"0,{MAX_SEED}") == [0, MAX_SEED]
    with pytest.raises(ConfigError, match=f"past the largest seed {MAX_SEED}"):
        plan.parse_seeds("2", MAX_SEED)
    with pytest.raises(ConfigError, match=f"seed {MAX_SEED + 1} is past the largest seed"):
        plan.parse_seeds(f"0,{MAX_SEED + 1}")
    with pytest.raises(ConfigError, match="past the largest seed"):
        plan.parse_seeds(str(10**15))  # refused without building the list
    out = tmp_path / "out"
    line = one_line_error(invoke("compare", "--seeds", f"0,{MAX_SEED + 1}", "--out", out, *TINY))
    assert "past the largest seed" in line
    assert not out.exists()


def test_a_strategy_value_refused_while_resolving_creates_no_folder(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[constraint_options]\n"orthogonal.group_size" = 3.0\n')
    out = tmp_path / "out"
    args = ["--constraints", "orthogonal", "--config", config, "--out", out, *TINY]
    line = one_line_error(invoke("compare", *args))  # --hidden 8 is no multiple of 3
    assert "not a multiple of orthogonal.group_size 3" in line
    assert not out.exists()


def test_a_batch_too_large_to_allocate_is_one_line_naming_it(tmp_path):
    batch = 2**50  # 8 PiB of noise: more than any address space, refused at once
    args = ["train", "--batch-size", batch, "--iters", "1", "--hidden", "8"]
    result = invoke(*args, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: out of memory: could not allocate 8,388,608.0 GiB with --batch-size {batch} "
        "(--eval-samples 512, --hidden 8); lower --batch-size (or --eval-samples, --hidden)"
    ], result.output


# --- diagnose ---------------------------------------------------------------------------------


def test_diagnose_skips_a_torn_last_line_of_timing_jsonl(finished, tmp_path):
    run = tmp_path / "gp__s0"
    shutil.copytree(finished / "runs" / "gp__s0", run)
    folder = RunFolder(run)
    lines = folder.timing.read_text().splitlines()
    with folder.timing.open("a") as handle:
        handle.write('{"step": 6, "seco')  # a killed writer's last line
    result = invoke("diagnose", run, "--threshold", 100)
    assert result.exit_code == 0, result.output
    whole = [json.loads(line) for line in lines]
    assert folder.read_timing() == whole and [t["step"] for t in whole] == [2, 4]
    row = json.loads((run / "diagnostics" / "results.json").read_text())["runs"]["gp__s0"]
    assert row["seconds_to_threshold"] == whole[0]["seconds"]  # --threshold 100: step 2
