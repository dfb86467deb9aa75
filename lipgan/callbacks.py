"""What ``lipgan.train`` tells the outside world while it trains, and how to stop it.

A callback is an object with the hooks it needs; ``Callback`` is the do-nothing one to
subclass (one level, no more). The engine calls every hook on the main process only,
except ``should_stop``, which every process is asked (data-parallel runs agree on it).
The terminal display (``lipgan.display``) and the TensorBoard logger are callbacks; the
engine imports neither.

Order within one generator iteration: ``on_log`` (log steps), ``on_sample`` and
``on_checkpoint`` (as files are written), ``on_iteration``, then ``should_stop``.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lipgan.config import TrainConfig


class Callback:
    """Override the hooks you need; every hook here does nothing."""

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        """Before the first iteration; ``iteration`` is 0, or where a resumed run stands."""

    def on_message(self, text: str) -> None:
        """A line worth showing: a compile note, a rollback."""

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        """The metrics of a log step (also appended to metrics.jsonl)."""

    def on_sample(self, iteration: int, path: Path) -> None:
        """A sample file (picture or text) was written."""

    def on_checkpoint(self, iteration: int, path: Path) -> None:
        """A checkpoint was written (``path`` is checkpoints/last.pt or a numbered one)."""

    def on_iteration(self, iteration: int, total: int) -> None:
        """A generator iteration finished (``total`` is ``config.iters``)."""

    def should_stop(self) -> bool:
        """True to end the run after this iteration, with a checkpoint to resume from."""
        return False

    def on_train_end(self, summary: Mapping[str, Any]) -> None:
        """The run finished or stopped; ``summary`` is what ``train`` returns."""


class Callbacks(Callback):
    """Several callbacks as one: each hook calls them in order."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        for callback in self.callbacks:
            callback.on_train_start(config, run_dir, iteration)

    def on_message(self, text: str) -> None:
        for callback in self.callbacks:
            callback.on_message(text)

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        for callback in self.callbacks:
            callback.on_log(iteration, metrics)

    def on_sample(self, iteration: int, path: Path) -> None:
        for callback in self.callbacks:
            callback.on_sample(iteration, path)

    def on_checkpoint(self, iteration: int, path: Path) -> None:
        for callback in self.callbacks:
            callback.on_checkpoint(iteration, path)

    def on_iteration(self, iteration: int, total: int) -> None:
        for callback in self.callbacks:
            callback.on_iteration(iteration, total)

    def should_stop(self) -> bool:
        # Ask every callback (no short cut): each may count the calls.
        answers = [callback.should_stop() for callback in self.callbacks]
        return any(answers)

    def on_train_end(self, summary: Mapping[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_train_end(summary)


class StopOnSignals(Callback):
    """Ctrl-C / SIGTERM ask the run to stop after the current iteration (a second
    Ctrl-C stops at once). Use as a context manager: it installs the handlers inside.

    Calling the object returns the signal received, or None (the form ``compare`` uses).
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            raise KeyboardInterrupt
        self.received.append(signum)

    def __enter__(self) -> StopOnSignals:
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    @property
    def signum(self) -> int | None:
        return self.received[0] if self.received else None

    def __call__(self) -> int | None:
        return self.signum

    def should_stop(self) -> bool:
        return bool(self.received)
