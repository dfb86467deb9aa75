"""Wall-clock time to reach a quality level: lipgan's defaults vs a plain WGAN-GP.

Usage:  python benchmarks/bench_time_to_quality.py [--data 8gaussians|digits] [--repeats 2]
                                                   [--targets 0.18,0.15,0.12]
                                                   [--max-iters 2000] [--set key=value ...]

Both sides train the same models as `lipgan train` builds them for the data (the toy MLP
3 x 512 on points, the DCGAN-style conv pair on digits) at batch 256. The plain side is
plain_wgan.py with the WGAN-GP paper's own scripts' settings: on points the toy script's
(lambda 0.1, Adam lr 1e-4, betas (0.5, 0.9), n_critic 5, constant rate), on digits the
MNIST script's (lambda 10, the same optimiser and schedule); its raw generator, as those
scripts have no EMA. lipgan runs ``TrainConfig()`` as `lipgan train` would (``--set``
changes a field, e.g. ``--set penalty_every=4``). Every 50 iterations the clock stops,
quality is measured as `lipgan train` measures it (points: W1 against real data, mean over
4 sets of 512, fixed noise; digits: the Frechet distance of 404 samples in the
classifier's feature space against the reference images), and the clock restarts: time to
quality counts training only. A run stops at the lowest target or at its budget (lipgan:
its config's ``iters``, the horizon of its learning-rate decay; plain: --max-iters); one
curve gives the time to every target. Repeat r uses seed r on both sides; each side runs
in fresh interpreters, alternating, ``--repeats`` times; medians are reported. When the
plain run never reaches a target, the ratio is an upper bound: lipgan's time over the
plain run's whole training time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import machine_line  # noqa: E402

EVERY = 50


# The plain side's settings per data family: the WGAN-GP paper's toy and MNIST scripts.
PLAIN_PENALTY = {"points": 0.1, "images": 10.0}


def quality_measure(data, config, eval_seed: int):
    """fake -> the headline metric, measured as `lipgan train` logs it (lower is better)."""
    if data.family == "points":
        return lambda fake: data.evaluate(fake, eval_seed, sets=config.eval_sets)["quality/w1"]
    from lipgan.quality import frechet_distance, gaussian_stats

    data.evaluate(data.heldout[:8], eval_seed)  # builds (or loads) the cached scorer once
    scorer = data._scorer

    def frechet(fake):  # the logged quality/frechet, without KID, FD-inf and the manifolds
        m = min(len(fake), len(scorer.floor_features))
        return frechet_distance(*gaussian_stats(scorer.features(fake[:m])), *scorer.reference)

    return frechet


def worker(
    side: str, spec: str, target: float, max_iters: int, threads: int, changes: dict, seed: int
) -> dict:
    import torch

    from lipgan import data as datasets
    from lipgan import engine, models
    from lipgan.config import TrainConfig, replace, validate
    from lipgan.distributed import Processes

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config = replace(TrainConfig(), **{**changes, "seed": seed, "data": spec})
    if side == "plain":
        config = replace(TrainConfig(), seed=seed, data=spec)
    validate(config)
    data = datasets.load_for(config)
    family = data.family
    config = engine.resolve(config, family)
    eval_z = engine._eval_noise(config, family, torch.device("cpu"))
    eval_seed = config.seed + engine.EVAL_SEED_OFFSET
    if side == "lipgan":
        parts, _ = engine.build_parts(config, data, Processes())
        budget = config.iters  # its learning-rate decay, if any, is over its own budget

        def iteration(step: int) -> None:
            engine.train_iteration(parts, step)  # the training step, EMA update included

        def samples() -> torch.Tensor:
            return engine.draw_samples(parts, eval_z)  # what `lipgan train` measures
    else:
        from plain_wgan import PlainWGAN

        generator, critic = models.build(config, data.meta())
        rand = engine.BatchRandom(torch.Generator().manual_seed(seed))
        plain = PlainWGAN(generator, critic, lambda n: data.draw(rand, n), config.z_dim,
                          256, penalty_weight=PLAIN_PENALTY[family], lr=1e-4,
                          betas=(0.5, 0.9))  # fmt: skip
        budget = max_iters

        def iteration(step: int) -> None:
            plain.iteration()

        def samples() -> torch.Tensor:
            return generator(eval_z)

    measure = quality_measure(data, config, eval_seed)
    trained, curve = 0.0, []
    for step in range(1, budget + 1):
        t0 = time.perf_counter()
        iteration(step - 1)
        trained += time.perf_counter() - t0
        if step % EVERY == 0:
            with torch.no_grad():
                value = float(measure(samples()))
            curve.append((step, trained, value))
            if value <= target:
                break
    return {"curve": curve, "config": config.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="8gaussians", help="8gaussians, 25gaussians, digits")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help="repeat r uses seed r + this")
    parser.add_argument("--targets", default="0.12", help="comma-separated metric levels")
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="lipgan config KEY=VALUE")
    parser.add_argument("--worker", choices=["lipgan", "plain"])
    parser.add_argument("--changes", default="{}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, args.data, float(args.targets), args.max_iters,
                        args.threads, json.loads(args.changes), args.seed)  # fmt: skip
        print(json.dumps(result))
        return

    targets = sorted((float(t) for t in args.targets.split(",")), reverse=True)
    changes = {}
    for item in args.set:
        key, _, value = item.partition("=")
        changes[key] = json.loads(value) if value[:1].isdigit() or value[:1] in "-[" else value
    header = machine_line(args.threads)
    results: dict[str, list[dict]] = {"plain": [], "lipgan": []}
    for r in range(args.repeats):
        for side in ("plain", "lipgan") if r % 2 == 0 else ("lipgan", "plain"):
            done = subprocess.run(
                [sys.executable, __file__, "--worker", side, "--data", args.data,
                 "--targets", str(min(targets)), "--max-iters", str(args.max_iters),
                 "--threads", str(args.threads), "--changes", json.dumps(changes),
                 "--seed", str(r + args.first_seed)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {r + 1}: {side} done", file=sys.stderr)
            print(json.dumps({"side": side, "seed": r + args.first_seed,
                              **results[side][-1]}), file=sys.stderr)  # fmt: skip

    def reached(run: dict, target: float) -> tuple[int, float] | None:
        for step, seconds, w1 in run["curve"]:
            if w1 <= target:
                return step, seconds
        return None

    metric = "W1" if args.data != "digits" else "Frechet"
    print(f"{header}; data {args.data}; lipgan changes: {changes or 'none'}\n")
    print(f"| target {metric} | side | iterations to target | seconds to target (median) | runs |")
    print("|---|---|---|---|---|")
    for target in targets:
        summary = {}
        censored = None
        for side, runs in results.items():
            hits = [reached(run, target) for run in runs]
            if not all(hits):
                last = max(run["curve"][-1][0] for run in runs)
                spent = statistics.median(run["curve"][-1][1] for run in runs)
                print(f"| {target} | {side} | not reached in {last} | > {spent:.1f} | "
                      f"{sum(map(bool, hits))}/{len(runs)} reached |")  # fmt: skip
                if side == "plain":
                    censored = spent
                continue
            seconds = statistics.median(h[1] for h in hits)
            iters = statistics.median(h[0] for h in hits)
            summary[side] = seconds
            print(f"| {target} | {side} | {iters:.0f} | {seconds:.1f} | "
                  f"{', '.join(f'{h[0]} it / {h[1]:.1f} s' for h in hits)} |")  # fmt: skip
        if len(summary) == 2:
            ratio = summary["lipgan"] / summary["plain"]
            print(f"| {target} | lipgan / plain | | **{ratio:.2f}** | |")
        elif "lipgan" in summary and censored:
            ratio = summary["lipgan"] / censored
            print(f"| {target} | lipgan / plain | | **< {ratio:.2f}** | "
                  "bound: plain's median time without reaching it |")  # fmt: skip
    for side, runs in results.items():
        final = statistics.median(run["curve"][-1][2] for run in runs)
        print(f"\n{side}: median {metric} at its last measurement {final:.3f}", end="")
    print()


if __name__ == "__main__":
    main()
