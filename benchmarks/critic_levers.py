"""Screen the levers of the constrained critics with the critic-only W1 check (issue 27).

Each configuration's critic is fitted for ``--steps`` critic steps (constant learning
rate) against a fixed generator, the real data plus Gaussian noise of std
``--noise-std``; then ``diagnostics.w1_check`` compares its estimate on two fixed sets
(512 real points, 512 of the fixed generator) with their exact W1. A 1-Lipschitz critic
reaches at most 1 of it; the fraction says how expressive the critic is. Seconds per
configuration, so every lever is measured over seeds:

    python benchmarks/critic_levers.py --seeds 0,1,2 --out runs/issue27/levers.jsonl

Two processes with disjoint ``--only`` lists may share one ``--out`` file (whole lines).

Results are appended one JSON line per (configuration, seed); a rerun skips what the
file already holds. ``--only NAME,...`` runs a subset; ``--report`` prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_torchlip import register_peer  # noqa: E402

from lipgan import data as datasets  # noqa: E402
from lipgan import diagnostics, distributed, engine, runs  # noqa: E402
from lipgan.compare.critic_only import FixedGenerator, fit_critic, fixed_sets  # noqa: E402

ORTHO = "orthogonal"
DEFAULT = {"group_size": 0, "bias_scale": 1.0}  # orthogonal's points default
# name -> the options of the run (TrainConfig fields; "o" holds strategy options). Each
# entry changes one lever of a points default (orthogonal's and sn's: FullSort, PyTorch's
# biases, critic lr 3e-4, width 512, Björck to tolerance) and names every lever it sets.
CONFIGS: dict[str, dict[str, Any]] = {
    "gp": {"constraint": "gp"},
    "orthogonal default (FullSort)": {"constraint": ORTHO, "o": DEFAULT},
    "orthogonal bias 0": {"constraint": ORTHO, "o": {**DEFAULT, "bias_scale": 0.0}},
    "orthogonal MaxMin (old default)": {"constraint": ORTHO, "o": {**DEFAULT, "group_size": 2}},
    "orthogonal groups of 4": {"constraint": ORTHO, "o": {**DEFAULT, "group_size": 4}},
    "orthogonal groups of 16": {"constraint": ORTHO, "o": {**DEFAULT, "group_size": 16}},
    "orthogonal width 128": {"constraint": ORTHO, "o": DEFAULT, "hidden": 128},
    "orthogonal width 256": {"constraint": ORTHO, "o": DEFAULT, "hidden": 256},
    "orthogonal lr 1e-3": {"constraint": ORTHO, "o": DEFAULT, "lr": 1e-3},
    "orthogonal lr 1e-2": {"constraint": ORTHO, "o": DEFAULT, "lr": 1e-2},
    "orthogonal Björck cap 1": {"constraint": ORTHO, "o": {**DEFAULT, "bjorck_iterations": 1}},
    "sn default (FullSort)": {"constraint": "sn", "o": {"group_size": 0}},
    "sn ReLU (old default)": {"constraint": "sn", "o": {"group_size": 1}},
    "sn FullSort lr 1e-3": {"constraint": "sn", "o": {"group_size": 0}, "lr": 1e-3},
    "sn FullSort lr 1e-2": {"constraint": "sn", "o": {"group_size": 0}, "lr": 1e-2},
    "torchlip lr 1e-2": {"constraint": "torchlip", "lr": 1e-2},
    "torchlip lr 1e-3": {"constraint": "torchlip", "lr": 1e-3},
}  # fmt: skip


def config_for(options: dict[str, Any], data: str, seed: int, steps: int):
    options = dict(options)
    strategy = options["constraint"]
    given = {k: v for k, v in options.items() if k != "o"}
    given["constraint_options"] = {f"{strategy}.{k}": v for k, v in options.get("o", {}).items()}
    given.update(data=data, seed=seed, iters=steps, lr_decay="constant", threads=1)
    config = runs.build_config(None, given)
    return engine.resolve(config, datasets.load_for(config).family)


def measure(name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    config = config_for(CONFIGS[name], args.data, seed, args.steps)
    data = datasets.load_for(config)
    processes = distributed.Processes(device=torch.device("cpu"))
    stand_in = FixedGenerator(data, args.noise_std, seed, "cpu")
    torch.manual_seed(seed)
    parts, seconds, status = fit_critic(config, data, processes, stand_in, name)
    real, fake = fixed_sets(data, args.noise_std, seed, 512)
    check = diagnostics.w1_check(parts.critic, real, fake)
    return {
        "name": name, "seed": seed, "status": status, "steps": args.steps,
        "data": args.data, "noise_std": args.noise_std, "estimate": check.estimate,
        "exact": check.exact, "fraction": check.fraction, "seconds": round(seconds, 1),
    }  # fmt: skip


def report(path: Path, data: str, noise_std: float) -> None:
    rows: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row["data"] == data and row["noise_std"] == noise_std:
            rows.setdefault(row["name"], []).append(row)
    print(f"| critic ({data}, noise {noise_std:g}) | est. / exact W1 | per seed | s |")
    print("|---|---|---|---|")
    for name in CONFIGS:
        if name not in rows:
            continue
        values = [r["fraction"] for r in sorted(rows[name], key=lambda r: r["seed"])]
        spread = statistics.stdev(values) if len(values) > 1 else float("nan")
        seconds = statistics.mean(r["seconds"] for r in rows[name])
        per_seed = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {name} | {statistics.mean(values):.3f} ± {spread:.3f} | {per_seed} | "
              f"{seconds:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="25gaussians")
    parser.add_argument("--noise-std", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--out", type=Path, default=Path("runs/issue27/levers.jsonl"))
    parser.add_argument("--report", action="store_true", help="print the table and stop")
    args = parser.parse_args()
    if args.report:
        report(args.out, args.data, args.noise_std)
        return
    torch.set_num_threads(1)
    register_peer()
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration {unknown[0]!r}; known: {', '.join(CONFIGS)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["name"], row["seed"], row["data"], row["noise_std"], row["steps"]))
    for seed in [int(s) for s in args.seeds.split(",")]:
        for name in names:
            if (name, seed, args.data, args.noise_std, args.steps) in done:
                continue
            t0 = time.perf_counter()
            row = measure(name, seed, args)
            with args.out.open("a") as f:  # one whole line per result: a kill loses one
                f.write(json.dumps(row) + "\n")
            print(f"{name} s{seed}: {row['fraction']:.3f} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
