"""The CLI's option parsing, without training: the library entry is replaced by a recorder
and the tests assert on the ``TrainConfig`` (and the other arguments) the CLI built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lipgan import training
from lipgan.cli import app
from lipgan.config import TrainConfig
from lipgan.display import TrainDisplay

runner = CliRunner()


@pytest.fixture
def calls(monkeypatch) -> list[dict[str, Any]]:
    """Every call the CLI makes to the library entries, instead of training."""
    recorded: list[dict[str, Any]] = []

    def train_command(config, **kwargs):
        recorded.append({"config": config, **kwargs})
        return 0

    def sample(run_dir, n, seed, out):
        recorded.append({"run_dir": run_dir, "n": n, "seed": seed, "out": out})
        return out

    monkeypatch.setattr(training, "train_command", train_command)
    monkeypatch.setattr(training, "sample", sample)
    return recorded


def invoke(*args: Any):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_no_options_give_the_default_config(calls) -> None:
    invoke("train")
    (call,) = calls
    assert call["config"] == TrainConfig()
    assert call["resume_dir"] is None and call["nproc"] == 1 and not call["overwrite"]
    assert not call["tensorboard"] and isinstance(call["display"], TrainDisplay)


def test_every_kind_of_option_lands_in_its_field(calls) -> None:
    invoke(
        "train", "-c", "sn+gp", "-d", "25gaussians", "--iters", "7", "--seed", "3",
        "--lr", "2e-4", "--generator-lr", "1e-4", "--betas", "0.5,0.99",
        "--optimizer", "adam", "--lambda", "3", "-o", "sn.power_iterations=2",
        "--schedule", "one-step",
        "--n-critic", "1", "--compile", "--precision", "bf16", "--on-nan", "rollback",
        "--out", "somewhere",
    )  # fmt: skip
    config = calls[0]["config"]
    assert (config.constraint, config.data, config.iters, config.seed) == (
        "sn+gp", "25gaussians", 7, 3
    )  # fmt: skip
    assert (config.lr, config.generator_lr, config.betas) == (2e-4, 1e-4, (0.5, 0.99))
    # --lambda lands on the part with a weight; --option sets any part's parameter.
    assert config.constraint_options == {"gp.weight": 3.0, "sn.power_iterations": 2.0}
    assert (config.schedule, config.n_critic, config.compile) == ("one-step", 1, True)
    assert (config.precision, config.on_nan, config.out) == ("bf16", "rollback", "somewhere")


def test_an_option_wins_over_lambda_and_the_file_over_nothing(calls, tmp_path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('constraint = "r1+r2"\n[constraint_options]\n"r2.weight" = 5.0\n')
    invoke("train", "--config", file, "--lambda", "2", "-o", "r1.weight=7")
    assert calls[0]["config"].constraint_options == {"r1.weight": 7.0, "r2.weight": 2.0}


def test_a_config_file_is_read_and_options_override_it(calls, tmp_path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('constraint = "fd"\niters = 2\nseed = 5\nhidden = 8\n')
    invoke("train", "--config", file, "--seed", "9")
    config = calls[0]["config"]
    assert (config.constraint, config.iters, config.seed, config.hidden) == ("fd", 2, 9, 8)


def test_resume_passes_only_the_options_given(calls, tmp_path) -> None:
    invoke("train", "--resume", tmp_path, "--iters", "50", "--tensorboard")
    (call,) = calls
    assert call["config"] is None and call["resume_dir"] == tmp_path and call["tensorboard"]
    given = {k: v for k, v in call["changes"].items() if v is not None}
    assert given == {"iters": 50}


def test_nproc_passes_the_command_words_for_torchrun(calls, monkeypatch) -> None:
    argv = ["lipgan", "train", "--nproc", "2", "--iters", "3"]
    monkeypatch.setattr("sys.argv", argv)
    invoke(*argv[1:])
    assert calls[0]["nproc"] == 2 and list(calls[0]["argv"]) == argv[1:]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--resume", "r", "--overwrite"], "--resume cannot be combined"),
        (["--nproc", "0"], "--nproc"),
        (["--betas", "0.5"], "expected 2 numbers"),
        (["-o", "gp.weight"], "STRATEGY.PARAM=NUMBER"),
        (["--iters", "0"], "--iters must be >= 1"),
        (["--lambda", "-1"], "--lambda must be >= 0"),
        (["-c", "clip", "--lambda", "1"], "--lambda has no effect"),
        (["-c", "gq"], "unknown constraint 'gq'"),
    ],
)
def test_bad_options_never_reach_the_library(calls, args, words) -> None:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2 and words in result.output, result.output
    assert calls == []


def test_sample_dispatches_its_arguments(calls, tmp_path) -> None:
    invoke("sample", tmp_path, "--n", "9", "--seed", "4", "--out", "x.npy")
    assert calls == [{"run_dir": tmp_path, "n": 9, "seed": 4, "out": Path("x.npy")}]


def test_train_help_is_each_fields_doc_and_default() -> None:
    """Generated from TrainConfig, so the help cannot drift from the real defaults."""
    import typer

    from lipgan.config import field_docs

    command = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    defaults = TrainConfig()
    fields = [p for p in command.params if p.name in field_docs()]
    assert len(fields) >= 30
    for param in fields:
        assert param.help.startswith(field_docs()[param.name]), param.name
        default = getattr(defaults, param.name)
        if default is not None and "default" not in field_docs()[param.name]:
            assert param.help.endswith(f"[default: {default}]"), param.name
