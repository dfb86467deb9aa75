"""What the penalty argument checks (issue 21) cost a training step, in one run.

Usage:  python benchmarks/bench_checks.py [--rounds 15] [--steps 20] [--threads 1]
                 [--data 8gaussians] [--batch 256] [--out FILE.json]

One engine, gp on the default toy MLP (8gaussians, batch 256), its critic update timed
with the checks as shipped and with every check replaced by a no-op (the shape checks
on the scores, the sample and critic checks, the number and flag checks), alternating
which goes first in each round; medians over all timed steps of each. The checks are
also timed alone, on the step's own tensors, 10,000 calls in a row: that gives their
cost per step below the step's own noise, which the step comparison cannot resolve.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import machine_line  # noqa: E402


@contextlib.contextmanager
def checks_off() -> Iterator[None]:
    """Every check on gp's path a no-op (the functions are looked up at call time)."""
    from lipgan.constraints import base, gradient_penalty

    with contextlib.ExitStack() as stack:
        for module, name, stub in (
            (base, "scores_of", lambda scores, n, what: scores),
            (base, "check_number", lambda name, value: value),
            (gradient_penalty, "check_samples", lambda *args, **kwargs: None),
            (gradient_penalty, "check_penalty_call", lambda *args, **kwargs: None),
            (gradient_penalty, "check_flag", lambda name, value: value),
        ):
            stack.enter_context(mock.patch.object(module, name, stub))
        yield


def time_steps(step, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def checks_alone_us(parts, calls: int = 10_000) -> float:
    """Microseconds per critic step of exactly the checks gp's path runs, on its tensors."""
    import torch

    from lipgan.constraints import base

    real = parts.data.draw(parts.rand, parts.local_batch)
    fake = torch.randn_like(real)
    scores = parts.critic_fwd(torch.cat([real, fake]))
    n = real.shape[0]
    start = time.perf_counter()
    for _ in range(calls):
        base.scores_of(scores[:n], n, "critic_real")  # CriticBatch
        base.scores_of(scores[n:], n, "critic_fake")
        base.check_samples("gradient_penalty", real, fake)
        base.check_penalty_call("gradient_penalty", parts.penalty_critic, real, None)
        base.non_negative("weight", 0.1)
        base.check_flag("one_sided", False)
        base.scores_of(scores[:n], n, "the critic's output")  # input_gradient
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=20, help="critic steps per round and arm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="8gaussians")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = parser.parse_args()

    import torch

    from lipgan import data as datasets
    from lipgan import engine
    from lipgan.config import TrainConfig, validate
    from lipgan.distributed import Processes

    torch.set_num_threads(args.threads)
    config = TrainConfig(constraint="gp", data=args.data, batch_size=args.batch)
    validate(config)
    source = datasets.load(args.data)
    config = engine.resolve(config, source.family)
    parts, _ = engine.build_parts(config, source, Processes())

    def step() -> None:
        engine.critic_update(parts)

    time_steps(step, 20)  # warm-up: allocator, autograd caches
    timed: dict[str, list[float]] = {"checked": [], "unchecked": []}
    for r in range(args.rounds):
        order = ["checked", "unchecked"] if r % 2 == 0 else ["unchecked", "checked"]
        for arm in order:
            with checks_off() if arm == "unchecked" else contextlib.nullcontext():
                timed[arm] += time_steps(step, args.steps)
    medians = {arm: statistics.median(t) * 1e3 for arm, t in timed.items()}
    round_medians = {
        arm: [statistics.median(t[i : i + args.steps]) * 1e3 for i in range(0, len(t), args.steps)]
        for arm, t in timed.items()
    }
    alone = checks_alone_us(parts)
    result = {
        "machine": machine_line(args.threads),
        "data": args.data,
        "batch": args.batch,
        "rounds": args.rounds,
        "steps_per_round": args.steps,
        "median_ms": medians,
        "round_median_ms": round_medians,
        "difference_ms": medians["checked"] - medians["unchecked"],
        "checks_alone_us_per_step": alone,
        "checks_alone_fraction": alone / 1e3 / medians["checked"],
    }
    print(result["machine"])
    print(
        f"gp critic step, {args.data} batch {args.batch}: checked {medians['checked']:.2f} ms, "
        f"unchecked {medians['unchecked']:.2f} ms (medians of {len(timed['checked'])} steps "
        f"each, {args.rounds} interleaved rounds); the checks alone {alone:.1f} us per step "
        f"= {100 * result['checks_alone_fraction']:.3f}% of the step"
    )
    spread = {arm: (min(v), max(v)) for arm, v in round_medians.items()}
    print(f"round medians (min, max) ms: {spread}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
