"""fp16 (emulated on the CPU) and batch statistics in the training loop.

``resolve`` refuses --precision fp16 without CUDA; these tests set it after resolving
(the engine itself runs fp16 on any device: ``torch.autocast("cpu", dtype=torch.float16)``
with ``torch.amp.GradScaler("cpu")``). CUDA is not exercised here.
"""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch

from lipgan import constraints, engine
from lipgan.config import load_toml, replace
from lipgan.data.toy import ToyData
from lipgan.engine.measure import _finite

from runkit import TINY_ARGS, cli, last_state
from testkit import tiny_config

# The module, not the function ``lipgan.engine.resolve`` that shadows it on the package.
resolve_module = importlib.import_module("lipgan.engine.resolve")

DOUBLE_BACKWARD = [
    n for n in constraints.names() if constraints.get(n).factory.needs_double_backward
]


def fp16_run(tmp_path, constraint: str, **changes):
    config = engine.resolve(tiny_config(constraint=constraint, **changes), "points")
    config = replace(config, precision="fp16")  # past resolve's CUDA check: CPU emulation
    summary = engine.train(config, tmp_path / constraint)
    lines = (tmp_path / constraint / "metrics.jsonl").read_text().splitlines()
    return summary, [json.loads(line) for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("constraint", DOUBLE_BACKWARD)
def test_every_double_backward_strategy_trains_200_iterations_in_fp16(tmp_path, constraint):
    summary, metrics = fp16_run(tmp_path, constraint, iters=200, log_every=20)
    assert summary["rollbacks"] == 0
    assert len(metrics) == 10
    for line in metrics:
        for key in ("loss/critic", "loss/penalty", "loss/generator"):
            assert math.isfinite(line[key]), (line["step"], key)
    # The scaler starts at 65536 and halves on every overflow: those steps are counted,
    # not logged, and the run carries on.
    skipped = [line["amp/skipped_steps"] for line in metrics]
    assert all(s == int(s) and s >= 0 for s in skipped)
    assert sum(skipped) >= 1  # the initial scale overflows at least once


def fp16_parts(**changes) -> engine.Parts:
    config = engine.resolve(tiny_config(**changes), "points")
    config = replace(config, precision="fp16")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), engine.distributed.setup("cpu"))
    return parts


def test_a_step_the_scaler_skips_is_counted_and_its_losses_are_not_logged():
    parts = fp16_parts(constraint="gp")
    before = [p.detach().clone() for p in parts.critic.parameters()]
    parts.scaler_critic = torch.amp.GradScaler("cpu", init_scale=2.0**100)  # overflows fp16
    engine.critic_update(parts)
    after = list(parts.critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # not applied
    assert parts.window.tolist() == [0, 0, 0, 0, 0, 1]
    assert _finite(parts) is False  # every step skipped: nothing was trained
    parts.scaler_critic = torch.amp.GradScaler("cpu", init_scale=256.0)  # fits fp16
    engine.critic_update(parts)
    window = parts.window.tolist()
    assert window[3] == 1 and window[5] == 1 and math.isfinite(window[0]) and window[0] != 0
    assert _finite(parts) is True


def test_a_batch_norm_critic_scores_fakes_with_reals_in_the_generator_step():
    config = engine.resolve(tiny_config(constraint="none", critic_norm="batch"), "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), engine.distributed.setup("cpu"))
    assert parts.critic_batch_stats
    state = parts.rand.generator.get_state()
    z = parts.rand.normal(parts.local_batch, config.z_dim)
    real = parts.data.draw(parts.rand, parts.local_batch)
    with torch.no_grad():
        fake = parts.generator(z)
        n = real.shape[0]
        together = -parts.critic(torch.cat([real, fake]))[n:].mean()  # as the critic step
        alone = -parts.critic(fake).mean()
    parts.rand.generator.set_state(state)
    engine.generator_update(parts)
    logged = parts.window[2].item()
    assert logged == pytest.approx(together.item(), rel=1e-6)
    assert abs(alone.item() - together.item()) > 1e-3  # the two ways differ measurably


@pytest.mark.parametrize(
    ("flags", "fast"),
    [({}, False), ({"avx2": True, "avx512_f": True}, False), ({"avx512_bf16": True}, True),
     ({"amx_bf16": True}, True)],
)  # fmt: skip
def test_bf16_is_fast_on_a_cpu_only_with_bf16_units(monkeypatch, flags, fast) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: flags)
    assert resolve_module.bf16_is_fast(torch.device("cpu")) is fast


@pytest.mark.parametrize(("capability", "fast"), [((7, 5), False), ((8, 0), True)])
def test_bf16_is_fast_on_cuda_from_compute_capability_8(monkeypatch, capability, fast) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_module.bf16_is_fast(torch.device("cuda")) is fast


@pytest.mark.parametrize(("fast", "chosen"), [(False, "fp32"), (True, "bf16")])
def test_precision_auto_is_chosen_once_said_first_and_kept_by_resume(
    tmp_path, monkeypatch, fast, chosen
) -> None:
    run = tmp_path / "run"
    monkeypatch.setattr(resolve_module, "bf16_is_fast", lambda device: fast)
    result = cli("train", *TINY_ARGS, "--iters", 4, "--precision", "auto", "--out", run)
    assert result.exit_code == 0, result.output
    said = f"for 4 iterations in {chosen} (chosen by --precision auto)"
    assert said in result.output.splitlines()[0]
    saved = load_toml(run / "config.toml")
    assert (saved.precision, saved.precision_auto) == (chosen, True)
    # Resumed where the check answers the opposite: the run keeps the precision it had.
    monkeypatch.setattr(resolve_module, "bf16_is_fast", lambda device: not fast)
    result = cli("train", "--resume", run, "--iters", 8)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("resuming") and f"in {chosen} (chosen by --precision auto)" in first
    saved = load_toml(run / "config.toml")
    assert (saved.precision, saved.precision_auto) == (chosen, True)
    state = last_state(run)
    assert state["iteration"] == 8 and state["config"]["precision"] == chosen


def test_an_explicit_precision_is_not_marked_auto(monkeypatch) -> None:
    monkeypatch.setattr(resolve_module, "bf16_is_fast", lambda device: True)
    for precision in ("fp32", "bf16"):
        config = engine.resolve(tiny_config(precision=precision), "points")
        assert (config.precision, config.precision_auto) == (precision, False)
