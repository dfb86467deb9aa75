"""The CLI through Typer's test runner: each command, and a bad input for each."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lipgan.cli import app

runner = CliRunner()
TINY = ["--iters", "4", "--batch-size", "32", "--hidden", "16", "--log-every", "2",
        "--eval-samples", "64"]  # fmt: skip


def invoke(*args: str):
    return runner.invoke(app, list(args))


def assert_one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_train_writes_a_run_and_sample_reads_it(tmp_path):
    out = tmp_path / "run"
    result = invoke("train", *TINY, "--constraint", "clip", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "training clip on 8gaussians for 4 iterations" in result.output
    assert (out / "summary.json").exists()
    assert 'constraint = "clip"' in (out / "config.toml").read_text()

    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    for target in (a, b):
        result = invoke("sample", str(out), "--n", "10", "--seed", "7", "--out", str(target))
        assert result.exit_code == 0, result.output
    assert np.load(a).shape == (10, 2)
    np.testing.assert_array_equal(np.load(a), np.load(b))
    c = tmp_path / "c.npy"
    result = invoke("sample", str(out), "--n", "10", "--seed", "8", "--out", str(c))
    assert not np.array_equal(np.load(a), np.load(tmp_path / "c.npy"))
    result = invoke("sample", str(out), "--n", "50", "--out", str(tmp_path / "s.png"))
    assert result.exit_code == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_file_is_read_and_options_override_it(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('constraint = "fd"\niters = 2\nseed = 5\nlog_every = 1\nhidden = 8\n')
    out = tmp_path / "run"
    result = invoke("train", "--config", str(config), "--seed", "9", "--batch-size", "16",
                    "--eval-samples", "32", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = (out / "config.toml").read_text()
    assert 'constraint = "fd"' in saved and "seed = 9" in saved and "iters = 2" in saved
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "summary.json").read_text())["step"] == 2


def test_constraints_lists_each_strategy_with_its_defaults():
    result = invoke("constraints")
    assert result.exit_code == 0
    for needle in ("gp-one-sided", "c=0.01", "weight=10", "weight=0.1 on points", "5e-05"):
        assert needle in result.output


def test_data_lists_the_toy_sets():
    result = invoke("data")
    assert result.exit_code == 0
    assert "25gaussians" in result.output and "swissroll" in result.output


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["train", "--constraint", "gradient"], 2, ["unknown constraint 'gradient'", "gp"]),
        (["train", "--lambda", "-1"], 2, ["--lambda must be >= 0"]),
        (["train", "--iters", "0"], 2, ["--iters must be >= 1"]),
        (["train", "--bogus"], 2, ["No such option: --bogus"]),
        (["train", "--data", "moons"], 2, ["unknown data 'moons'"]),
        (["sample", "no/such/run"], 2, ["no/such/run does not exist"]),
        (["sample", ".", "--out", "x.gif"], 2, ["unknown type", ".png"]),
        (["sample", ".", "--n", "0"], 2, ["--n must be >= 1"]),
    ],
)
def test_bad_input_gives_one_line_and_an_exit_code(args, code, needles):
    assert_one_line_error(invoke(*args), code, *needles)


def test_existing_output_folder_is_refused_without_overwrite(tmp_path):
    out = tmp_path / "run"
    assert invoke("train", *TINY, "--out", str(out)).exit_code == 0
    before = (out / "metrics.jsonl").read_bytes()
    result = invoke("train", *TINY, "--out", str(out))
    assert_one_line_error(result, 2, "already exists", "--overwrite", "--resume")
    assert (out / "metrics.jsonl").read_bytes() == before
    assert invoke("train", *TINY, "--out", str(out), "--overwrite", "--seed", "1").exit_code == 0
