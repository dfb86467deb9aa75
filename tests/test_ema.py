"""Generator EMA and evaluation mode: the average's math, its place in checkpoints, and
measurements that never move training state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lipgan import engine
from lipgan.data.toy import ToyData
from lipgan.ema import GeneratorEMA, evaluating, warmup_decay
from lipgan.runio import RunFolder, load_checkpoint, save_checkpoint

from runkit import TINY, cli, last_state, parameters, resume_run, train_run


def test_warmup_decay_values():
    assert warmup_decay(0.999, 0) == pytest.approx(0.1)
    assert warmup_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmup_decay(0.999, 990) == pytest.approx(0.991)
    assert warmup_decay(0.999, 10**6) == 0.999


def test_ema_of_a_known_sequence_of_weights():
    # decay 0.2: the warm-up gives 0.1, 2/11, then 0.2 (3/12 > 0.2)
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    ema = GeneratorEMA(net, 0.2)
    expected = []
    for value, mean, batches in ((1.0, 4.0, 1), (2.0, 8.0, 2), (3.0, 0.0, 3)):
        with torch.no_grad():
            net[0].weight.fill_(value)
            net[1].running_mean.fill_(mean)
            net[1].num_batches_tracked.fill_(batches)
        ema.update(net)
        expected.append((float(ema.model[0].weight), float(ema.model[1].running_mean)))
        assert int(ema.model[1].num_batches_tracked) == batches  # integer buffers: copied
    # 0.1*0 + 0.9*1 = 0.9; (2/11)*0.9 + (9/11)*2 = 1.8; 0.2*1.8 + 0.8*3 = 2.76
    # running mean from 0: 0.9*4 = 3.6; (2/11)*3.6 + (9/11)*8 = 7.2; 0.2*7.2 + 0 = 1.44
    np.testing.assert_allclose(expected, [(0.9, 3.6), (1.8, 7.2), (2.76, 1.44)], rtol=1e-6)
    assert ema.updates == 3 and not ema.model.training
    assert not any(p.requires_grad for p in ema.model.parameters())
    assert float(net[0].weight.detach()) == 3.0  # the source is untouched


def test_evaluating_restores_each_submodule_mode():
    net = nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))
    net[0].eval()  # a mixed state comes back as it was
    with evaluating(net, None):
        assert not any(m.training for m in net.modules())
    assert [m.training for m in net.modules()] == [True, False, True]


def test_ema_off_leaves_the_training_trajectory_unchanged(tmp_path):
    train_run(tmp_path / "on", iters=12)
    train_run(tmp_path / "off", iters=12, ema_decay=0.0)
    on, off = last_state(tmp_path / "on"), last_state(tmp_path / "off")
    assert "generator_ema" in on and "generator_ema" not in off
    params_on = {k: v for k, v in parameters(on).items() if not k.startswith("generator_ema")}
    params_off = parameters(off)
    assert params_on.keys() == params_off.keys()
    for name, tensor in params_off.items():
        torch.testing.assert_close(params_on[name], tensor, rtol=0, atol=0, msg=name)
    # metrics: off logs the raw generator as quality/; on logs it as quality_raw/
    rows_on = RunFolder(tmp_path / "on").read_metrics()
    rows_off = RunFolder(tmp_path / "off").read_metrics()
    for row_on, row_off in zip(rows_on, rows_off, strict=True):
        for key, value in row_off.items():
            raw_key = key.replace("quality/", "quality_raw/")
            assert row_on[raw_key] == value, key
    assert rows_on[-1]["quality/w1"] != rows_on[-1]["quality_raw/w1"]
    summary = json.loads(RunFolder(tmp_path / "on").summary.read_text())
    assert summary["w1"] == rows_on[-1]["quality/w1"]
    assert summary["w1_raw"] == rows_on[-1]["quality_raw/w1"]


def test_log_and_sample_steps_do_not_change_an_sn_trajectory(tmp_path):
    # sn's power iteration runs on every critic forward in train mode: a measurement in
    # train mode (interpolate gradient norms, the sample picture's critic surface) would
    # advance it and change the run
    common = {"iters": 20, "constraint": "sn", "checkpoint_every": 20}
    train_run(tmp_path / "a", log_every=20, sample_every=20, **common)
    train_run(tmp_path / "b", log_every=2, sample_every=3, **common)
    params_a, params_b = (
        parameters(last_state(tmp_path / "a")),
        parameters(last_state(tmp_path / "b")),
    )
    assert any("parametrizations.weight.original" in name for name in params_a)
    for name, tensor in params_a.items():
        torch.testing.assert_close(params_b[name], tensor, rtol=0, atol=0, msg=name)


def test_metrics_and_lipgan_sample_draw_the_same_samples(tmp_path):
    run = tmp_path / "run"
    train_run(run, iters=8)
    n = TINY["eval_samples"] * 4  # eval_sets: 4 on toy data
    out = tmp_path / "samples.npy"
    seed = TINY["seed"] + engine.EVAL_SEED_OFFSET
    result = cli("sample", run, "--n", n, "--seed", seed, "--out", out)
    assert result.exit_code == 0, result.output
    samples = torch.from_numpy(np.load(out))
    metrics = ToyData("8gaussians").evaluate(samples, seed, sets=4)
    last = RunFolder(run).read_metrics()[-1]
    assert metrics["quality/w1"] == pytest.approx(last["quality/w1"], abs=1e-8)
    # and they come from the EMA generator, not the raw one
    state = last_state(run)
    assert not torch.equal(
        state["generator_ema"]["model"]["net.0.weight"], state["generator"]["net.0.weight"]
    )


def test_image_grids_and_lipgan_sample_agree_with_batch_norm(tmp_path):
    # the DCGAN generator has batch norm: train-mode and eval-mode samples differ
    run = tmp_path / "digits"
    train_run(
        run, data="digits", iters=3, hidden=8, batch_size=16, eval_samples=16, z_dim=8,
        sample_every=3, log_every=3,
    )  # fmt: skip
    grid = RunFolder(run).sample_path(3).with_suffix(".png")
    out = tmp_path / "again.png"
    seed = TINY["seed"] + engine.EVAL_SEED_OFFSET
    result = cli("sample", run, "--n", 16, "--seed", seed, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == grid.read_bytes()


def test_a_checkpoint_without_ema_state_resumes_and_samples(tmp_path):
    run = tmp_path / "old"
    train_run(run, iters=8)
    folder = RunFolder(run)
    state = load_checkpoint(folder.last)
    del state["generator_ema"]  # as written before EMA existed
    save_checkpoint(folder.last, state)
    result = cli("sample", run, "--n", 16, "--out", tmp_path / "old.npy")
    assert result.exit_code == 0, result.output
    resume_run(run, iters=12)
    resumed = last_state(run)
    assert resumed["iteration"] == 12 and resumed["generator_ema"]["updates"] == 4
