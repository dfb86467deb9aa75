"""Generator EMA and evaluation mode: what every measurement and sample is drawn from.

The EMA generator is an exponential moving average of the generator's weights, updated
after every generator step (as in ProGAN, StyleGAN, BigGAN):

    ema <- decay_t * ema + (1 - decay_t) * weights,   decay_t = min(decay, (1 + t) / (10 + t))

with t the number of updates so far: the warm-up lets the average forget the random
initial weights within the first few hundred steps instead of 1 / (1 - decay). Floating
buffers (batch norm's running mean and variance in the DCGAN and ResNet generators) are
averaged the same way, as ``AveragedModel(use_buffers=True)`` does; integer buffers
(batch counts) are copied. It never feeds back into training: the run's trajectory is
the same with or without it.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


def warmup_decay(decay: float, updates: int) -> float:
    """The decay used for update number ``updates`` (0-based)."""
    return min(decay, (1 + updates) / (10 + updates))


class GeneratorEMA:
    """An averaged copy of a generator, always in eval mode and without gradients."""

    def __init__(self, generator: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        """One step of the average towards ``generator``'s current weights and buffers."""
        weight = 1 - warmup_decay(self.decay, self.updates)
        averaged, current = [], []
        pairs = zip(_tensors(self.model), _tensors(generator), strict=True)
        for mine, theirs in pairs:
            if mine.is_floating_point():
                averaged.append(mine)
                current.append(theirs.detach())
            else:
                mine.copy_(theirs)
        if averaged:
            torch._foreach_lerp_(averaged, current, weight)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


@contextlib.contextmanager
def evaluating(*modules: nn.Module | None) -> Iterator[None]:
    """Eval mode for the duration, then every submodule's own mode back.

    In eval mode batch norm uses its running statistics (and does not update them) and
    spectral norm skips its power iteration, so a measurement changes no training state.
    """
    saved = [(m, m.training) for module in modules if module is not None for m in module.modules()]
    for module in modules:
        if module is not None:
            module.eval()
    try:
        yield
    finally:
        for m, training in saved:
            m.training = training
