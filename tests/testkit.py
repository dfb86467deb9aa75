"""Helpers for tests (tests/ is on pytest's pythonpath): ``from testkit import tiny_config``."""

from __future__ import annotations

from lipgan.config import TrainConfig, replace


def tiny_config(**changes) -> TrainConfig:
    """A resolved-able config small enough for unit tests."""
    base = TrainConfig(
        iters=6,
        batch_size=32,
        hidden=16,
        log_every=3,
        sample_every=1000,
        checkpoint_every=1000,
        eval_samples=64,
    )
    return replace(base, **changes)
