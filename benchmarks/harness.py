"""Shared by the benchmarks: fresh-interpreter workers in interleaved rounds.

Each configuration runs in its own interpreter (so peak RSS is its own), and rounds
rotate the order, so slow phases of a shared machine hit every configuration alike.
Workers print one JSON line: {"times": [...seconds...], "rss_built_kb", "rss_peak_kb"}.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def time_iterations(step: Callable[[], None], iters: int, warmup: int) -> dict:
    """Warm up, then time each call; peak RSS before and after the timed calls."""
    import gc

    gc.collect()
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"times": times, "rss_built_kb": rss_built, "rss_peak_kb": rss_peak}


def interleaved_rounds(
    script: str, configs: Sequence[tuple[str, ...]], rounds: int, extra: Sequence[str]
) -> dict[tuple[str, ...], list[dict]]:
    """Run ``script --worker *config *extra`` for every config, ``rounds`` times, rotating."""
    results: dict[tuple[str, ...], list[dict]] = {c: [] for c in configs}
    for r in range(rounds):
        shift = r % len(configs)
        for config in [*configs[shift:], *configs[:shift]]:
            done = subprocess.run(
                [sys.executable, script, "--worker", *config, *extra],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(f"worker {config} failed:\n{done.stderr[-3000:]}")
            results[config].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}/{rounds}: {' '.join(config)}", file=sys.stderr)
    return results


def median_ms(runs: list[dict]) -> float:
    return statistics.median(t for run in runs for t in run["times"]) * 1e3


def round_medians_ms(runs: list[dict]) -> str:
    return ", ".join(f"{statistics.median(run['times']) * 1e3:.1f}" for run in runs)


def added_rss_mb(runs: list[dict]) -> float:
    return statistics.median((run["rss_peak_kb"] - run["rss_built_kb"]) / 1024 for run in runs)


def peak_rss_mb(runs: list[dict]) -> float:
    return statistics.median(run["rss_peak_kb"] / 1024 for run in runs)


def machine_line(threads: int) -> str:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu = platform.processor() or platform.machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"torch {torch.__version__}, Python {platform.python_version()}, {cpu}, "
        f"{cores} cores, {threads} torch thread(s) per worker, load average {load:.1f} at start"
    )
