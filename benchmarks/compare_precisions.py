"""bf16 against fp32 over seeds, from two compare reports: does bf16 change the quality?

Usage:  python benchmarks/compare_precisions.py REPORT_FP32 REPORT_BF16 [REPORT_FP32 ...]

Each pair is two `lipgan compare` folders of the same strategies, seeds and budget, one
trained with ``precision = "bf16"`` in its --config file (docs/performance.md lists the
commands). For every strategy in both and each quality number the compare reports (the
final headline metric, the modes on toy data), bf16 is tested against fp32 the way the
compare tests strategies: Welch's t on log values for a positive metric (a ratio of
geometric means), on raw values for modes, Holm's correction over every quality test of
all pairs given. Seconds per generator step are shown beside (not tested: the decision
on `--precision auto` as the default needs "no detectable quality difference").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lipgan.compare import stats

QUALITY = (("final_quality", True), ("modes", False))
"""(results.json run key, positive metric compared as a ratio)."""


def runs_by_strategy(report: Path) -> tuple[str, dict[str, list[dict]]]:
    try:
        data = json.loads((report / "results.json").read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(
            f"{report}: no readable results.json ({exc}); pass a compare folder"
        ) from None
    grouped: dict[str, list[dict]] = {}
    for run in data["runs"].values():
        grouped.setdefault(run["name"], []).append(run)
    return str(data.get("data")), grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="fp32 and bf16 folders, in pairs")
    args = parser.parse_args()
    if len(args.reports) % 2:
        parser.error("give the reports in pairs: REPORT_FP32 REPORT_BF16 ...")
    tests: list[tuple[str, str, str, object]] = []
    times: list[tuple[str, str, float, float]] = []
    for fp32_dir, bf16_dir in zip(args.reports[::2], args.reports[1::2], strict=True):
        data, fp32 = runs_by_strategy(fp32_dir)
        _, bf16 = runs_by_strategy(bf16_dir)
        for name in sorted(set(fp32) & set(bf16)):
            for key, positive in QUALITY:
                a = [r.get(key) for r in fp32[name]]
                b = [r.get(key) for r in bf16[name]]
                result = (stats.ratio(a, b) if positive else None) or stats.difference(a, b)
                if result is not None:
                    tests.append((data, name, key, result))
            step = [np.median([r["seconds_per_step"] for r in side[name]]) for side in (fp32, bf16)]
            times.append((data, name, float(step[0]), float(step[1])))
    adjusted = stats.holm([t[3].p for t in tests])
    print("| data | strategy | metric | fp32 | bf16 | bf16 vs fp32 (95% CI) | p | p Holm |")
    print("|---|---|---|---|---|---|---|---|")
    for (data, name, key, r), p_holm in zip(tests, adjusted, strict=True):
        if isinstance(r, stats.Ratio):
            sides = f"{r.geomean_baseline:.4g} | {r.geomean_other:.4g}"
            effect = f"x{r.ratio:.3f} ({r.ci95[0]:.3f}-{r.ci95[1]:.3f})"
        else:
            sides = f"{r.mean_baseline:.4g} | {r.mean_other:.4g}"
            effect = f"{r.diff:+.3g} ({r.ci95[0]:+.3g} to {r.ci95[1]:+.3g})"
        print(f"| {data} | {name} | {key} | {sides} | {effect} | {r.p:.3f} | {p_holm:.3f} |")
    print("\n| data | strategy | fp32 s / step (median over seeds) | bf16 | bf16 / fp32 |")
    print("|---|---|---|---|---|")
    for data, name, a, b in times:
        print(f"| {data} | {name} | {a:.4f} | {b:.4f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
