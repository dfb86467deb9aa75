"""budget.png: the points it draws are the study's own numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lipgan.tune.budget import budget_curve
from lipgan.tune.figures import budget_figure, plot_budget

TRIALS = {"gp": [0.2, 0.15, None, 0.4], "sn": [0.5, 0.3, 0.25, 0.6]}
EVALUATED = {"gp": (0.14, 0.01), "sn": (0.27, None)}


def curves() -> dict:
    out = {}
    for name, values in TRIALS.items():
        finite = [math.inf if v is None else v for v in values]
        points = budget_curve(finite, [10.0 if name == "gp" else 5.0] * len(values))
        out[name] = [
            {"trials": p.trials, "expected_best": p.expected_best, "seconds": p.seconds}
            for p in points
        ]
    return out


def test_the_figure_draws_every_finished_trial_the_defaults_and_both_curves():
    fig = budget_figure("w1", TRIALS, curves(), EVALUATED)
    spread, by_trials, by_seconds = fig.axes
    drawn = np.concatenate(
        [c.get_offsets()[:, 1] for c in spread.collections if len(c.get_offsets())]
    )
    for name, values in TRIALS.items():
        for value in values:
            if value is not None:
                assert np.isclose(drawn, value).any(), (name, value)
    assert "1 failed/pruned" in [t.get_text() for t in spread.texts]  # gp's lost trial
    assert spread.get_yscale() == "log"  # all positive
    lines = {line.get_label(): line for line in by_trials.get_lines()}
    assert set(lines) == {"gp", "sn"}
    # the curve is the estimator's: gp's best of 4 is its best finished trial
    assert lines["gp"].get_ydata()[-1] == pytest.approx(0.15)
    assert list(lines["sn"].get_xdata()) == [1, 2, 3, 4]
    seconds = {line.get_label(): line for line in by_seconds.get_lines()}
    assert list(seconds["sn"].get_xdata()) == [5.0, 10.0, 15.0, 20.0]


def test_the_figure_is_written_as_a_png(tmp_path):
    path = tmp_path / "budget.png"
    plot_budget(path, "w1", TRIALS, curves(), EVALUATED)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
