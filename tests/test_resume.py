"""An interrupted and resumed run ends exactly where an uninterrupted one does (CPU, same seed).

Run A trains K2 iterations in one go; run B stops after K1 (a signal, or a smaller
--iters) and is resumed to K2. Parameters, optimiser states and metrics.jsonl must be
equal bit for bit: the checkpoint carries every RNG, the data order, the optimiser
states, the step counters and the half-filled log window.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from lipgan import engine
from lipgan.config import load_toml
from lipgan.data.toy import ToyData
from lipgan.distributed import Processes
from lipgan.errors import ConfigError
from lipgan.runio import RunFolder, load_checkpoint, save_checkpoint
from lipgan.runs import build_config

from runkit import TINY, last_state, parameters, resume_run, stop_after, train_run

K2 = 12


def assert_same_run(a: Path, b: Path) -> None:
    """Same parameters, optimiser states and metrics, bit for bit."""
    state_a, state_b = last_state(a), last_state(b)
    assert state_a["iteration"] == state_b["iteration"] == K2
    assert state_a["critic_steps"] == state_b["critic_steps"]
    params_a, params_b = parameters(state_a), parameters(state_b)
    assert params_a.keys() == params_b.keys()
    for name in params_a:
        torch.testing.assert_close(params_b[name], params_a[name], rtol=0, atol=0, msg=name)
    for opt in ("opt_generator", "opt_critic"):
        for index, slot in state_a[opt]["state"].items():
            for key, value in slot.items():
                other = state_b[opt]["state"][index][key]
                torch.testing.assert_close(other, value, rtol=0, atol=0, msg=f"{opt}.{key}")
    assert RunFolder(b).metrics.read_bytes() == RunFolder(a).metrics.read_bytes()
    steps = [m["step"] for m in RunFolder(b).read_metrics()]
    assert steps == list(range(TINY["log_every"], K2 + 1, TINY["log_every"]))
    timeless = {"seconds", "seconds_per_iter"}
    summary_a = json.loads(RunFolder(a).summary.read_text())
    summary_b = json.loads(RunFolder(b).summary.read_text())
    assert {k: v for k, v in summary_b.items() if k not in timeless} == {
        k: v for k, v in summary_a.items() if k not in timeless
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted K2-iteration runs, one per (constraint, schedule), trained once."""
    cache: dict[tuple[str, str], Path] = {}

    def get(constraint: str = "gp", schedule: str = "alternating") -> Path:
        if (constraint, schedule) not in cache:
            out = tmp_path_factory.mktemp("reference") / f"{constraint}-{schedule}"
            train_run(out, iters=K2, constraint=constraint, schedule=schedule)
            cache[constraint, schedule] = out
        return cache[constraint, schedule]

    return get


def test_same_seed_twice_gives_a_byte_identical_metrics_file(tmp_path, reference) -> None:
    first = reference()
    train_run(tmp_path / "again", iters=K2)
    assert_same_run(first, tmp_path / "again")
    other_seed = tmp_path / "other-seed"
    train_run(other_seed, iters=K2, seed=8)
    assert RunFolder(other_seed).metrics.read_bytes() != RunFolder(first).metrics.read_bytes()


@pytest.mark.parametrize(
    ("constraint", "schedule", "k1"),
    [
        ("gp", "alternating", 6),  # between log steps: the log window is in the checkpoint
        ("gp", "alternating", 4),  # on a log step
        ("gp", "alternating", 1),
        ("clip", "alternating", 5),  # RMSprop state and clipping
        ("gp", "one-step", 7),
        ("gn", "alternating", 5),  # the critic is replaced by a wrapper
        ("orthogonal", "alternating", 6),  # rebuilt layers, Björck after every step
        ("alr", "one-step", 5),
    ],
)
def test_interrupted_and_resumed_equals_uninterrupted(
    tmp_path, reference, constraint, schedule, k1
) -> None:
    run = tmp_path / "b"
    with pytest.raises(engine.Interrupted) as stopped:
        train_run(
            run, should_stop=stop_after(k1), iters=K2, constraint=constraint, schedule=schedule
        )
    assert stopped.value.exit_code == 128 + signal.SIGINT
    assert last_state(run)["iteration"] == k1
    resume_run(run)
    assert_same_run(reference(constraint, schedule), run)


def test_interrupted_twice_by_sigterm_still_equals_uninterrupted(tmp_path, reference) -> None:
    run = tmp_path / "b"
    with pytest.raises(engine.Interrupted) as stopped:
        train_run(run, should_stop=stop_after(3, signal.SIGTERM), iters=K2)
    assert stopped.value.exit_code == 143
    with pytest.raises(engine.Interrupted):
        resume_run(run, should_stop=stop_after(6, signal.SIGTERM))
    assert last_state(run)["iteration"] == 9
    resume_run(run)
    assert_same_run(reference(), run)


def test_shorter_run_resumed_with_more_iters_equals_the_longer_run(tmp_path) -> None:
    # With a constant learning rate a run can be extended exactly (a decay's horizon is
    # the budget, so there it cannot: see the next test).
    longer = tmp_path / "a"
    train_run(longer, iters=K2, lr_decay="constant")
    run = tmp_path / "b"
    train_run(run, iters=8, lr_decay="constant")  # 8 is a log step, as in the long run
    resume_run(run, iters=K2)
    assert_same_run(longer, run)
    # The saved config records the new budget, so it describes the run on disk.
    assert load_toml(RunFolder(run).config).iters == K2


