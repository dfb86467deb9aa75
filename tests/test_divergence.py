"""The divergence guard: a non-finite critic stops the run cleanly or rolls it back.

NaN is injected by a test-only strategy (a legitimate plug-in): its after_critic_step
writes NaN into a critic weight at one chosen critic step. It is registered into a copy
of the registry for each test only, so tests parametrized over every registered name
never see it.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from lipgan import engine
from lipgan.constraints import registry
from lipgan.constraints.base import Constraint
from lipgan.errors import DivergenceError
from lipgan.runio import RunFolder, load_checkpoint

from runkit import TINY, TINY_ARGS, cli, last_state, parameters, stop_after, train_run

NAME = "test-nan-injection"
N_CRITIC = 5


class NaNInjection(Constraint):
    """Writes NaN into the first critic weight after critic step ``at`` (1-based).

    With ``repeat`` it does so at every critic step from ``at`` on.
    """

    def __init__(self, at: int = 1, repeat: int = 0) -> None:
        self.at = at
        self.repeat = bool(repeat)
        self.steps = 0

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        self.steps += 1
        if self.steps == self.at or (self.repeat and self.steps > self.at):
            next(critic.parameters()).view(-1)[0] = float("nan")


@pytest.fixture
def nan_strategy(monkeypatch) -> str:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    # n_critic 5 on every family, so at_iteration's arithmetic holds on points too
    optimizer = registry.OptimizerDefaults("adam", 1e-4, (0.5, 0.9))
    registry.register(NAME, description="test only: injects NaN", optimizer=optimizer)(NaNInjection)
    return NAME


def at_iteration(iteration: int) -> str:
    """The --option that injects NaN during generator iteration ``iteration`` (1-based)."""
    return f"{NAME}.at={(iteration - 1) * N_CRITIC + 2}"


def all_finite(state: dict) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in parameters(state).values())


def test_nan_stops_the_run_with_exit_3_and_the_last_good_checkpoint(tmp_path, nan_strategy):
    out = tmp_path / "run"
    # NaN during iteration 6; log steps every 4: detected at 8, last good state is 4.
    result = cli("train", *TINY_ARGS, "-c", NAME, "-o", at_iteration(6), "--iters", 12,
                 "--out", out)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: training diverged")
    assert "between iterations 4 and 8" in error
    assert "--on-nan rollback" in error
    state = last_state(out)
    assert state["iteration"] == 4
    assert all_finite(state)
    assert [m["step"] for m in RunFolder(out).read_metrics()] == [4]
    assert not RunFolder(out).summary.exists()


def test_rollback_reloads_the_good_state_halves_the_lr_and_finishes(tmp_path, nan_strategy):
    out = tmp_path / "run"
    result = cli("train", *TINY_ARGS, "-c", NAME, "-o", at_iteration(6), "--iters", 12,
                 "--on-nan", "rollback", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rolled back to iteration 4, learning rate x0.5 (rollback 1/3)" in result.output
    summary = json.loads(RunFolder(out).summary.read_text())
    assert summary["rollbacks"] == 1
    state = last_state(out)
    assert state["iteration"] == 12
    assert all_finite(state)
    assert state["lr_scale"] == 0.5
    lr = float(state["config"]["lr"])
    assert [g["lr"] for g in state["opt_critic"]["param_groups"]] == [lr * 0.5]
    metrics = RunFolder(out).read_metrics()
    assert [m["step"] for m in metrics] == [4, 8, 12]
    assert all(math.isfinite(v) for m in metrics for v in m.values())


def test_rollbacks_are_bounded(tmp_path, nan_strategy):
    out = tmp_path / "run"
    with pytest.raises(DivergenceError) as error:
        train_run(out, iters=12, constraint=NAME, on_nan="rollback", max_rollbacks=2,
                  constraint_options={f"{NAME}.at": 2, f"{NAME}.repeat": 1})  # fmt: skip
    assert error.value.exit_code == 3
    state = last_state(out)
    assert state["iteration"] == 0 and all_finite(state)


def test_an_interrupt_after_a_nan_never_saves_the_nan(tmp_path, nan_strategy):
    """A stop between log steps runs the guard first: the NaN is caught, not saved."""
    out = tmp_path / "run"
    options = {f"{NAME}.at": int(at_iteration(5).split("=")[1])}
    with pytest.raises(DivergenceError, match="between iterations 4 and 6"):
        train_run(out, should_stop=stop_after(6), iters=12, constraint=NAME,
                  constraint_options=options)  # fmt: skip
    state = last_state(out)
    assert all_finite(state)
    assert state["iteration"] == 4  # the last state known to be good


def test_an_interrupt_after_a_nan_with_rollback_saves_the_rolled_back_run(tmp_path, nan_strategy):
    out = tmp_path / "run"
    options = {f"{NAME}.at": int(at_iteration(5).split("=")[1])}
    with pytest.raises(engine.Interrupted, match="stopped at iteration 5/12"):
        train_run(out, should_stop=stop_after(6), iters=12, constraint=NAME,
                  constraint_options=options, on_nan="rollback")  # fmt: skip
    state = last_state(out)
    assert all_finite(state)
    assert (state["iteration"], state["rollbacks"], state["lr_scale"]) == (5, 1, 0.5)


def test_periodic_checkpoints_never_hold_a_nan(tmp_path, nan_strategy):
    out = tmp_path / "run"
    options = {f"{NAME}.at": int(at_iteration(5).split("=")[1])}
    with pytest.raises(DivergenceError):
        train_run(out, iters=12, constraint=NAME, constraint_options=options,
                  checkpoint_every=1, keep=20)  # fmt: skip
    saved = sorted(RunFolder(out).checkpoints.glob("*.pt"))
    assert saved
    for path in saved:
        assert all_finite(load_checkpoint(path)), path.name


def test_the_guard_checks_the_final_iteration_too(tmp_path, nan_strategy):
    out = tmp_path / "run"
    # NaN in iteration 6 of 6 with log steps every 4: only the final step can catch it.
    with pytest.raises(DivergenceError, match="between iterations 4 and 6"):
        train_run(out, iters=6, constraint=NAME,
                  constraint_options={f"{NAME}.at": (6 - 1) * N_CRITIC + 2})  # fmt: skip
    assert TINY["log_every"] == 4
    assert all_finite(last_state(out))
