"""``lipgan.train`` with callbacks: which hook fires when, with what, and stopping early.

A recording callback writes down every call; the iterations are fixed by the schedule
(log every 4, samples every 6, checkpoints every 8, 12 iterations), and what the hooks
receive must be what the run folder holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

import lipgan
from lipgan.callbacks import Callback
from lipgan.config import TrainConfig
from lipgan.runio import RunFolder

from runkit import TINY, last_state, parameters

SCHEDULE = {**TINY, "iters": 12, "log_every": 4, "sample_every": 6, "checkpoint_every": 8}


class Recorder(Callback):
    def __init__(self, stop_after_log: int | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.stop_after_log = stop_after_log
        self.logged: list[int] = []

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        self.calls.append(("start", (config.iters, run_dir, iteration)))

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        self.calls.append(("log", (iteration, dict(metrics))))
        self.logged.append(iteration)

    def on_sample(self, iteration: int, path: Path) -> None:
        self.calls.append(("sample", (iteration, path)))

    def on_checkpoint(self, iteration: int, path: Path) -> None:
        self.calls.append(("checkpoint", (iteration, path)))

    def on_iteration(self, iteration: int, total: int) -> None:
        self.calls.append(("iteration", (iteration, total)))

    def should_stop(self) -> bool:
        return self.stop_after_log is not None and self.stop_after_log in self.logged

    def on_train_end(self, summary: Mapping[str, Any]) -> None:
        self.calls.append(("end", dict(summary)))

    def of(self, kind: str) -> list[Any]:
        return [args for name, args in self.calls if name == kind]


def config(**changes: Any) -> TrainConfig:
    return TrainConfig(**{**SCHEDULE, **changes})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Recorder, Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("callbacks") / "run"
    recorder = Recorder()
    summary = lipgan.train(config(), out, callbacks=[recorder])
    return recorder, out, summary


def test_each_hook_fires_at_its_iterations(recorded) -> None:
    recorder, out, _ = recorded
    assert recorder.of("start") == [(12, out, 0)]
    assert [i for i, _ in recorder.of("log")] == [4, 8, 12]
    assert recorder.of("sample") == [(6, out / "samples" / "step_000006.png"),
                                     (12, out / "samples" / "step_000012.png")]  # fmt: skip
    assert recorder.of("checkpoint") == [(8, RunFolder(out).last), (12, RunFolder(out).last)]
    assert recorder.of("iteration") == [(i, 12) for i in range(1, 13)]
    names = [name for name, _ in recorder.calls]
    assert names[0] == "start" and names[-1] == "end" and names.count("end") == 1
    # Within iteration 12: log, then the files, then the iteration itself.
    assert names[-5:] == ["log", "sample", "checkpoint", "iteration", "end"]


def test_hooks_receive_what_the_run_folder_holds(recorded) -> None:
    recorder, out, summary = recorded
    run = RunFolder(out)
    assert [metrics for _, metrics in recorder.of("log")] == run.read_metrics()
    for _, path in recorder.of("sample"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert recorder.of("end") == [summary]
    assert json.loads(run.summary.read_text()) == summary


def test_should_stop_ends_the_run_at_that_log_step_and_resume_is_exact(recorded, tmp_path) -> None:
    _, reference, _ = recorded
    out = tmp_path / "stopped"
    recorder = Recorder(stop_after_log=4)
    summary = lipgan.train(config(), out, callbacks=[recorder])
    assert summary["stopped_at"] == 4
    assert recorder.of("checkpoint") == [(4, RunFolder(out).last)]
    assert recorder.of("iteration")[-1] == (4, 12)
    assert last_state(out)["iteration"] == 4
    assert not RunFolder(out).summary.exists()  # not finished

    resumed = lipgan.resume(out, callbacks=[Recorder()])
    assert "stopped_at" not in resumed
    a, b = parameters(last_state(reference)), parameters(last_state(out))
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=0, msg=name)
    assert RunFolder(out).metrics.read_bytes() == RunFolder(reference).metrics.read_bytes()


def test_a_resumed_run_starts_its_callbacks_where_it_stands(tmp_path) -> None:
    out = tmp_path / "run"
    lipgan.train(config(iters=4), out)
    recorder = Recorder()
    lipgan.resume(out, callbacks=[recorder], iters=8)
    assert recorder.of("start") == [(8, out, 4)]
    assert recorder.of("iteration") == [(i, 8) for i in range(5, 9)]
    assert [i for i, _ in recorder.of("log")] == [8]
