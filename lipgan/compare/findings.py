"""The WGAN-GP paper's claims, checked on the compare's measured numbers.

Each check reads the per-run records of results.json (plain dicts, one per strategy and
seed) and says "held", "did not hold" or "not measurable", with the numbers that decided
it and the rule it applied. A claim that did not hold is reported as such.

The rules (also in docs/compare.md):
- weights pile up at +-c: more than half of the critic's weights lie within 1e-3*c of
  +-c (mean over seeds); uniform weights in [-c, c] would put 0.1% there;
- clipping's per-layer gradient norm changes geometrically with depth: a straight-line
  fit of log10 norm against layer (mean over seeds) spans at least one decade from input
  to output with R^2 >= 0.8;
- penalties keep it level: max/min of the per-layer norms <= 10 for every penalty run;
- gp's input-gradient norm on interpolates is near 1: its mean over seeds is within 20%
  of 1;
- gp's quality beats clipping's: gp's final quality is better with p < 0.05 (Welch's t
  on log values: the ratio test of docs/compare.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lipgan.compare.stats import Ratio, finite
from lipgan.compare.verdicts import QUALITY_LABELS, Metric, compare_values, number, sentence

PILE_UP_FRACTION = 0.5
MIN_DECADES = 1.0
MIN_R2 = 0.8
LEVEL_RATIO = 10.0
NEAR_ONE = 0.2

HELD, NOT_HELD, NOT_MEASURABLE = "held", "did not hold", "not measurable"

Records = dict[str, list[dict[str, Any]]]
"""Run name (strategy) -> its per-seed records."""


def _finding(claim: str, subject: str, status: str, detail: str, **numbers: Any) -> dict:
    return {"claim": claim, "subject": subject, "status": status, "detail": detail,
            "numbers": numbers}  # fmt: skip


def _clip_arms(arms: Records) -> dict[str, list[dict[str, Any]]]:
    return {n: rs for n, rs in arms.items() if rs and rs[0].get("clip_value") is not None}


def weights_pile_up(arms: Records) -> list[dict[str, Any]]:
    claim = "clipped critic weights pile up at +-c (paper, Fig. 1 right)"
    clipped = _clip_arms(arms)
    if not clipped:
        return [_finding(claim, "clip", NOT_MEASURABLE, "no clipping strategy in this compare")]
    findings = []
    for name, records in clipped.items():
        values = finite([r.get("weights_at_bound") for r in records])
        if not values:
            findings.append(_finding(claim, name, NOT_MEASURABLE, "no readable final critic"))
            continue
        mean = float(np.mean(values))
        status = HELD if mean > PILE_UP_FRACTION else NOT_HELD
        detail = (
            f"{name}: {100 * mean:.1f}% of weights within 1e-3*c of +-c (mean over "
            f"{len(values)} seed(s), range {100 * min(values):.1f}-{100 * max(values):.1f}%); "
            f"the rule is more than {100 * PILE_UP_FRACTION:.0f}%"
        )
        findings.append(_finding(claim, name, status, detail, mean=mean, values=values))
    return findings


def _mean_log_norms(records: Sequence[dict[str, Any]]) -> np.ndarray | None:
    """Per-layer mean over seeds of log10 ||dL/dW_k||, input first (None if unusable)."""
    rows = []
    for r in records:
        norms = list(((r.get("diagnostics") or {}).get("layer_gradient_norms") or {}).values())
        if norms and all(v is not None and v > 0 and math.isfinite(v) for v in norms):
            rows.append(np.log10(np.asarray(norms, dtype=float)))
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return np.mean(rows, axis=0)


def depth_fit(logs: np.ndarray) -> tuple[float, float]:
    """(decades per layer, R^2) of a straight line through log10 norm against layer."""
    layers = np.arange(1, len(logs) + 1, dtype=float)
    slope, intercept = np.polyfit(layers, logs, 1)
    residual = float(((logs - (slope * layers + intercept)) ** 2).sum())
    total = float(((logs - logs.mean()) ** 2).sum())
    return float(slope), (1.0 - residual / total) if total > 0 else 1.0


def gradients_with_depth(arms: Records) -> list[dict[str, Any]]:
    claim = "under clipping the per-layer gradient norm changes geometrically with depth"
    findings = []
    for name, records in _clip_arms(arms).items():
        logs = _mean_log_norms(records)
        if logs is None or len(logs) < 3:
            detail = "needs at least 3 weight layers with finite norms (--critic-layers)"
            findings.append(_finding(claim, name, NOT_MEASURABLE, detail))
            continue
        slope, r2 = depth_fit(logs)
        span = abs(slope) * (len(logs) - 1)
        status = HELD if span >= MIN_DECADES and r2 >= MIN_R2 else NOT_HELD
        way = "falls toward the input" if slope > 0 else "grows toward the input"
        detail = (
            f"{name}: {slope:+.2f} decades per layer over {len(logs)} layers ({way}; "
            f"{span:.1f} decades in all, R^2 {r2:.2f}); the rule is >= {MIN_DECADES:g} decade "
            f"with R^2 >= {MIN_R2:g}"
        )
        findings.append(_finding(claim, name, status, detail, slope=slope, r2=r2, span=span))
    if not findings:
        findings.append(_finding(claim, "clip", NOT_MEASURABLE, "no clipping strategy"))
    return findings + [_penalties_level(arms)]


def _penalties_level(arms: Records) -> dict[str, Any]:
    claim = "under a gradient penalty the per-layer gradient norm stays level"
    ratios: dict[str, float] = {}
    for name, records in arms.items():
        if records and records[0].get("penalty") and records[0].get("clip_value") is None:
            logs = _mean_log_norms(records)
            if logs is not None and len(logs) >= 2:
                ratios[name] = float(10 ** (logs.max() - logs.min()))
    if not ratios:
        return _finding(claim, "penalties", NOT_MEASURABLE, "no penalty run with 2+ layers")
    worst = max(ratios, key=ratios.__getitem__)
    status = HELD if ratios[worst] <= LEVEL_RATIO else NOT_HELD
    listed = ", ".join(f"{n} {r:.3g}" for n, r in ratios.items())
    detail = (
        f"max/min of the per-layer norms: {listed}; the rule is <= {LEVEL_RATIO:g} "
        f"for every penalty run ({worst} is the widest)"
    )
    return _finding(claim, "penalties", status, detail, ratios=ratios)


def gp_norm_near_one(arms: Records) -> list[dict[str, Any]]:
    claim = "the gp critic's input-gradient norm on interpolates is near 1"
    records = arms.get("gp")
    if not records:
        return [_finding(claim, "gp", NOT_MEASURABLE, "gp is not in this compare")]
    values = finite([r.get("grad_norm_interp_mean") for r in records])
    if not values:
        return [_finding(claim, "gp", NOT_MEASURABLE, "no readable final critic")]
    mean = float(np.mean(values))
    weight = records[0].get("penalty_weight")
    off = abs(mean - 1)
    status = HELD if off <= NEAR_ONE else NOT_HELD
    lam = f"lambda {weight:g}" if weight is not None else "lambda unknown"
    detail = (
        f"gp ({lam}): mean ||grad D(x_hat)|| {mean:.3g} over {len(values)} seed(s) (range "
        f"{min(values):.3g}-{max(values):.3g}), {100 * off:.0f}% from 1; the rule is within "
        f"{100 * NEAR_ONE:.0f}%. The penalty lambda*(||grad|| - 1)^2 trades against the "
        "critic loss, so a small lambda lets the norm drift further from 1"
    )
    return [_finding(claim, "gp", status, detail, mean=mean, values=values, weight=weight)]


def gp_beats_clipping(arms: Records, quality_metric: str | None) -> list[dict[str, Any]]:
    claim = "gp's quality beats clipping's"
    clipped = _clip_arms(arms)
    if "gp" not in arms or not clipped:
        return [_finding(claim, "gp vs clip", NOT_MEASURABLE, "needs gp and a clipping run")]
    label = QUALITY_LABELS.get(quality_metric or "", "quality")
    metric = Metric("final_quality", f"final {label}", True, ratio=True)
    gp = [r.get("final_quality") for r in arms["gp"]]
    findings = []
    for name, records in clipped.items():
        other = [r.get("final_quality") for r in records]
        result = compare_values(metric, gp, other)
        n = min(len(finite(gp)), len(finite(other)))
        text = sentence(metric, "gp", name, result, n)
        if result is None:
            status = NOT_MEASURABLE
        else:
            worse = result.ratio > 1 if isinstance(result, Ratio) else result.diff > 0
            status = HELD if result.significant and worse else NOT_HELD
        numbers = result.to_dict() if result is not None else {"n": n}
        findings.append(_finding(claim, f"gp vs {name}", status, text, **numbers))
    return findings


def check_all(arms: Records, quality_metric: str | None) -> list[dict[str, Any]]:
    """Every finding, in the paper's order."""
    return [
        *weights_pile_up(arms),
        *gradients_with_depth(arms),
        *gp_norm_near_one(arms),
        *gp_beats_clipping(arms, quality_metric),
    ]


__all__ = ["check_all", "depth_fit", "number"]
