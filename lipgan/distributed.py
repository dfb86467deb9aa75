"""Process-group set-up for data-parallel runs (torchrun or ``lipgan train --nproc``).

One process per device; gloo on CPU, nccl on CUDA. A single process needs none of this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lipgan.errors import ConfigError


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str) -> torch.device:
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but no CUDA device is available")
        return torch.device("cuda")
    return torch.device("cpu")


def setup(device_preference: str) -> Processes:
    """Join the process group torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_preference)
    if world <= 1:
        return Processes(0, 1, device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, device)


def wait_for_all(processes: Processes) -> None:
    """Block until every process gets here (no-op for one)."""
    if processes.world > 1:
        dist.barrier()


def teardown(processes: Processes) -> None:
    if processes.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(tensor: torch.Tensor, processes: Processes) -> torch.Tensor:
    """The average of ``tensor`` over all processes (identity for one)."""
    if processes.world > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= processes.world
    return tensor


def all_agree(flag: bool, processes: Processes) -> bool:
    """True when ``flag`` holds on every process (a verdict all of them act on alike)."""
    if processes.world <= 1:
        return flag
    value = torch.tensor([int(flag)], device=processes.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def agree_on_signal(signum: int | None, processes: Processes) -> int | None:
    """The largest signal any process received (None if none did), known to all."""
    flag = torch.tensor([signum or 0], device=processes.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None
