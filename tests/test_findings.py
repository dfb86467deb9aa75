"""Each finding on synthetic run records: where the paper's claim must hold and where not."""

from __future__ import annotations

import pytest

from lipgan.compare import findings
from lipgan.compare.findings import HELD, NOT_HELD, NOT_MEASURABLE


def run(name, seed, **numbers):
    layers = numbers.pop("layers", None)
    record = {"name": name, "seed": seed, "clip_value": None, "penalty": False, **numbers}
    if layers is not None:
        record["diagnostics"] = {"layer_gradient_norms": {f"w{i}": v for i, v in enumerate(layers)}}
    return record


def clip(seed, **numbers):
    return run("clip@0.01", seed, clip_value=0.01, **numbers)


def gp(seed, **numbers):
    return run("gp", seed, penalty=True, penalty_weight=0.1, **numbers)


def statuses(results):
    return [(f["subject"], f["status"]) for f in results]


def test_weights_pile_up_holds_above_half_and_not_below():
    arms = {
        "clip@0.01": [clip(0, weights_at_bound=0.9), clip(1, weights_at_bound=0.8)],
        "clip@0.1": [run("clip@0.1", 0, clip_value=0.1, weights_at_bound=0.2)],
    }
    result = findings.weights_pile_up(arms)
    assert statuses(result) == [("clip@0.01", HELD), ("clip@0.1", NOT_HELD)]
    assert result[0]["numbers"]["mean"] == pytest.approx(0.85, abs=1e-12)
    assert "85.0%" in result[0]["detail"] and "range 80.0-90.0%" in result[0]["detail"]
    assert statuses(findings.weights_pile_up({"gp": [gp(0)]})) == [("clip", NOT_MEASURABLE)]


def test_geometric_decay_with_depth_is_fitted_in_decades_per_layer():
    # exactly one decade per layer, falling toward the input: slope +1, R^2 1
    decaying = [1e-4, 1e-3, 1e-2, 1e-1]
    level = [0.5, 1.0, 0.7, 2.0]
    arms = {
        "clip@0.01": [clip(0, layers=decaying), clip(1, layers=decaying)],
        "gp": [gp(0, layers=level)],
    }
    result = findings.gradients_with_depth(arms)
    assert statuses(result) == [("clip@0.01", HELD), ("penalties", HELD)]
    assert result[0]["numbers"]["slope"] == pytest.approx(1.0, abs=1e-12)
    assert result[0]["numbers"]["r2"] == pytest.approx(1.0, abs=1e-12)
    assert result[1]["numbers"]["ratios"]["gp"] == pytest.approx(4.0, rel=1e-12)


def test_flat_clipping_and_a_steep_penalty_do_not_hold():
    flat = [0.1, 0.12, 0.09, 0.11]
    steep = [1e-3, 1e-2, 1e-1, 1.0]  # 1000x between layers: not level
    arms = {
        "clip@0.1": [run("clip@0.1", 0, clip_value=0.1, layers=flat)],
        "gp": [gp(0, layers=steep)],
    }
    result = findings.gradients_with_depth(arms)
    assert statuses(result) == [("clip@0.1", NOT_HELD), ("penalties", NOT_HELD)]
    assert result[1]["numbers"]["ratios"]["gp"] == pytest.approx(1000.0, rel=1e-9)


def test_depth_needs_three_layers():
    arms = {"clip@0.01": [clip(0, layers=[1e-3, 1e-1])]}
    assert statuses(findings.gradients_with_depth(arms))[0] == ("clip@0.01", NOT_MEASURABLE)


def test_gp_norm_near_one_within_twenty_percent():
    near = {"gp": [gp(0, grad_norm_interp_mean=0.9), gp(1, grad_norm_interp_mean=1.1)]}
    far = {"gp": [gp(0, grad_norm_interp_mean=0.1), gp(1, grad_norm_interp_mean=0.2)]}
    (held,) = findings.gp_norm_near_one(near)
    (not_held,) = findings.gp_norm_near_one(far)
    assert (held["status"], not_held["status"]) == (HELD, NOT_HELD)
    assert held["numbers"]["mean"] == pytest.approx(1.0, abs=1e-12)
    assert "lambda 0.1" in held["detail"] and "85% from 1" in not_held["detail"]
    assert findings.gp_norm_near_one({})[0]["status"] == NOT_MEASURABLE


def test_gp_beats_clipping_uses_the_pairwise_verdict():
    gp_runs = [gp(s, final_quality=q) for s, q in enumerate([0.15, 0.16, 0.14])]
    worse = [clip(s, final_quality=q) for s, q in enumerate([0.31, 0.30, 0.33])]
    same = [clip(s, final_quality=q) for s, q in enumerate([0.16, 0.14, 0.15])]
    (held,) = findings.gp_beats_clipping({"gp": gp_runs, "clip@0.01": worse}, "quality/w1")
    (not_held,) = findings.gp_beats_clipping({"gp": gp_runs, "clip@0.01": same}, "quality/w1")
    assert held["status"] == HELD
    # the ratio test: geometric means 0.1498 and 0.3132, 2.1x
    assert held["detail"].startswith("gp's final W1 is 2.1x lower than clip@0.01's (95% CI")
    assert held["numbers"]["test"] == "welch-log"
    assert held["numbers"]["difference"]["diff"] == pytest.approx(0.49 / 3, abs=1e-11)
    assert not_held["status"] == NOT_HELD
    assert not_held["detail"].startswith("no detectable difference between gp and clip@0.01")
    # clipping better than gp: reported as not holding, never hidden
    better = [clip(s, final_quality=q) for s, q in enumerate([0.05, 0.06, 0.04])]
    (reverse,) = findings.gp_beats_clipping({"gp": gp_runs, "clip@0.01": better}, "quality/w1")
    assert reverse["status"] == NOT_HELD
    assert reverse["detail"].startswith("clip@0.01's final W1 is 3x lower than gp's")
    one_seed = {"gp": gp_runs[:1], "clip@0.01": worse[:1]}
    assert findings.gp_beats_clipping(one_seed, "quality/w1")[0]["status"] == NOT_MEASURABLE


def test_check_all_reports_every_claim_once_in_order():
    arms = {"gp": [gp(0, final_quality=0.1, grad_norm_interp_mean=1.0, layers=[1, 1, 1])]}
    claims = [f["claim"] for f in findings.check_all(arms, "quality/w1")]
    assert len(claims) == 5
    assert claims[0].startswith("clipped critic weights pile up")
    assert claims[-1] == "gp's quality beats clipping's"
