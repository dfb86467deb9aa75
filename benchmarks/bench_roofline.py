"""How far each strategy's step is from what this machine's matmul kernels can do.

Usage:  python benchmarks/bench_roofline.py [--models mlp,conv] [--strategies gp,none]
                 [--precisions fp32,bf16] [--bf16-models conv] [--bf16-strategies none,gp]
                 [--masks-off gp] [--rounds 3] [--iters 2] [--threads 1] [--profile]
                 [--json out.json]

For every (model, strategy, precision) one full training iteration is built as
bench_steps.py builds it (toy MLP 3 x 512 on 8gaussians at batch 256, the DCGAN-style
conv net on 8x8 digits at batch 64, n_critic 5: five critic updates with their forward,
backward and the penalty's double backward, one generator update, the EMA update).

1. FLOPs: one iteration runs under ``torch.utils.flop_counter.FlopCounterMode``
   (2*m*n*k per matmul, the same rule for convolutions and their backward), and every
   matmul / convolution it issues is recorded with its shapes, strides and dtype.
2. The limit at the same shapes: those recorded calls are replayed back to back as plain
   aten calls on fresh tensors, nothing else in between. Their time is what the step
   would cost if all its non-matmul work (elementwise ops, reductions, allocation, Python,
   autograd's bookkeeping, the optimiser) were free, so "fraction" = achieved GFLOP/s /
   replay GFLOP/s = replay time / step time. A 512 x 512 x 512 matmul (the MLP's main
   shape: 2 x 256 samples through a 512-wide layer) gives the kernels' rate, for scale.
   bf16 runs a subset (``--bf16-models``, ``--bf16-strategies``): where the CPU has no
   bf16 units it is emulated, ~100x slower than fp32, and a full table would take hours.
   ``--masks-off`` adds rows of the penalty without constant activation masks
   (lipgan/engine/masks.py), the step as it was before issue 26.
3. Steps and replays are timed in interleaved rounds in one process (rotating order), so a
   slow phase of a shared machine hits all of them; medians over every timed iteration.

``--profile`` then profiles the default gp step (fp32) on both models with
``torch.profiler`` and prints where the time goes, by kind of op.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_steps import DATA  # noqa: E402

from harness import machine_line  # noqa: E402

PEAK_SIZE = 512


class _NoModuleTracking:
    """Stands in for FlopCounterMode's ModuleTracker: that tracker's backward hooks raise
    inside ``autograd.grad`` on a leaf input ("A leaf node was passed to
    _will_engine_execute_node"), which every gradient penalty calls. We only need the
    global count, which is the one place its counts go here."""

    parents = ("Global",)

    def __enter__(self) -> _NoModuleTracking:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class StepFlopCounter(FlopCounterMode):
    """FlopCounterMode that works through double backward (global counts only)."""

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()  # type: ignore[assignment]


def _spec(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), tuple(value.stride()), value.dtype, value.device)
    if isinstance(value, list | tuple):
        return type(value)(_spec(v) for v in value)
    return value


class RecordMatmuls(TorchDispatchMode):
    """Records every call FlopCounterMode counts (mm, addmm, convolution ...) as
    (op, argument specs), tensors replaced by (shape, stride, dtype)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._overloadpacket in flop_registry:
            self.calls.append((func, _spec(args), _spec(kwargs)))
        return func(*args, **kwargs)


def _materialise(spec: Any, cache: dict) -> Any:
    if isinstance(spec, tuple) and spec and spec[0] == "tensor":
        if spec not in cache:
            _, shape, stride, dtype, device = spec
            size = (
                1 + sum((s - 1) * st for s, st in zip(shape, stride, strict=True))
                if all(shape)
                else 0
            )
            base = torch.randn(max(size, 1), device=device).to(dtype)
            cache[spec] = base.as_strided(shape, stride)
        return cache[spec]
    if isinstance(spec, list | tuple):
        return type(spec)(_materialise(s, cache) for s in spec)
    return spec


def replay(calls: list[tuple[Any, tuple, dict]]) -> Callable[[], None]:
    """The recorded matmuls and convolutions, back to back on fresh tensors."""
    cache: dict = {}
    ready = [(f, _materialise(a, cache), _materialise(k, cache)) for f, a, k in calls]

    def run() -> None:
        with torch.no_grad():
            for func, args, kwargs in ready:
                func(*args, **kwargs)

    return run


def build_iteration(
    model: str, constraint: str, precision: str, masks: bool = True, device: str = "cpu"
) -> Callable[[], None]:
    """One training iteration of the engine, as bench_steps.py builds it (n_critic 5);
    ``masks=False``: the penalty without constant activation masks (as before issue 26)."""
    from lipgan import data as datasets
    from lipgan import engine
    from lipgan.config import TrainConfig, validate
    from lipgan.distributed import Processes
    from lipgan.engine import updates

    torch.manual_seed(0)
    spec, batch = DATA[model]
    config = TrainConfig(constraint=constraint, data=spec, batch_size=batch, n_critic=5,
                         precision=precision, iters=10**6, device=device)  # fmt: skip
    validate(config)
    source = datasets.load(spec)
    processes = Processes(device=torch.device(device))
    parts, _ = engine.build_parts(engine.resolve(config, source.family), source, processes)
    counter = iter(range(10**6))
    if masks:
        return lambda: engine.train_iteration(parts, next(counter))

    def without_masks() -> None:
        with_masks = updates.constant_masks
        updates.constant_masks = lambda module: contextlib.nullcontext()
        try:
            engine.train_iteration(parts, next(counter))
        finally:
            updates.constant_masks = with_masks

    return without_masks


def count(step: Callable[[], None]) -> tuple[int, dict[str, int], list]:
    """(FLOPs of one call of ``step``, FLOPs per op, the matmul calls it made)."""
    with StepFlopCounter() as flops, RecordMatmuls() as record:
        step()
    per_op = {str(k): v for k, v in flops.get_flop_counts().get("Global", {}).items()}
    return flops.get_total_flops(), per_op, record.calls


def _time(fn: Callable[[], None], n: int) -> list[float]:
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else lambda: None
    out = []
    for _ in range(n):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t0)
    return out


