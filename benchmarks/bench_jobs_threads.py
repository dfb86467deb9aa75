"""Does a compare finish sooner with 2 jobs x 1 thread or 1 job x 2 threads? (issue 26.4)

Usage:  python benchmarks/bench_jobs_threads.py [--repeats 3] [--models mlp,conv]
                 [--constraints gp,none] [--seeds 2] [--iters 100] [--out runs/jobs_threads]

Each setting runs the whole `lipgan compare` as a user would (a fresh interpreter, the
local executor, its report at the end), timed from start to exit:

- ``--jobs 2 --threads 1``: two runs at a time, one torch thread each;
- ``--jobs 1 --threads 2``: one run at a time with two threads.

The toy MLP on 8gaussians (batch 256) and the conv net on digits (batch 256), the same
strategies, seeds and budget for both settings; settings alternate within each repeat
and the first of each repeat rotates, so a slow phase of the machine hits both. Only
meaningful on an otherwise idle machine whose core count is the total thread count (2):
the script prints the load average before and after each compare and refuses to start
above ``--max-load``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = {"mlp": "8gaussians", "conv": "digits"}
SETTINGS = {"2 jobs x 1 thread": ("2", "1"), "1 job x 2 threads": ("1", "2")}


def run_compare(model: str, jobs: str, threads: str, args: argparse.Namespace, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [
        sys.executable, "-m", "lipgan", "compare", "--data", DATA[model],
        "--constraints", args.constraints, "--seeds", str(args.seeds),
        "--iters", str(args.iters), "--jobs", jobs, "--threads", threads, "--out", str(out),
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"compare failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument("--constraints", default="gp,none")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--max-load", type=float, default=0.5)
    parser.add_argument("--out", default="runs/jobs_threads")
    args = parser.parse_args()
    models = args.models.split(",")
    unknown = sorted(set(models) - set(DATA))
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}: choose from {', '.join(DATA)}")
    load = os.getloadavg()[0]
    if load > args.max_load:
        raise SystemExit(
            f"load average {load:.1f} is above --max-load {args.max_load:g}: the machine is "
            "busy and the two settings would not get the same cores; wait or raise --max-load"
        )
    times: dict[tuple[str, str], list[float]] = {(m, s): [] for m in models for s in SETTINGS}
    names = list(SETTINGS)
    for r in range(args.repeats):
        for model in models:
            for name in names[r % 2 :] + names[: r % 2]:
                before = os.getloadavg()[0]
                jobs, threads = SETTINGS[name]
                seconds = run_compare(model, jobs, threads, args, Path(args.out) / "compare")
                times[model, name].append(seconds)
                after = os.getloadavg()[0]
                print(f"repeat {r + 1}: {model} {name}: {seconds:.1f} s "
                      f"(load {before:.1f} -> {after:.1f})", file=sys.stderr)  # fmt: skip
    print(f"\n{args.constraints} x {args.seeds} seeds, {args.iters} iterations, "
          f"{args.repeats} repeats; {os.cpu_count()} cores\n")  # fmt: skip
    print("| model | setting | median s per compare | repeats s | vs the other |")
    print("|---|---|---|---|---|")
    for model in models:
        medians = {name: statistics.median(times[model, name]) for name in names}
        for name in names:
            other = medians[names[1 - names.index(name)]]
            spread = ", ".join(f"{t:.1f}" for t in times[model, name])
            print(f"| {model} | {name} | {medians[name]:.1f} | {spread} "
                  f"| {medians[name] / other:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
