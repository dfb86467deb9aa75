"""Per-sample randomness that is the same for any number of data-parallel processes.

The engine, the data sources and the penalties draw through one ``BatchRandom``.
"""

from __future__ import annotations

import torch
from torch import Tensor


class BatchRandom:
    """Per-sample random draws that do not depend on the number of processes.

    Every draw is made for the global batch from one shared generator and this
    process keeps its own shard, so N processes with batch B/N see exactly the
    numbers one process with batch B sees (the basis of exact data parallelism).
    """

    def __init__(
        self, generator: torch.Generator, rank: int = 0, world: int = 1, device: str | None = None
    ) -> None:
        self.generator = generator
        self.rank = rank
        self.world = world
        self.device = torch.device(device) if device is not None else generator.device

    def _shard(self, full: Tensor, n: int) -> Tensor:
        return full[self.rank * n : (self.rank + 1) * n] if self.world > 1 else full

    def uniform(self, n: int, *shape: int) -> Tensor:
        """U[0, 1) of shape (n, *shape) for this process's n samples."""
        full = torch.rand(
            n * self.world, *shape, generator=self.generator, device=self.generator.device
        )
        return self._shard(full, n).to(self.device, non_blocking=True)

    def normal(self, n: int, *shape: int) -> Tensor:
        """N(0, 1) of shape (n, *shape) for this process's n samples."""
        full = torch.randn(
            n * self.world, *shape, generator=self.generator, device=self.generator.device
        )
        return self._shard(full, n).to(self.device, non_blocking=True)

    def integers(self, n: int, high: int) -> Tensor:
        """Integers in [0, high) for this process's n samples."""
        full = torch.randint(
            high, (n * self.world,), generator=self.generator, device=self.generator.device
        )
        return self._shard(full, n).to(self.device, non_blocking=True)