def peak_matmul(dtype: torch.dtype, device: str) -> Callable[[], None]:
    a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
    b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device).to(dtype)
    return lambda: torch.mm(a, b)


def measure(args: argparse.Namespace) -> tuple[list[dict], dict[str, float], list[float]]:
    rows: list[dict] = []
    loads: list[float] = []
    timed: dict[int, dict[str, list[float]]] = {}
    jobs: list[tuple[dict, Callable[[], None], Callable[[], None]]] = []
    for model in args.models:
        for precision in args.precisions:
            bf16 = precision == "bf16"
            if bf16 and model not in args.bf16_models:
                continue
            todo = [(c, True) for c in (args.bf16_strategies if bf16 else args.strategies)]
            todo += [] if bf16 else [(c, False) for c in args.masks_off]
            for constraint, masks in todo:
                step = build_iteration(model, constraint, precision, masks, args.device)
                for _ in range(args.warmup):
                    step()
                flops, per_op, calls = count(step)
                # The count must be FlopCounterMode's own; the replay must repeat it exactly.
                replayed = StepFlopCounter()
                with replayed:
                    replay(calls)()
                assert replayed.get_total_flops() == flops, (model, constraint, precision)
                name = constraint if masks else f"{constraint}, masks off"
                row = {"model": model, "strategy": name, "precision": precision,
                       "flops": flops, "per_op": per_op, "matmul_calls": len(calls)}  # fmt: skip
                rows.append(row)
                jobs.append((row, step, replay(calls)))
    peaks = {name: peak_matmul(dtype, args.device) for name, dtype in
             (("fp32", torch.float32), ("bf16", torch.bfloat16))}  # fmt: skip
    peak_times: dict[str, list[float]] = defaultdict(list)
    for fn in [*peaks.values(), *(j[2] for j in jobs)]:
        fn()  # warm the replays and the peak kernels once
    for r in range(args.rounds):
        shift = r % len(jobs)
        for row, step, rerun in [*jobs[shift:], *jobs[:shift]]:
            times = timed.setdefault(id(row), {"step": [], "replay": []})
            times["step"] += _time(step, args.iters)
            times["replay"] += _time(rerun, args.iters)
        for name, fn in peaks.items():
            peak_times[name] += _time(fn, 1)
        loads.append(os.getloadavg()[0])
        print(f"round {r + 1}/{args.rounds} done, load {loads[-1]:.1f}", file=sys.stderr)
    for row, _, _ in jobs:
        times = timed[id(row)]
        row["step_ms"] = statistics.median(times["step"]) * 1e3
        row["replay_ms"] = statistics.median(times["replay"]) * 1e3
        row["round_step_ms"] = [
            statistics.median(times["step"][i : i + args.iters]) * 1e3
            for i in range(0, len(times["step"]), args.iters)
        ]
    peak = {k: 2 * PEAK_SIZE**3 / statistics.median(v) / 1e9 for k, v in peak_times.items()}
    return rows, peak, loads


