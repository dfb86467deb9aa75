"""One-step against 1:1 alternating: seconds per generator iteration and peak memory.

Usage:  python benchmarks/bench_schedules.py [--rounds 3] [--iters 30] [--warmup 5]

Every (constraint, schedule) pair runs in its own fresh interpreter, in interleaved
rounds (the order rotates each round) so that slow phases of a shared machine hit every
configuration alike. Each worker times ``--iters`` iterations after ``--warmup`` with
``time.perf_counter`` and reports its process's peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) once after the models and optimisers
are built and once after the iterations; the difference is the high-water memory the
training steps add. tracemalloc does not see torch's CPU allocations, so RSS is the
honest measure on the CPU; it has page and allocator granularity, so differences below a
few MB are noise. One iteration is one generator update: alternating = one critic
update then one generator update (n_critic 1, fresh batches each); one-step = both from
one loss and one backward.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = [
    ("none", "alternating"),
    ("none", "one-step"),
    ("gp", "alternating"),
    ("gp", "one-step"),
]


def worker(constraint: str, schedule: str, iters: int, warmup: int, threads: int) -> dict:
    """Runs in a fresh interpreter: build, time, report JSON."""
    import gc

    import torch

    from lipgan import engine
    from lipgan.config import TrainConfig, validate
    from lipgan.data.toy import ToyData
    from lipgan.distributed import Processes

    torch.set_num_threads(threads)
    config = TrainConfig(constraint=constraint, schedule=schedule, n_critic=1, batch_size=256)
    validate(config)
    config = engine.resolve(config, "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), Processes())

    def iteration() -> None:
        if schedule == "one-step":
            engine.one_step_update(parts)
        else:
            engine.critic_update(parts)
            engine.generator_update(parts)

    gc.collect()
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(warmup):
        iteration()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - t0)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert torch.isfinite(parts.window).all()
    return {"times": times, "rss_built_kb": rss_built, "rss_peak_kb": rss_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--worker", nargs=2, metavar=("CONSTRAINT", "SCHEDULE"))
    args = parser.parse_args()
    if args.worker:
        result = worker(*args.worker, args.iters, args.warmup, args.threads)
        print(json.dumps(result))
        return

    import torch

    results: dict[tuple[str, str], list[dict]] = {c: [] for c in CONFIGS}
    t_start = time.perf_counter()
    for r in range(args.rounds):
        order = CONFIGS[r % len(CONFIGS) :] + CONFIGS[: r % len(CONFIGS)]
        for constraint, schedule in order:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", constraint, schedule,
                 "--iters", str(args.iters), "--warmup", str(args.warmup),
                 "--threads", str(args.threads)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[constraint, schedule].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{args.rounds}: {constraint} {schedule} done", file=sys.stderr)

    print(f"torch {torch.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, nproc {_nproc()}, {args.threads} torch thread(s) per worker; "
          f"{args.rounds} rounds x {args.iters} timed iterations (+{args.warmup} warm-up), "
          f"total {time.perf_counter() - t_start:.0f} s\n")  # fmt: skip
    print(
        "| constraint | schedule | median ms / iter | IQR ms | round medians ms "
        "| peak RSS MB | RSS added by steps MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for (constraint, schedule), runs in results.items():
        times = [t * 1e3 for run in runs for t in run["times"]]
        q1, _, q3 = statistics.quantiles(times, n=4)
        rounds = ", ".join(f"{statistics.median(run['times']) * 1e3:.1f}" for run in runs)
        peak = statistics.median(run["rss_peak_kb"] / 1024 for run in runs)
        added = [(run["rss_peak_kb"] - run["rss_built_kb"]) / 1024 for run in runs]
        print(f"| {constraint} | {schedule} | {statistics.median(times):.1f} | "
              f"{q1:.1f}-{q3:.1f} | {rounds} | {peak:.0f} | "
              f"{statistics.median(added):.1f} ({min(added):.1f}-{max(added):.1f}) |")  # fmt: skip


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    main()
