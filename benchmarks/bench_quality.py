"""What one log step's quality evaluation costs, metric by metric (issue 22).

Usage:  python benchmarks/bench_quality.py [--rounds 20] [--threads 1] [--out FILE.json]

On digits (the cached classifier; 512 samples, m = 404 scored) and on 8gaussians
(4 sets of 512 points): the whole ``evaluate`` of the source, and each part alone on
the same features (Fréchet, FD-infinity, KID, precision/recall/density/coverage; W1 and
modes on points). Medians over rounds, the samples fixed, rounds interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import machine_line  # noqa: E402


def median_seconds(parts: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    for fn in parts.values():
        fn()  # warm: caches (floors, manifolds, kernel subsets) are built once per run
    times: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    import torch

    from lipgan import data as datasets
    from lipgan import quality

    torch.set_num_threads(args.threads)
    print(machine_line(args.threads))
    digits = datasets.load("digits", image_size=None, channels=None, seq_len=32, seed=0)
    fake = torch.rand(512, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    digits.evaluate(fake, 0)
    scorer = digits._scorer
    features = scorer.features(fake[:404])
    manifold = quality.Manifold(scorer.reference_features[:404])

    def one_thread(fn: Callable[[], object]) -> Callable[[], object]:
        """As the scorer runs its numpy part: BLAS on one thread."""

        def run() -> object:
            with scorer._blas.limit(limits=1, user_api="blas"):
                return fn()

        return run

    image_parts = {
        "evaluate (all, with memorisation)": lambda: digits.evaluate(fake, 0),
        "features (classifier forward)": lambda: scorer.features(fake[:404]),
        "frechet": one_thread(
            lambda: quality.frechet_distance(*quality.gaussian_stats(features), *scorer.reference)
        ),
        "frechet_inf": one_thread(lambda: quality.frechet_infinity(features, scorer.reference)),
        "kid": one_thread(lambda: scorer.kernel_distance(features)),
        "precision/recall/density/coverage": one_thread(lambda: manifold(features)),
        "memorisation": lambda: digits._memorisation.evaluate(fake),
    }
    toy = datasets.load("8gaussians", image_size=None, channels=None, seq_len=32, seed=0)
    points = torch.randn(2048, 2, generator=torch.Generator().manual_seed(0))
    toy.evaluate(points, 0, sets=4)
    reference = next(iter(toy._references.values()))
    points_np = points.numpy()
    toy_parts = {
        "evaluate (all)": lambda: toy.evaluate(points, 0, sets=4),
        "precision/recall/density/coverage (4 sets)": lambda: reference.prdc(points_np),
    }
    results = {
        "machine": machine_line(args.threads),
        "digits": median_seconds(image_parts, args.rounds),
        "8gaussians": median_seconds(toy_parts, args.rounds),
    }
    for data, parts in results.items():
        if data == "machine":
            continue
        print(data)
        for name, seconds in parts.items():
            print(f"  {name:45s} {1000 * seconds:8.1f} ms")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
