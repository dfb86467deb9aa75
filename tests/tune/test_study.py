"""lipgan tune end to end, on tiny models and 20-40 iterations: trial 0 is the defaults,
draw k is the same for every strategy, the best config trains, a killed study resumes to
the same study, and a plugin's own space is tuned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lipgan import runs
from lipgan.cli import app
from lipgan.config import TrainConfig, load_toml
from lipgan.runio import RunFolder
from lipgan.tune import space as spaces
from lipgan.tune import study

pytest.importorskip("optuna")

TINY = ["--data", "8gaussians", "--hidden", "16", "--critic-layers", "2",
        "--generator-layers", "2", "--batch-size", "64", "--eval-samples", "64",
        "--eval-sets", "1", "--threads", "1"]  # fmt: skip
TINY_CONFIG = {
    "data": "8gaussians", "hidden": 16, "critic_layers": 2, "generator_layers": 2,
    "batch_size": 64, "eval_samples": 64, "eval_sets": 1,
}  # fmt: skip
SHARED_FIELDS = ("lr", "generator_lr", "n_critic", "ema_decay")


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def run_config(out: Path, draw: int, seed: int = 0) -> TrainConfig:
    return load_toml(out / "runs" / study.trial_run_name(draw, seed) / "config.toml")


def trials_of(out: Path) -> list[dict]:
    rows = json.loads((out / "results.json").read_text())["trials"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow  # 6 runs of 20 iterations and one of 5: ~15 s
def test_two_strategies_tuned_alike_and_the_best_config_trains(tmp_path):
    outs = {}
    for name in ("gp", "clip"):
        outs[name] = tmp_path / name
        result = invoke("tune", "--constraint", name, "--trials", "3", "--iters", "20",
                        "--log-every", "10", *TINY, "--out", outs[name])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "best: trial" in result.output
        assert len(trials_of(outs[name])) == 3
        # trial 0 is the strategy's registered defaults, resolved as `lipgan train` would
        defaults = runs.prepare(TrainConfig(constraint=name, iters=20, log_every=10,
                                            **TINY_CONFIG)).config  # fmt: skip
        trial0 = run_config(outs[name], 0)
        for field in (*SHARED_FIELDS, "betas", "constraint_options", "lr_decay", "hidden"):
            assert getattr(trial0, field) == getattr(defaults, field), field
    assert run_config(outs["gp"], 0).constraint_options == {"gp.weight": 0.1}
    assert run_config(outs["clip"], 0).constraint_options == {"clip.c": 0.01}
    for draw in (1, 2):  # the same shared draw for both, each its own strategy draw
        gp, clip = run_config(outs["gp"], draw), run_config(outs["clip"], draw)
        assert [getattr(gp, f) for f in SHARED_FIELDS] == [getattr(clip, f) for f in SHARED_FIELDS]
        assert gp.lr != run_config(outs["gp"], 0).lr
        assert 1e-3 <= clip.constraint_options["clip.c"] <= 1.0
        assert clip.betas is None and clip.optimizer == "rmsprop"  # betas only for Adam

    best_file = outs["gp"] / "best.toml"
    best = load_toml(best_file)
    data = json.loads((outs["gp"] / "results.json").read_text())
    best_trial = data["best"]["trial"]
    assert data["best"]["objective"] == min(r["objective"] for r in data["trials"])
    assert best.lr == run_config(outs["gp"], best_trial).lr
    (outs["gp"] / "trials.csv").read_text().splitlines()[0].startswith("trial,status,objective")
    trained = tmp_path / "best-run"
    result = invoke("train", "--config", best_file, "--iters", "5", "--out", trained)
    assert result.exit_code == 0, result.output
    again = load_toml(trained / "config.toml")
    for field in (*SHARED_FIELDS, "betas", "constraint_options", "hidden", "batch_size"):
        assert getattr(again, field) == getattr(best, field), field


def test_the_same_seed_gives_the_same_trials(tmp_path):
    base = TrainConfig(constraint="gp", iters=20, **TINY_CONFIG)

    def values(seed: int, folder: str) -> list:
        tune = study.setup(study.replace(base, seed=seed), tmp_path / folder, trials=4,
                           seeds=[0], threads=1)  # fmt: skip
        return [tune.values_for(k) for k in range(4)]

    first, again, other = values(3, "a"), values(3, "b"), values(4, "c")
    assert first == again
    assert first[0] == other[0]  # trial 0: the defaults, whatever the seed
    assert first[1:] != other[1:]
    assert set(first[1]) == {*spaces.SHARED, "gp.weight"}


def test_lipgan_constraints_shows_each_search_space_and_the_shared_one():
    result = CliRunner().invoke(app, ["constraints"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    clip = next(line for line in result.output.splitlines() if "│ clip " in line)
    assert "c log-uniform [0.001, 1]" in clip
    assert "lr log-uniform [1e-05, 0.01]" in " ".join(result.output.split())


def test_bad_tune_options_are_one_line_errors(tmp_path):
    cases = {
        ("--trials", "0"): "--trials must be >= 1",
        ("--sampler", "grid"): "--sampler 'grid' is not one of: random, tpe",
        ("--space", tmp_path / "missing.toml"): "does not exist",
    }
    cases[("--resume", tmp_path / "saved")] = "--constraint cannot change a saved study"
    for args, needle in cases.items():
        out = tmp_path / "never"
        result = invoke("tune", "--constraint", "gp", *args, "--out", out)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], result.output
        assert not out.exists()


def lipgan_process(*args, env_path: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="250")
    if env_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(env_path), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "lipgan", *map(str, args)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.slow  # 3 + 3 runs of 30 iterations and a fresh interpreter: ~25 s
def test_a_study_killed_mid_trial_resumes_to_the_same_study(tmp_path):
    config = tmp_path / "often.toml"  # a checkpoint every 5 iterations: kill between two
    config.write_text("checkpoint_every = 5\nsample_every = 1000\n")
    args = ["--constraint", "gp", "--trials", "3", "--iters", "30", "--log-every", "5",
            "--seed", "5", "--config", config, *TINY]  # fmt: skip
    whole = tmp_path / "whole"
    assert invoke("tune", *args, "--out", whole).exit_code == 0

    killed = tmp_path / "killed"
    process = lipgan_process("tune", *args, "--out", killed)
    checkpoint = killed / "runs" / study.trial_run_name(1, 5) / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)  # mid trial 1: its run has a checkpoint, no summary
    process.communicate()
    assert not (killed / "runs" / study.trial_run_name(1, 5) / "summary.json").exists()
    assert not (killed / "results.json").exists()

    result = invoke("tune", "--resume", killed)
    assert result.exit_code == 0, result.output
    assert trials_of(killed) == trials_of(whole)  # same draws, same objectives, bit for bit
    optuna = study.require_optuna()
    journal = study.open_study(study.resume_setup(killed))
    states = [t.state for t in journal.get_trials()]
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # the killed trial 1, closed
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3


PLUGIN = """
from lipgan.constraints import RMSPROP, register
from lipgan.constraints.clipping import WeightClipping
from lipgan.tune import LogUniform, tunable


