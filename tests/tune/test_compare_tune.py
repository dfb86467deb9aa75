"""compare --tune: every strategy tuned on the same selection seeds and draws, the best
retrained on evaluation seeds that never include a selection seed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lipgan.cli import app
from lipgan.config import load_toml

pytest.importorskip("optuna")

TINY = ["--data", "8gaussians", "--hidden", "16", "--critic-layers", "2",
        "--generator-layers", "2", "--batch-size", "64", "--eval-samples", "64",
        "--eval-sets", "1", "--threads", "1", "--log-every", "5"]  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def seeds_in(folder):
    return {load_toml(c).seed for c in folder.glob("*/config.toml")}


@pytest.mark.slow  # 2 x 2 trial runs of 10 iterations, 2 evaluation runs of 20: ~15 s
def test_compare_tune_selects_and_evaluates_on_disjoint_seeds(tmp_path):
    out = tmp_path / "tuned"
    result = invoke("compare", "--constraints", "gp,clip", "--tune", "2", "--tune-seeds", "1",
                    "--seeds", "1", "--iters", "20", "--tune-iters", "10", *TINY,
                    "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads((out / "tuned.json").read_text())
    assert plan["selection_seeds"] == [1] and plan["evaluation_seeds"] == [0]
    for name in ("gp", "clip"):
        study = out / "studies" / name
        assert seeds_in(study / "runs") == {1}  # trials only on selection seeds
        assert {load_toml(c).iters for c in (study / "runs").glob("*/config.toml")} == {10}
        evaluated = load_toml(out / "evaluation" / "runs" / f"{name}__s0" / "config.toml")
        best = load_toml(study / "best.toml")
        assert evaluated.seed == 0 and evaluated.iters == 20  # fresh seed, full budget
        for field in ("lr", "generator_lr", "n_critic", "ema_decay", "constraint_options"):
            assert getattr(evaluated, field) == getattr(best, field), (name, field)
    assert seeds_in(out / "evaluation" / "runs") == {0}
    data = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in data["strategies"]}
    assert set(rows) == {"gp", "clip"} and all(r["trials"] == 2 for r in rows.values())
    for name, row in rows.items():
        trials = json.loads((out / "studies" / name / "results.json").read_text())["trials"]
        assert row["defaults"] == trials[0]["objective"]
        assert row["best_trial"] == min(t["objective"] for t in trials if t["objective"])
    assert any(s.startswith("gp: at its defaults w1") for s in data["sentences"])
    assert (out / "report.md").is_file() and (out / "evaluation" / "report.md").is_file()
    assert (out / "budget.png").read_bytes()[:4] == b"\x89PNG"
    assert "](budget.png)" in (out / "report.md").read_text()

    again = invoke("compare", "--resume", out)  # everything finished: reused, same report
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["strategies"] == data["strategies"]


def test_overlapping_selection_and_evaluation_seeds_are_refused(tmp_path):
    out = tmp_path / "never"
    result = invoke("compare", "--constraints", "gp,clip", "--tune", "2", "--seeds", "2",
                    "--tune-seeds", "0,1", *TINY, "--out", out)  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "selection seed 0 is also an evaluation seed" in lines[0]
    assert not out.exists()
