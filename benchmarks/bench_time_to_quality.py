"""Wall-clock time to reach W1 <= target on 8gaussians: lipgan's defaults vs a plain WGAN-GP.

Usage:  python benchmarks/bench_time_to_quality.py [--repeats 2] [--targets 0.18,0.15,0.12]
                                                   [--max-iters 2000] [--set key=value ...]

Both train the same toy MLP (3 x 512) at batch 256; the plain one is plain_wgan.py with
the paper's toy script settings (lambda 0.1, Adam lr 1e-4, betas (0.5, 0.9), n_critic 5,
constant rate). lipgan runs ``TrainConfig()`` as `lipgan train` would: its points recipe
(lr 3e-4, n_critic 3, linear decay over 2000 iterations, EMA generator; ``--set``
changes a field, e.g. ``--set penalty_every=4``). Every 50 iterations the clock stops,
W1 against real data is measured exactly as `lipgan train` measures it (mean over 4 sets
of 512, fixed noise), and the clock restarts: time to quality counts training only. A
run stops at the lowest target or at its budget (lipgan: its config's ``iters``, the
horizon of its learning-rate decay; plain: --max-iters); one curve gives the time to
every target. Repeat r uses seed r on both sides; each side runs in fresh interpreters,
alternating, ``--repeats`` times; medians are reported. When the plain run never reaches
a target, the ratio is an upper bound: lipgan's time over the plain run's whole training
time.
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


def worker(
    side: str, target: float, max_iters: int, threads: int, changes: dict, seed: int
) -> dict:
    import torch

    from lipgan import engine, models
    from lipgan.config import TrainConfig, replace, validate
    from lipgan.data.toy import ToyData
    from lipgan.distributed import Processes

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    data = ToyData("8gaussians")
    config = replace(TrainConfig(), **{**changes, "seed": seed})
    if side == "plain":
        config = replace(TrainConfig(), seed=seed)
    validate(config)
    config = engine.resolve(config, "points")
    eval_z = engine._eval_noise(config, "points", torch.device("cpu"))
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
                          256, penalty_weight=0.1, lr=1e-4, betas=(0.5, 0.9))  # fmt: skip
        budget = max_iters

        def iteration(step: int) -> None:
            plain.iteration()

        def samples() -> torch.Tensor:
            return generator(eval_z)

    trained, curve = 0.0, []
    for step in range(1, budget + 1):
        t0 = time.perf_counter()
        iteration(step - 1)
        trained += time.perf_counter() - t0
        if step % EVERY == 0:
            with torch.no_grad():
                fake = samples()
                w1 = data.evaluate(fake, eval_seed, sets=config.eval_sets)["quality/w1"]
            curve.append((step, trained, w1))
            if w1 <= target:
                break
    return {"curve": curve, "config": config.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--targets", default="0.12", help="comma-separated W1 levels")
    parser.add_argument("--max-iters", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="lipgan config KEY=VALUE")
    parser.add_argument("--worker", choices=["lipgan", "plain"])
    parser.add_argument("--changes", default="{}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.worker, float(args.targets), args.max_iters, args.threads,
                        json.loads(args.changes), args.seed)  # fmt: skip
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
                [sys.executable, __file__, "--worker", side, "--targets", str(min(targets)),
                 "--max-iters", str(args.max_iters), "--threads", str(args.threads),
                 "--changes", json.dumps(changes), "--seed", str(r)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {r + 1}: {side} done", file=sys.stderr)

    def reached(run: dict, target: float) -> tuple[int, float] | None:
        for step, seconds, w1 in run["curve"]:
            if w1 <= target:
                return step, seconds
        return None

    print(f"{header}; lipgan changes: {changes or 'none'}\n")
    print("| target W1 | side | iterations to target | seconds to target (median) | runs |")
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
        print(f"\n{side}: median W1 at its last measurement {final:.3f}", end="")
    print()


if __name__ == "__main__":
    main()