def test_an_extended_decayed_run_follows_the_decay_over_its_new_budget(tmp_path) -> None:
    run = tmp_path / "b"
    train_run(run, iters=8, lr_decay="linear")
    lr = float(last_state(run)["config"]["lr"])
    assert last_state(run)["opt_critic"]["param_groups"][0]["lr"] == pytest.approx(lr / 8)
    resume_run(run, iters=16)
    # the last iteration (15 of 16, 0-based) ran at lr * (1 - 15/16)
    assert last_state(run)["opt_critic"]["param_groups"][0]["lr"] == pytest.approx(lr / 16)


def test_resume_drops_a_torn_last_log_line(tmp_path, reference) -> None:
    run = tmp_path / "b"
    with pytest.raises(engine.Interrupted):
        train_run(run, should_stop=stop_after(6), iters=K2)
    with RunFolder(run).metrics.open("a") as handle:
        handle.write('{"step": 8, "loss/cri')  # a crash (or full disk) mid-append
    resume_run(run)
    assert_same_run(reference(), run)


def test_resume_of_a_finished_run_asks_for_more_iters(tmp_path) -> None:
    train_run(tmp_path / "done", iters=4)
    with pytest.raises(ConfigError, match="already finished 4 iterations; raise --iters"):
        resume_run(tmp_path / "done")


def test_a_run_killed_before_its_summary_was_written_resumes_to_the_same_summary(
    tmp_path,
) -> None:
    """Killed between its final checkpoint and summary.json: the resume trains nothing and
    writes the summary the run would have written."""
    train_run(tmp_path / "done", iters=K2)
    folder = RunFolder(tmp_path / "done")
    written = json.loads(folder.summary.read_text())
    metrics, checkpoint = folder.metrics.read_bytes(), folder.last.read_bytes()
    folder.summary.unlink()
    resume_run(tmp_path / "done")
    again = json.loads(folder.summary.read_text())
    assert again.keys() == written.keys()
    timeless = {"seconds", "seconds_per_iter"}
    assert {k: v for k, v in again.items() if k not in timeless} == {
        k: v for k, v in written.items() if k not in timeless
    }
    assert again["seconds"] == pytest.approx(written["seconds"], abs=1.0)  # nothing trained
    assert folder.metrics.read_bytes() == metrics and folder.last.read_bytes() == checkpoint
    with pytest.raises(ConfigError, match="already finished"):  # now it has its summary
        resume_run(tmp_path / "done")


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path) -> None:
    """torch, numpy, Python and the engine's own generator all come back exactly."""
    config = engine.resolve(build_config(None, {**TINY, "seed": 11}), "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), Processes())
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"rng": engine._rng_state(parts)})

    def draws() -> tuple:
        return (
            parts.rand.normal(4, 2).tolist(),
            torch.rand(3).tolist(),
            np.random.rand(3).tolist(),
            np.random.randn(1).tolist(),  # exercises numpy's cached gaussian
            [random.random() for _ in range(3)],
        )

    expected = draws()
    assert draws() != expected
    engine._set_rng_state(parts, load_checkpoint(path, required=("rng",))["rng"])
    assert draws() == expected


def test_a_run_folder_of_the_old_config_form_resumes_and_samples(tmp_path) -> None:
    """Folders written before --lambda/--clip were folded into the strategy options keep
    ``penalty_weight`` at the top of config.toml and of the checkpoint's config."""
    import tomli_w

    from runkit import cli

    out = tmp_path / "old"
    train_run(out, iters=4, constraint="sn+gp", penalty_weight=2.0)
    run = RunFolder(out)
    new = load_toml(run.config).to_dict()
    assert new["constraint_options"]["gp.weight"] == 2.0
    old = {**new, "penalty_weight": 2.0}
    old["constraint_options"] = dict(new["constraint_options"])
    del old["constraint_options"]["gp.weight"]
    run.config.write_text(tomli_w.dumps(old))
    state = load_checkpoint(run.last)
    save_checkpoint(run.last, {**state, "config": old})

    result = cli("train", "--resume", out, "--iters", 6)
    assert result.exit_code == 0, result.output
    assert last_state(out)["iteration"] == 6
    assert load_toml(run.config).constraint_options == new["constraint_options"]
    result = cli("sample", out, "--n", 5, "--out", tmp_path / "s.npy")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "s.npy").shape == (5, 2)


def test_a_run_saved_before_lr_decay_existed_resumes_with_a_constant_rate(tmp_path) -> None:
    # An older lipgan wrote no lr_decay; its runs trained at a constant rate and must go on
    # so (not switch to the points recipe's linear decay), and resume again after that.
    run = tmp_path / "old"
    train_run(run, iters=4, lr_decay="constant")
    folder = RunFolder(run)
    text = folder.config.read_text()
    folder.config.write_text("\n".join(x for x in text.splitlines() if "lr_decay" not in x))
    state = load_checkpoint(folder.last)
    del state["config"]["lr_decay"]
    save_checkpoint(folder.last, state)
    resume_run(run, iters=8)
    assert load_toml(folder.config).lr_decay == "constant"
    assert last_state(run)["config"]["lr_decay"] == "constant"
    resume_run(run, iters=12)  # and once more: the saved files agree with each other
    assert last_state(run)["iteration"] == 12
