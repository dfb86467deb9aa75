"""`lipgan train --nproc N`: start N data-parallel processes through torchrun.

Each process runs the same `lipgan train` command; torchrun sets RANK and WORLD_SIZE,
and the engine joins the process group (lipgan/distributed.py). The output folder is
fixed here, once, so every process agrees on it.
"""

from __future__ import annotations

import subprocess
import sys


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` with ``--name VALUE`` / ``--name=VALUE`` removed."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def launch(nproc: int, argv: list[str], out: str | None) -> int:
    """Run ``lipgan <argv>`` in ``nproc`` processes; returns torchrun's exit code."""
    args = without_option(argv, "--nproc")
    if out is not None:
        args = [*without_option(args, "--out"), "--out", out]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={nproc}", "-m", "lipgan", *args,
    ]  # fmt: skip
    return subprocess.call(command)