@tunable({"bound": LogUniform(0.02, 0.5)})
@register("box-clip", description="clip into [-bound, bound]", optimizer=RMSPROP)
class BoxClip(WeightClipping):
    def __init__(self, bound: float = 0.1) -> None:
        super().__init__(c=bound)
"""


@pytest.mark.slow  # a fresh interpreter, 3 runs of 20 iterations: ~10 s
def test_a_plugin_strategy_with_its_own_space_is_tuned(tmp_path):
    site = tmp_path / "site"
    info = site / "lipgan_boxclip-0.1.0.dist-info"
    info.mkdir(parents=True)
    (site / "lipgan_boxclip.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lipgan-boxclip\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[lipgan.constraints]\nbox-clip = lipgan_boxclip\n")

    out = tmp_path / "study"
    tuned = lipgan_process("tune", "--constraint", "box-clip", "--trials", "3", "--iters", "20",
                           "--log-every", "10", *TINY, "--out", out, env_path=site)  # fmt: skip
    _, stderr = tuned.communicate(timeout=300)
    assert tuned.returncode == 0, stderr
    space = json.loads((out / "results.json").read_text())["space"]
    assert space["box-clip.bound"] == "log-uniform [0.02, 0.5]"
    assert "beta1" not in space  # an RMSprop strategy: Adam's betas do not apply
    bounds = [r["box-clip.bound"] for r in trials_of(out)]
    assert bounds[0] == 0.1 and all(0.02 <= b <= 0.5 for b in bounds) and len(set(bounds)) == 3
    assert load_toml(out / "runs" / "t002__s0" / "config.toml").constraint_options == {
        "box-clip.bound": bounds[2]
    }


@pytest.mark.slow  # at most 6 runs of 20 iterations: ~10 s
def test_a_pruned_trial_stops_on_its_first_seed_and_counts_as_the_worst(tmp_path):
    base = TrainConfig(constraint="clip", iters=20, log_every=10, sample_every=10000,
                       checkpoint_every=10000, **TINY_CONFIG)  # fmt: skip
    tune = study.setup(base, tmp_path / "pruned", trials=3, seeds=[0, 1], prune=True, threads=1)
    data = study.run_tune(tune)
    statuses = [r["status"] for r in data["trials"]]
    assert statuses == ["ok", "ok", "pruned"]  # fixed seeds: trial 2 is below the rung's best
    runs_dir = tune.out / "runs"
    first = runs_dir / study.trial_run_name(2, 0)
    assert not (first / "summary.json").exists()  # stopped at the rung (10 of 20 iterations)
    assert RunFolder(first).read_metrics()[-1]["step"] == 10
    assert not (runs_dir / study.trial_run_name(2, 1)).exists()  # its other seed never ran
    assert all((runs_dir / study.trial_run_name(k, 1) / "summary.json").exists() for k in (0, 1))
    assert data["budget_curve"][0]["expected_best"] is None  # one draw in three gives nothing
    assert data["budget_curve"][2]["expected_best"] == data["best"]["objective"]


def test_a_draw_lipgan_refuses_is_a_failed_trial_and_the_study_goes_on(tmp_path):
    space = tmp_path / "space.toml"  # group size 3 does not divide the width 16
    space.write_text("[orthogonal]\ngroup_size = {choice = [3]}\n")
    base = TrainConfig(constraint="orthogonal", iters=10, log_every=5, sample_every=10000,
                       checkpoint_every=10000, **TINY_CONFIG)  # fmt: skip
    tune = study.setup(base, tmp_path / "study", trials=2, seeds=[0], space_file=space,
                       threads=1)  # fmt: skip
    data = study.run_tune(tune)
    assert [r["status"] for r in data["trials"]] == ["ok", "invalid"]
    assert data["trials"][1]["orthogonal.group_size"] == 3
    assert data["best"]["trial"] == 0
    assert not (tune.out / "runs" / study.trial_run_name(1, 0)).exists()
