"""GAN runs of the Lipschitz-by-construction critics at the default budget (issue 27).

Each named configuration trains with lipgan's engine, generator and points recipe
(Adam, betas (0.5, 0.9), n_critic 3, linear decay, 2000 iterations) over the seeds given,
one run at a time, into ``<out>/<data>/<name>__s<seed>``. A run folder with a
``summary.json`` is done; one without is resumed from its last checkpoint (a run killed
before its first checkpoint starts again), so the whole script survives a stop:

    python benchmarks/lipschitz_gan.py --data 25gaussians --seeds 0,1,2 \
        --only orthogonal-fullsort,torchlip
    python benchmarks/lipschitz_gan.py --data 25gaussians --report

``torchlip`` needs deel-torchlip (``pip install --no-deps deel-torchlip``; see
benchmarks/peer_torchlip.py). gp's numbers on the same seeds are in docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_torchlip import register_peer  # noqa: E402

import lipgan  # noqa: E402
from lipgan import runs  # noqa: E402
from lipgan.callbacks import StopOnSignals  # noqa: E402

# name -> TrainConfig fields; "o" holds the strategy's options.
CONFIGS: dict[str, dict[str, Any]] = {
    "orthogonal-fullsort-bias0": {
        "constraint": "orthogonal",
        "o": {"group_size": 0, "bias_scale": 0.0},
    },
    "orthogonal-fullsort": {
        "constraint": "orthogonal",
        "o": {"group_size": 0, "bias_scale": 1.0},
    },
    # sn's points default is FullSort since issue 27; sn-relu is the old default
    "sn-relu": {"constraint": "sn", "o": {"group_size": 1}},
    "sn-fullsort": {"constraint": "sn", "o": {"group_size": 0}},
    "sn-relu-lr1e-3": {
        "constraint": "sn",
        "o": {"group_size": 1},
        "lr": 1e-3,
        "generator_lr": 3e-4,
    },
    # lr 1e-2 diverges within 10 iterations in this engine (one power iteration
    # underestimates sigma after such a step, and the peer's Björck then diverges); the
    # engine's rollback halves the learning rate and goes on (the summary counts them).
    "torchlip": {
        "constraint": "torchlip",
        "lr": 1e-2,
        "generator_lr": 3e-4,
        "on_nan": "rollback",
    },
}
METRICS = (("quality/w1", "final W1", ".3f"), ("quality/modes", "modes", ".1f"),
           ("quality/hq_fraction", "high-quality fraction", ".3f"))  # fmt: skip


def config_for(name: str, data: str, seed: int, out: Path):
    options = dict(CONFIGS[name])
    strategy = options["constraint"]
    given = {k: v for k, v in options.items() if k != "o"}
    given["constraint_options"] = {f"{strategy}.{k}": v for k, v in options.get("o", {}).items()}
    given.update(data=data, seed=seed, threads=1, out=str(out))
    return runs.build_config(None, given)


def run_one(name: str, data: str, seed: int, root: Path) -> dict[str, Any]:
    """The run's summary; SIGTERM / Ctrl-C stop it with a checkpoint (``stopped_at``)."""
    folder = root / data / f"{name}__s{seed}"
    if (folder / "summary.json").exists():
        return json.loads((folder / "summary.json").read_text())
    with StopOnSignals() as stop:
        if (folder / "checkpoints" / "last.pt").exists():
            return lipgan.resume(folder, callbacks=[stop])
        config = config_for(name, data, seed, folder)
        return lipgan.train(config, folder, callbacks=[stop], overwrite=True)


def report(root: Path, data: str) -> None:
    print(f"| {data} | " + " | ".join(label for _, label, _ in METRICS) + " | per seed W1 |")
    print("|---" * (len(METRICS) + 2) + "|")
    for name in CONFIGS:
        folders = sorted((root / data).glob(f"{name}__s*"))
        done = [json.loads((f / "summary.json").read_text()) for f in folders
                if (f / "summary.json").exists()]  # fmt: skip
        if not done:
            continue
        cells = []
        for key, _, spec in METRICS:
            values = [s[key] for s in done]
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.mean(values):{spec}} ± {spread:{spec}}")
        per_seed = ", ".join(f"{s['quality/w1']:.3f} ({s['quality/modes']:.0f})" for s in done)
        print(f"| {name} ({len(done)} seeds) | " + " | ".join(cells) + f" | {per_seed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="25gaussians")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default="", help="comma-separated configuration names")
    parser.add_argument("--out", type=Path, default=Path("runs/issue27/gan"))
    parser.add_argument("--report", action="store_true", help="print the table and stop")
    args = parser.parse_args()
    if args.report:
        report(args.out, args.data)
        return
    torch.set_num_threads(1)
    register_peer()
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration {unknown[0]!r}; known: {', '.join(CONFIGS)}")
    for seed in [int(s) for s in args.seeds.split(",")]:  # seed-major: all names get seed 0
        for name in names:
            summary = run_one(name, args.data, seed, args.out)
            if "stopped_at" in summary:
                sys.exit(f"stopped at iteration {summary['stopped_at']}; rerun to resume")
            print(f"{args.data} {name} s{seed}: W1 {summary['quality/w1']:.3f}, "
                  f"modes {summary['quality/modes']:.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
