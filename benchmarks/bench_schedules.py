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
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    added_rss_mb,
    interleaved_rounds,
    machine_line,
    median_ms,
    peak_rss_mb,
    round_medians_ms,
)

CONFIGS = [
    ("none", "alternating"),
    ("none", "one-step"),
    ("gp", "alternating"),
    ("gp", "one-step"),
]


def worker(constraint: str, schedule: str, iters: int, warmup: int, threads: int) -> dict:
    """Runs in a fresh interpreter: build, time, report JSON."""
    import torch

    from lipgan import engine
    from lipgan.config import TrainConfig, validate
    from lipgan.data.toy import ToyData
    from lipgan.distributed import Processes

    from harness import time_iterations

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

    return time_iterations(iteration, iters, warmup)


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

    t_start = time.perf_counter()
    header = machine_line(args.threads)
    extra = ["--iters", str(args.iters), "--warmup", str(args.warmup),
             "--threads", str(args.threads)]  # fmt: skip
    results = interleaved_rounds(__file__, CONFIGS, args.rounds, extra)
    print(f"{header}; {args.rounds} rounds x {args.iters} timed iterations "
          f"(+{args.warmup} warm-up), total {time.perf_counter() - t_start:.0f} s\n")  # fmt: skip
    print(
        "| constraint | schedule | median ms / iter | IQR ms | round medians ms "
        "| peak RSS MB | RSS added by steps MB |"
    )
    print("|---|---|---|---|---|---|---|")
    for (constraint, schedule), runs in results.items():
        times = [t * 1e3 for run in runs for t in run["times"]]
        q1, _, q3 = statistics.quantiles(times, n=4)
        added = [(run["rss_peak_kb"] - run["rss_built_kb"]) / 1024 for run in runs]
        print(f"| {constraint} | {schedule} | {median_ms(runs):.1f} | {q1:.1f}-{q3:.1f} | "
              f"{round_medians_ms(runs)} | {peak_rss_mb(runs):.0f} | "
              f"{added_rss_mb(runs):.1f} ({min(added):.1f}-{max(added):.1f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
