"""Seconds per generator iteration and peak memory for every strategy, in one run.

Usage:  python benchmarks/bench_steps.py [--rounds 3] [--iters 20] [--warmup 3]
                 [--models mlp,conv] [--variants eager,penalty-every-4,plain,compile]
                 [--strategies none,gp,orthogonal]

Toy MLP (3 x 512) on 8gaussians at batch 256, and the DCGAN-style conv net on 8x8
digits at batch 64; n_critic 5. One iteration = 5 critic updates + 1 generator update.
Variants: every registered strategy eager; gp with --penalty-every 4; none, fd and gp
under --compile and under --precision bf16; and a plain WGAN(-GP) written in
plain_wgan.py (separate forwards, penalty every step, default optimiser settings). Each
configuration runs in a fresh interpreter in interleaved rounds (harness.py); medians
over all timed iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (  # noqa: E402
    added_rss_mb,
    interleaved_rounds,
    machine_line,
    median_ms,
    round_medians_ms,
)

DATA = {"mlp": ("8gaussians", 256), "conv": ("digits", 64)}


def worker(model: str, constraint: str, variant: str, iters: int, warmup: int, threads: int):
    import torch

    from lipgan import data as datasets
    from lipgan import engine, models
    from lipgan.config import TrainConfig, validate
    from lipgan.distributed import Processes

    from harness import time_iterations

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    spec, batch = DATA[model]
    constraint, options = parse_strategy(constraint)
    config = TrainConfig(
        constraint=constraint,
        constraint_options=options,
        data=spec,
        batch_size=batch,
        n_critic=5,  # one step cost for every strategy (the points recipe uses 3)
        compile=variant == "compile",
        precision="bf16" if variant == "bf16" else "fp32",
        penalty_every=4 if variant == "penalty-every-4" else 1,
    )
    validate(config)
    source = datasets.load(spec)
    config = engine.resolve(config, source.family)
    if variant == "plain":
        from plain_wgan import PlainWGAN

        generator, critic = models.build(config, source.meta())
        rand = engine.BatchRandom(torch.Generator().manual_seed(0))
        plain = PlainWGAN(
            generator, critic, lambda n: source.draw(rand, n), config.z_dim, batch,
            penalty_weight=config.constraint_options["gp.weight"] if constraint == "gp" else None,
            lr=config.lr, betas=config.betas,
        )  # fmt: skip
        step = plain.iteration
    else:
        parts, _ = engine.build_parts(config, source, Processes())

        def step() -> None:
            for _ in range(config.n_critic):
                engine.critic_update(parts)
            engine.generator_update(parts)

    return time_iterations(step, iters, warmup)


def parse_strategy(text: str) -> tuple[str, dict[str, float]]:
    """``orthogonal@group_size=2`` -> ("orthogonal", {"orthogonal.group_size": 2.0})."""
    name, _, rest = text.partition("@")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        options[f"{name}.{key}"] = float(value)
    return name, options


def configs(
    model_names: list[str], variants: set[str], strategies: set[str] | None = None
) -> list[tuple[str, str, str]]:
    from lipgan import constraints

    eager = [n for n in constraints.names() if strategies is None or n in strategies]
    # "name@key=value,..." entries time a strategy with options (e.g. another activation)
    with_options = {s for s in strategies or () if "@" in s}
    eager = sorted(set(eager) | {"none", "gp"} | with_options)
    out = []
    for model in model_names:
        out += [(model, name, "eager") for name in eager
                if "eager" in variants or name in ("none", "gp")]  # fmt: skip
        if "penalty-every-4" in variants:
            out.append((model, "gp", "penalty-every-4"))
        if "plain" in variants:
            out += [(model, "gp", "plain"), (model, "none", "plain")]
        if "compile" in variants:
            out += [(model, name, "compile") for name in ("none", "fd", "gp")]
        if "bf16" in variants:
            out += [(model, name, "bf16") for name in ("none", "fd", "gp")]
    return out


def split_strategies(text: str) -> list[str]:
    """Split on ';', or on ',' where no entry carries options."""
    return text.split(";") if ";" in text or "@" in text else text.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument(
        "--variants",
        default="eager,penalty-every-4,plain,compile",
        help="which to run (none and gp eager always run, as the baselines)",
    )
    parser.add_argument(
        "--strategies",
        help="strategies to run eager, separated by ';' or ',' (default: every one); "
        "NAME@KEY=VALUE[,KEY=VALUE] times NAME with options",
    )
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "CONSTRAINT", "VARIANT"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.iters, args.warmup, args.threads)))
        return

    unknown = sorted(set(args.models.split(",")) - set(DATA))
    if unknown:
        parser.error(f"unknown model {', '.join(unknown)}: choose from {', '.join(DATA)}")
    start = time.perf_counter()
    header = machine_line(args.threads)
    extra = ["--iters", str(args.iters), "--warmup", str(args.warmup),
             "--threads", str(args.threads)]  # fmt: skip
    chosen = set(split_strategies(args.strategies)) if args.strategies else None
    todo = configs(args.models.split(","), set(args.variants.split(",")), chosen)
    results = interleaved_rounds(__file__, todo, args.rounds, extra)
    print(f"{header}; {args.rounds} rounds x {args.iters} timed iterations "
          f"(+{args.warmup} warm-up); total {time.perf_counter() - start:.0f} s\n")  # fmt: skip
    for model in args.models.split(","):
        spec, batch = DATA[model]
        none_ms = median_ms(results[model, "none", "eager"])
        gp_ms = median_ms(results[model, "gp", "eager"])
        print(f"### {model} on {spec}, batch {batch}, n_critic 5\n")
        print("| strategy | variant | median ms / iter | x none | x gp | round medians ms "
              "| RSS added MB |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for key in [c for c in todo if c[0] == model]:
            ms, runs = median_ms(results[key]), results[key]
            print(f"| {key[1]} | {key[2]} | {ms:.1f} | {ms / none_ms:.2f} | {ms / gp_ms:.2f} "
                  f"| {round_medians_ms(runs)} | {added_rss_mb(runs):.1f} |")  # fmt: skip
        print()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({" ".join(k): v for k, v in results.items()}, handle)


if __name__ == "__main__":
    main()