def print_table(rows: list[dict], peak: dict[str, float]) -> None:
    for model in dict.fromkeys(r["model"] for r in rows):
        spec, batch = DATA[model]
        print(f"\n### {model} on {spec}, batch {batch}, n_critic 5\n")
        print("| strategy | precision | MFLOP / iter | median ms / iter | GFLOP/s "
              "| same matmuls alone ms | their GFLOP/s | fraction | of 512^3 rate "
              "| round medians ms |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in (r for r in rows if r["model"] == model):
            achieved = r["flops"] / r["step_ms"] / 1e6
            alone = r["flops"] / r["replay_ms"] / 1e6
            rounds = ", ".join(f"{t:.1f}" for t in r["round_step_ms"])
            print(f"| {r['strategy']} | {r['precision']} | {r['flops'] / 1e6:.1f} "
                  f"| {r['step_ms']:.1f} | {achieved:.2f} | {r['replay_ms']:.1f} | {alone:.2f} "
                  f"| {achieved / alone:.0%} | {achieved / peak[r['precision']]:.1%} "
                  f"| {rounds} |")  # fmt: skip
    print(f"\n{PEAK_SIZE}^3 matmul on this machine: "
          + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items()))  # fmt: skip


# --- where the time goes ----------------------------------------------------------------

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::mkldnn_convolution",
              "aten::convolution_backward", "aten::_slow_conv2d_forward",
              "aten::slow_conv_transpose2d", "aten::mkldnn_matmul")  # fmt: skip
ALLOCATION_OPS = ("aten::empty", "aten::empty_strided", "aten::zeros", "aten::zeros_like",
                  "aten::empty_like", "aten::ones_like", "aten::resize_", "aten::zero_",
                  "aten::fill_")  # fmt: skip


def profile(model: str, iters: int) -> None:
    """Self CPU time by op kind over ``iters`` gp iterations (fp32), and the top ops."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = build_iteration(model, "gp", "fp32")
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            step()
    wall_us = (time.perf_counter() - t0) * 1e6 / iters
    events = prof.key_averages()
    kinds: Counter[str] = Counter()
    calls = 0
    for e in events:
        name = e.key
        calls += e.count
        if name in MATMUL_OPS:
            kind = "matmul / conv kernels"
        elif name in ALLOCATION_OPS:
            kind = "allocation and fills"
        elif name.startswith("aten::_foreach") or name.startswith("Optimizer."):
            kind = "optimiser (foreach Adam)"
        elif name.startswith("aten::"):
            kind = "other aten ops (elementwise, reductions, views, copies)"
        else:
            kind = "autograd nodes and other"
        kinds[kind] += e.self_cpu_time_total
    total_self = sum(kinds.values()) / iters
    print(f"\n#### gp fp32 on {model}: {wall_us / 1e3:.1f} ms per iteration under the profiler, "
          f"{calls / iters:.0f} op calls per iteration\n")  # fmt: skip
    print("| where | ms / iter | share of wall |")
    print("|---|---|---|")
    for kind, us in kinds.most_common():
        print(f"| {kind} | {us / iters / 1e3:.2f} | {us / iters / wall_us:.0%} |")
    outside = wall_us - total_self
    print(f"| outside any op (Python, dispatch, profiler) | {outside / 1e3:.2f} "
          f"| {outside / wall_us:.0%} |")  # fmt: skip
    print("\n" + events.table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,conv")
    parser.add_argument("--strategies", help="comma-separated (default: every registered one)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--bf16-models", help="models to run in bf16 (default: --models)")
    parser.add_argument("--bf16-strategies", default="none,gp")
    parser.add_argument(
        "--masks-off", default="gp", help="also run these without constant masks (fp32)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=2, help="timed iterations per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--profile", action="store_true", help="also profile gp fp32 (CPU)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    from lipgan import constraints

    args.models = args.models.split(",")
    args.precisions = args.precisions.split(",")
    args.strategies = args.strategies.split(",") if args.strategies else constraints.names()
    args.bf16_models = args.bf16_models.split(",") if args.bf16_models else args.models
    args.bf16_strategies = args.bf16_strategies.split(",")
    args.masks_off = args.masks_off.split(",") if args.masks_off else []
    strategies = args.strategies + args.bf16_strategies + args.masks_off
    for option, given, valid in (("model", args.models + args.bf16_models, DATA),
                                 ("precision", args.precisions, ("fp32", "bf16")),
                                 ("strategy", strategies, constraints.names())):  # fmt: skip
        unknown = sorted(set(given) - set(valid))
        if unknown:
            parser.error(f"unknown {option} {', '.join(unknown)}: choose from {', '.join(valid)}")
    if args.device not in ("cpu", "cuda"):
        parser.error(f"unknown device {args.device}: choose from cpu, cuda")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    header = machine_line(args.threads)
    rows, peak, loads = measure(args)
    print(f"{header}; {args.rounds} rounds x {args.iters} timed iterations "
          f"(+{args.warmup} warm-up); load average after each round "
          f"{', '.join(f'{x:.1f}' for x in loads)}")  # fmt: skip
    print_table(rows, peak)
    if args.profile:
        for model in args.models:
            profile(model, iters=5)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": rows, "peak_gflops": peak, "loads": loads}, handle, indent=1)


if __name__ == "__main__":
    main()
