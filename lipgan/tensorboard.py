"""TensorBoard logging as a training callback (optional extra: lipgan[tensorboard]).

At each log step every metric is a scalar under its namespaced name (loss/critic,
quality/w1 ...); every sample file the run writes becomes an image (or text); every
checkpoint adds a histogram of each critic weight tensor. The engine knows nothing of
TensorBoard: it calls the hooks, on the main process only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lipgan.callbacks import Callback
from lipgan.config import TrainConfig
from lipgan.errors import ConfigError
from lipgan.runio import load_checkpoint

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


class TensorBoardLogger(Callback):
    """Mirrors a run into TensorBoard event files in ``log_dir`` (default RUN/tensorboard).

    Use as a context manager (or call ``close``) so the last events are flushed.
    """

    def __init__(self, log_dir: Path | None = None) -> None:
        require_tensorboard()
        self.log_dir = log_dir
        self.writer: Any = None  # opened at the start, on the main process only
        self.histogram_iteration: int | None = None

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def on_train_start(self, config: TrainConfig, run_dir: Path, iteration: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.log_dir or Path(run_dir) / "tensorboard"))

    def on_log(self, iteration: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            if key != "step" and isinstance(value, int | float):
                self.writer.add_scalar(key, value, iteration)
        self.writer.flush()

    def on_sample(self, iteration: int, path: Path) -> None:
        if path.suffix == ".png":
            import numpy as np
            from PIL import Image

            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image("samples", pixels, iteration, dataformats="HWC")
        elif path.suffix == ".txt":
            text = path.read_text("utf-8", errors="replace")[:4000]
            self.writer.add_text("samples", "    " + text.replace("\n", "\n    "), iteration)

    def on_checkpoint(self, iteration: int, path: Path) -> None:
        if iteration == self.histogram_iteration:
            return
        self.histogram_iteration = iteration
        state = load_checkpoint(path)
        for name, tensor in state["critic"].items():
            if tensor.dim() >= 2 and tensor.is_floating_point():
                self.writer.add_histogram(f"critic/{name}", tensor.float(), iteration)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
