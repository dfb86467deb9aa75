"""Checkpoints: untrusted files load no code, mismatches are named, writes are atomic.

The crafted checkpoint's payload would create a marker file when unpickled; the tests
first prove that it really does under ``weights_only=False``, then that lipgan never
lets it run.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import random
from pathlib import Path

import pytest
import torch

from lipgan import runio
from lipgan.errors import CheckpointError, LipganError
from lipgan.models.mlp import MLPCritic
from lipgan.runio import RunFolder, atomic_write_bytes, load_checkpoint, load_state

from runkit import TINY_ARGS, cli, last_state, train_run


class Payload:
    """Unpickling this calls os.mkdir(marker): what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "finished"
    train_run(out, iters=4)
    return out


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def malicious_checkpoint(path: Path, marker: Path) -> None:
    state = load_checkpoint(path)
    state["config"] = {"hidden": Payload(marker)}
    torch.save(state, path)


def one_line_error(result, keyword: str) -> str:
    output = result.output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    assert keyword in lines[0], lines[0]
    return lines[0]


def test_the_payload_is_real(tmp_path, finished_run) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    marker = tmp_path / "marker"
    malicious_checkpoint(RunFolder(run).last, marker)
    torch.load(RunFolder(run).last, weights_only=False)  # what lipgan must never do
    assert marker.is_dir()


@pytest.mark.parametrize("command", ["sample", "resume"])
def test_a_malicious_checkpoint_is_refused_and_its_payload_never_runs(
    tmp_path, finished_run, command
) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    marker = tmp_path / "marker"
    malicious_checkpoint(RunFolder(run).last, marker)
    if command == "sample":
        result = cli("sample", run, "--out", tmp_path / "s.npy")
    else:
        result = cli("train", "--resume", run, "--iters", 8)
    assert result.exit_code == 2
    line = one_line_error(result, "was refused")
    assert f"asks to import {os.mkdir.__module__}.mkdir" in line
    assert "nothing in it was run" in line
    assert not marker.exists()
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", "the file is empty"),
        (random.Random(0).randbytes(2000), "corrupt or not a checkpoint"),
        (b"hello, not a checkpoint", "corrupt or not a checkpoint"),
        (pickle.dumps({"format": 1}), "corrupt or not a checkpoint"),
    ],
)
def test_a_corrupt_checkpoint_is_one_clear_line(tmp_path, finished_run, content, detail) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    RunFolder(run).last.write_bytes(content)
    for args in (["sample", run, "--out", tmp_path / "s.npy"], ["train", "--resume", run]):
        result = cli(*args, "--iters", 8) if args[0] == "train" else cli(*args)
        assert result.exit_code == 2
        one_line_error(result, detail)


def test_resume_from_a_corrupt_last_pt_points_to_the_numbered_checkpoint(
    tmp_path, finished_run
) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    last = RunFolder(run).last
    last.write_bytes(last.read_bytes()[:1000])  # torn (not possible with atomic writes)
    result = cli("train", "--resume", run, "--iters", 8)
    assert result.exit_code == 2
    one_line_error(result, f"copy {RunFolder(run).numbered_checkpoint(4)} over {last}")


def test_a_checkpoint_that_is_not_lipgans_is_named(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="is not a lipgan checkpoint"):
        load_checkpoint(path)
    torch.save({"format": 1, "config": {}}, path)
    with pytest.raises(CheckpointError, match="incomplete: no 'data'"):
        load_checkpoint(path)


def test_loading_into_another_width_names_the_key_and_shapes(tmp_path) -> None:
    narrow = MLPCritic((2,), hidden=16, layers=2, norm="none")
    wide = MLPCritic((2,), hidden=32, layers=2, norm="none")
    with pytest.raises(CheckpointError) as error:
        load_state(wide, narrow.state_dict(), "critic", tmp_path / "x.pt")
    message = str(error.value)
    assert "\n" not in message
    assert "does not fit this critic" in message
    assert "net.0.weight" in message
    assert "torch.Size([16, 2])" in message and "torch.Size([32, 2])" in message


def test_loading_into_another_depth_names_the_missing_keys(tmp_path) -> None:
    shallow = MLPCritic((2,), hidden=16, layers=1, norm="none")
    deep = MLPCritic((2,), hidden=16, layers=2, norm="none")
    with pytest.raises(
        CheckpointError, match=r"Missing key\(s\) in state_dict: \"net\.6\.weight\""
    ):
        load_state(deep, shallow.state_dict(), "critic", tmp_path / "x.pt")


def test_sample_of_a_checkpoint_with_an_edited_width_names_the_mismatch(
    tmp_path, finished_run
) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    state = load_checkpoint(RunFolder(run).last)
    state["config"]["hidden"] = 32
    torch.save(state, RunFolder(run).last)
    result = cli("sample", run, "--out", tmp_path / "s.npy")
    assert result.exit_code == 2
    one_line_error(result, "does not fit this generator: size mismatch for net.0.weight")


def test_resume_with_an_edited_config_file_names_the_setting(tmp_path, finished_run) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    config = RunFolder(run).config
    config.write_text(config.read_text().replace("hidden = 16", "hidden = 32"))
    result = cli("train", "--resume", run, "--iters", 8)
    assert result.exit_code == 2
    one_line_error(result, "hidden")
    assert last_state(run)["iteration"] == 4


# --- atomic writes ---------------------------------------------------------------------


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch, where
) -> None:
    path = tmp_path / "last.pt"
    runio.save_checkpoint(path, {"weights": torch.ones(3)})
    before = path.read_bytes()
    monkeypatch.setattr(runio.os, where, no_space)
    with pytest.raises(LipganError) as error:
        runio.save_checkpoint(path, {"weights": torch.zeros(3)})
    assert "No space left on device" in str(error.value)
    assert "free disk space" in str(error.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_crash_mid_write_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "config.toml"
    atomic_write_bytes(path, b"old = 1\n")

    class Torn(io.FileIO):
        def write(self, data):  # half the bytes reach the disk, then the process dies
            super().write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(runio.os, "fdopen", lambda fd, mode: Torn(fd, "wb"))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new = 2, and a much longer line\n")
    assert path.read_bytes() == b"old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_a_full_disk_mid_run_is_one_line_and_keeps_last_pt(
    tmp_path, finished_run, monkeypatch
) -> None:
    run = copy_run(finished_run, tmp_path / "run")
    real_replace = os.replace

    def replace(source, target):
        if Path(target).name == "last.pt":
            no_space()
        real_replace(source, target)

    monkeypatch.setattr(runio.os, "replace", replace)
    result = cli("train", "--resume", run, "--iters", 8)
    assert result.exit_code == 2
    one_line_error(result, "No space left on device")
    assert last_state(run)["iteration"] == 4
    assert not list(RunFolder(run).checkpoints.glob(".*"))


def test_keep_keeps_exactly_the_newest_numbered_checkpoints(tmp_path) -> None:
    result = cli("train", *TINY_ARGS, "--iters", 10, "--checkpoint-every", 2, "--keep", 2,
                 "--out", tmp_path / "run")  # fmt: skip
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in RunFolder(tmp_path / "run").checkpoints.iterdir())
    assert names == ["last.pt", "step_000008.pt", "step_000010.pt"]


def test_pruning_orders_checkpoints_by_step_not_by_name(tmp_path) -> None:
    run = RunFolder(tmp_path)
    run.checkpoints.mkdir()
    for step in (999_998, 999_999, 1_000_000):
        run.numbered_checkpoint(step).write_bytes(b"x")
    run.prune_checkpoints(keep=2)
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [
        "step_1000000.pt",
        "step_999999.pt",
    ]
