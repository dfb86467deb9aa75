"""A short gp run on digits lowers the Frechet distance of the untrained generator."""

from __future__ import annotations

import json

import pytest
import torch

from lipgan import data as datasets
from lipgan import engine, models
from lipgan.config import TrainConfig


@pytest.mark.slow
def test_gp_on_digits_lowers_frechet(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPGAN_CACHE_DIR", str(tmp_path / "cache"))
    config = TrainConfig(
        data="digits", constraint="gp", iters=150, batch_size=64, hidden=32,
        log_every=150, sample_every=1000, checkpoint_every=1000, eval_samples=256,
    )  # fmt: skip
    data = datasets.load("digits", image_size=None, channels=None, seq_len=32, seed=0)
    config = engine.resolve(config, data.family)
    torch.manual_seed(0)
    untrained, _ = models.build(config, data.meta())
    z = torch.randn(256, config.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = data.evaluate(untrained.eval()(z), seed=0)["quality/frechet"]
    summary = engine.train(config, tmp_path / "run", data=data)
    assert summary["frechet"] < 0.5 * before
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["frechet"] == summary["frechet"]
