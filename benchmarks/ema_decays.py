"""Raw vs EMA generator quality from one training run, for several EMA decays at once.

The EMA never feeds back into training, so one run (the defaults, ``--ema-decay 0.999``)
gives the raw generator's and every average's final quality side by side: the extra
averages (DECAYS) are updated beside the run's own. Prints one JSON line.

    python benchmarks/ema_decays.py 8gaussians 0     # data, seed; 1 thread
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from lipgan import engine, runs
from lipgan.ema import GeneratorEMA, evaluating
from lipgan.engine import parts as engine_parts

DECAYS = (0.99, 0.999, 0.9999)
extras: dict[float, GeneratorEMA] = {}


class WithExtras(GeneratorEMA):
    """The run's own average, plus one per other decay updated at the same steps."""

    def __init__(self, generator: torch.nn.Module, decay: float) -> None:
        super().__init__(generator, decay)
        extras.clear()
        extras.update({d: GeneratorEMA(generator, d) for d in DECAYS if d != decay})

    def update(self, generator: torch.nn.Module) -> None:
        super().update(generator)
        for other in extras.values():
            other.update(generator)


def main(data: str, seed: int) -> None:
    engine_parts.GeneratorEMA = WithExtras  # build_parts looks the class up here
    out = Path(tempfile.mkdtemp()) / f"{data}_s{seed}"
    options = {"seed": seed, "data": data, "out": str(out), "threads": 1, "ema_decay": 0.999}
    prepared = runs.prepare(runs.build_config(None, options))
    t0 = time.perf_counter()
    summary = engine.train(prepared.config, prepared.run_dir, data=prepared.data)
    config, source = prepared.config, prepared.data
    z = engine._eval_noise(config, source.family, torch.device("cpu"))
    sets = config.eval_sets if source.family == "points" else 1
    row: dict[str, object] = {"data": data, "seed": seed, "run": str(out)}
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["raw"] = {k.removesuffix("_raw"): v for k, v in summary.items() if k.endswith("_raw")}
    row["0.999"] = {k.removeprefix("quality/"): v for k, v in summary.items() if "quality/" in k}
    for decay, average in sorted(extras.items()):
        with torch.no_grad(), evaluating(average.model):
            fake = average.model(z)
        quality = source.evaluate(fake, config.seed + engine.EVAL_SEED_OFFSET, sets=sets)
        row[str(decay)] = {k.removeprefix("quality/"): round(v, 8) for k, v in quality.items()}
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
