"""The training loop end to end on tiny configs."""

from __future__ import annotations

import json

import pytest
import torch

from lipgan import engine
from lipgan.data.toy import ToyData
from lipgan.runio import load_checkpoint

from testkit import tiny_config


def run(tmp_path, name="run", **changes):
    config = engine.resolve(tiny_config(**changes), "points")
    summary = engine.train(config, tmp_path / name)
    return summary, tmp_path / name


def test_run_folder_holds_config_metrics_samples_checkpoints_summary(tmp_path):
    summary, folder = run(tmp_path, iters=6, log_every=3, sample_every=3, checkpoint_every=3)
    assert (folder / "config.toml").read_text().count('constraint = "gp"') == 1
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [3, 6]
    assert sorted(p.name for p in (folder / "samples").iterdir()) == [
        "step_000003.png",
        "step_000006.png",
    ]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [
        "last.pt",
        "step_000003.pt",
        "step_000006.pt",
    ]
    on_disk = json.loads((folder / "summary.json").read_text())
    for key in ("w1", "w1_floor", "modes", "hq_fraction", "seconds", "seconds_per_iter"):
        assert key in on_disk
    assert on_disk["w1"] == json.loads(lines[-1])["quality/w1"]
    assert summary["w1"] == on_disk["w1"]
    assert load_checkpoint(folder / "checkpoints" / "last.pt")["iteration"] == 6


def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path):
    _, a = run(tmp_path, "a", seed=3)
    _, b = run(tmp_path, "b", seed=3)
    _, c = run(tmp_path, "c", seed=4)
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()
    assert (a / "metrics.jsonl").read_bytes() != (c / "metrics.jsonl").read_bytes()


def test_clip_run_keeps_every_critic_weight_in_the_box(tmp_path):
    _, folder = run(tmp_path, constraint="clip", constraint_options={"clip.c": 0.05}, lr=0.01)
    state = load_checkpoint(folder / "checkpoints" / "last.pt")["critic"]
    assert max(t.abs().max().item() for t in state.values()) == pytest.approx(0.05)


def test_resolve_fills_strategy_and_family_defaults():
    gp_points = engine.resolve(tiny_config(), "points")
    assert (gp_points.optimizer, gp_points.lr, gp_points.betas) == ("adam", 3e-4, (0.5, 0.9))
    assert gp_points.constraint_options == {"gp.weight": 0.1}
    assert (gp_points.n_critic, gp_points.lr_decay, gp_points.z_dim) == (3, "linear", 2)
    gp_images = engine.resolve(tiny_config(architecture="mlp"), "images")
    assert gp_images.constraint_options == {"gp.weight": 10.0} and gp_images.betas == (0.0, 0.9)
    assert (gp_images.lr, gp_images.n_critic, gp_images.lr_decay) == (1e-4, 5, "constant")
    # what the user sets wins over the recipe
    mine = engine.resolve(tiny_config(n_critic=5, lr_decay="constant", lr=1e-4), "points")
    assert (mine.lr, mine.n_critic, mine.lr_decay) == (1e-4, 5, "constant")
    text = engine.resolve(tiny_config(hidden=None, architecture="mlp"), "text")
    assert (text.lr, text.betas, text.hidden, text.z_dim) == (1e-3, (0.5, 0.9), 32, 128)
    assert engine.resolve(tiny_config(batch_size=None, architecture="mlp"), "text").batch_size == 64
    assert engine.resolve(tiny_config(hidden=None), "points").hidden == 512
    assert engine.resolve(tiny_config(hidden=None, architecture="mlp"), "images").hidden == 64
    clip = engine.resolve(tiny_config(constraint="clip"), "points")
    assert (clip.optimizer, clip.lr, clip.betas) == ("rmsprop", 5e-5, None)
    assert (clip.n_critic, clip.lr_decay) == (5, "constant")  # the WGAN paper's schedule
    assert clip.constraint_options == {"clip.c": 0.01}


def test_lazy_penalty_applies_every_k_critic_steps_scaled_by_k():
    config = engine.resolve(tiny_config(penalty_every=4, n_critic=1), "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), engine.distributed.setup("cpu"))
    calls = []
    original = parts.constraint.penalty

    def spy(critic, batch):
        value = original(critic, batch)
        calls.append((parts.critic_steps, value.item()))
        return value

    parts.constraint.penalty = spy
    real = parts.data.draw(parts.rand, 8)
    applied = []
    for _ in range(8):
        _, penalty = engine.critic_loss(parts, real, real + 1)
        applied.append(None if penalty is None else penalty.item())
        parts.critic_steps += 1
    assert [step for step, _ in calls] == [0, 4]
    assert applied[1:4] == [None] * 3 and applied[5:] == [None] * 3
    assert applied[0] == pytest.approx(4 * calls[0][1], rel=1e-6)
    assert applied[4] == pytest.approx(4 * calls[1][1], rel=1e-6)


@pytest.mark.slow
def test_a_short_gp_run_lowers_w1_well_below_the_untrained_generator(tmp_path):
    torch.set_num_threads(2)
    config = engine.resolve(
        tiny_config(iters=300, hidden=128, batch_size=128, log_every=300, eval_samples=256),
        "points",
    )
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), engine.distributed.setup("cpu"))
    with torch.no_grad():
        untrained = ToyData("8gaussians").evaluate(
            parts.generator(engine._eval_noise(config, "points", torch.device("cpu"))),
            config.seed + engine.EVAL_SEED_OFFSET,
            sets=config.eval_sets,
        )["quality/w1"]
    summary = engine.train(config, tmp_path / "gp")
    assert summary["w1"] < 0.5 * untrained
