"""Compile and mixed precision train the same model as eager fp32, to tolerance."""

from __future__ import annotations

import json

import pytest

from lipgan import engine

from testkit import tiny_config


def run(tmp_path, name, **changes):
    config = engine.resolve(tiny_config(iters=4, log_every=2, **changes), "points")
    notes = []
    engine.train(
        config, tmp_path / name, on_progress=lambda p: p.message and notes.append(p.message)
    )
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines], notes


@pytest.mark.parametrize("constraint", ["gp", "fd"])
def test_bf16_autocast_tracks_fp32(tmp_path, constraint):
    fp32, _ = run(tmp_path, "fp32", constraint=constraint)
    bf16, _ = run(tmp_path, "bf16", constraint=constraint, precision="bf16")
    for a, b in zip(fp32, bf16, strict=True):
        assert b["loss/critic"] == pytest.approx(a["loss/critic"], rel=0.1, abs=5e-3)
        assert b["loss/penalty"] == pytest.approx(a["loss/penalty"], rel=0.1, abs=5e-3)
        assert b["quality/w1"] == pytest.approx(a["quality/w1"], rel=0.05)


@pytest.mark.slow
def test_compile_says_what_runs_eager_and_matches_eager(tmp_path):
    eager, _ = run(tmp_path, "eager")
    compiled, notes = run(tmp_path, "compiled", compile=True)
    assert notes == [
        "compiled the generator and the critic's score passes; the penalty's pass runs "
        "eager because torch.compile does not support double backward"
    ]
    for a, b in zip(eager, compiled, strict=True):
        for key in ("loss/critic", "loss/penalty", "loss/generator", "quality/w1"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("constraint", ["gn", "orthogonal", "alr"])
def test_compile_matches_eager_for_the_strategies_that_change_the_critic(tmp_path, constraint):
    # gn wraps the critic's forward in its own input gradient, orthogonal rebuilds its
    # layers, alr searches a direction: each must survive torch.compile unchanged.
    eager, _ = run(tmp_path, "eager", constraint=constraint)
    compiled, _ = run(tmp_path, "compiled", constraint=constraint, compile=True)
    for a, b in zip(eager, compiled, strict=True):
        for key in ("loss/critic", "loss/generator", "quality/w1"):
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5), key
