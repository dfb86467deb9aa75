"""TensorBoard logging as an ``engine.train`` progress callback (optional extra).

The engine reports ``Progress`` after every iteration (``metrics`` set on log steps) and
writes samples and checkpoints into the run folder *before* it reports, so the callback
logs, at each log step:

- every metric as a scalar under its namespaced name (loss/critic, quality/w1 ...);
- each sample picture (or text) the run folder gained since the last log step;
- a histogram of every critic weight tensor whenever checkpoints/last.pt changed.

Reading the run folder keeps the engine free of any TensorBoard code; it costs one
checkpoint load per checkpoint written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lipgan.errors import ConfigError
from lipgan.runio import RunFolder, load_checkpoint

INSTALL_HINT = "pip install lipgan[tensorboard]"


def require_tensorboard() -> None:
    """Raise a one-line ConfigError when the optional package is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--tensorboard needs the tensorboard package; install it with: {INSTALL_HINT}"
        ) from None


class TensorBoardLogger:
    """Callable ``on_progress`` that mirrors a run folder into TensorBoard event files."""

    def __init__(self, log_dir: Path, run_dir: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.enabled = int(os.environ.get("RANK", "0")) == 0  # one writer per run
        self.run = RunFolder(run_dir)
        self.writer = SummaryWriter(str(log_dir)) if self.enabled else None
        self.logged_samples: set[str] = set()
        self.checkpoint_mtime: int | None = None

    def __call__(self, progress: Any) -> None:
        if self.writer is None or progress.metrics is None:
            return
        step = progress.iteration
        for key, value in progress.metrics.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, step)
        self._samples(step)
        self._histograms(step)
        self.writer.flush()

    def _samples(self, step: int) -> None:
        if not self.run.samples.is_dir():
            return
        for path in sorted(self.run.samples.glob("step_*.*")):
            if path.name in self.logged_samples:
                continue
            self.logged_samples.add(path.name)
            sample_step = int(path.stem.removeprefix("step_"))
            if path.suffix == ".png":
                import numpy as np
                from PIL import Image

                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("RGB"))
                self.writer.add_image("samples", pixels, sample_step, dataformats="HWC")
            elif path.suffix == ".txt":
                text = path.read_text("utf-8", errors="replace")[:4000]
                self.writer.add_text("samples", "    " + text.replace("\n", "\n    "), sample_step)

    def _histograms(self, step: int) -> None:
        if not self.run.last.is_file():
            return
        mtime = self.run.last.stat().st_mtime_ns
        if mtime == self.checkpoint_mtime:
            return
        self.checkpoint_mtime = mtime
        state = load_checkpoint(self.run.last)
        for name, tensor in state["critic"].items():
            if tensor.dim() >= 2 and tensor.is_floating_point():
                self.writer.add_histogram(f"critic/{name}", tensor.float(), step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
