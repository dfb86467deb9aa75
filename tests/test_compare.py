"""`lipgan compare` / `lipgan diagnose` end to end on tiny budgets, and their pieces."""

from __future__ import annotations

import json
import math
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lipgan import data as datasets
from lipgan.cli import app
from lipgan.compare import critic_only, examine, plan
from lipgan.compare.report import TRAIN_COLUMNS
from lipgan.errors import ConfigError
from lipgan.runio import RunFolder

TINY = [
    "--iters", "6", "--hidden", "8", "--critic-layers", "2", "--generator-layers", "1",
    "--batch-size", "32", "--log-every", "2", "--eval-samples", "32", "--threads", "1",
]  # fmt: skip


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "table":
            self.tables += 1


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compare") / "report"
    result = invoke(
        "compare", "--constraints", "clip,gp,none", "--clip-values", "0.1,0.01",
        "--threshold", "100", "--out", str(out), *TINY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


NAMES = ["clip@0.1", "clip@0.01", "gp", "none"]


def test_results_json_holds_every_strategy_and_every_column(report):
    results = json.loads((report / "results.json").read_text())
    assert list(results["strategies"]) == NAMES
    assert set(results["columns"]) == {c.key for c in TRAIN_COLUMNS} | {"modes"}
    for name, row in results["strategies"].items():
        for column in results["columns"]:
            assert column in row, (name, column)
        assert row["status"] == "ok"
        assert row["quality_metric"] == "quality/w1"
        assert row["peak_memory_mib"] > 0
        assert row["seconds_per_step"] > 0
        assert row["lipschitz_estimate"] >= 0
        # every run is a normal run folder, and the table reads it back faithfully
        metrics = RunFolder(report / "runs" / name).read_metrics()
        assert [m["step"] for m in metrics] == [2, 4, 6]
        assert row["final_quality"] == metrics[-1]["quality/w1"]
        assert row["best_quality"] == min(m["quality/w1"] for m in metrics)
        # --threshold 100: every W1 is below it, so the first log step reaches it
        assert row["threshold"] == 100
        assert row["steps_to_threshold"] == 2
    clip = results["strategies"]["clip@0.01"]
    assert 0 < clip["weights_at_bound"] <= 1
    assert results["strategies"]["gp"]["weights_at_bound"] is None
    assert clip["diagnostics"]["clip_value"] == 0.01
    assert len(clip["diagnostics"]["layer_gradient_norms"]) == 3  # 2 hidden + output


def test_clip_runs_use_their_own_bound_and_the_strategy_defaults(report):
    import tomllib

    configs = {n: tomllib.loads((report / "runs" / n / "config.toml").read_text()) for n in NAMES}
    assert configs["clip@0.1"]["clip_value"] == 0.1
    assert configs["clip@0.01"]["clip_value"] == 0.01
    assert configs["clip@0.1"]["optimizer"] == "rmsprop"
    assert configs["gp"]["optimizer"] == "adam"
    assert configs["gp"]["penalty_weight"] == 0.1  # gp's default on points
    assert {c["seed"] for c in configs.values()} == {0}
    assert {c["iters"] for c in configs.values()} == {6}


def test_html_parses_and_embeds_every_figure(report):
    results = json.loads((report / "results.json").read_text())
    figures = results["figures"]
    assert {Path(f).name for f in figures} == {
        "samples.png", "quality.png", "wasserstein.png", "layer_grad_norms.png",
        "weight_histograms.png", "interp_grad_norms.png",
    }  # fmt: skip
    parser = Images()
    parser.feed((report / "report.html").read_text())
    assert parser.tables == 1
    assert sorted(img["alt"] for img in parser.images) == sorted(Path(f).name for f in figures)
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,")
    markdown = (report / "report.md").read_text()
    for figure in figures:
        assert f"]({figure})" in markdown
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in NAMES:
        assert f"| {name} |" in markdown


def test_existing_report_folder_is_refused_without_overwrite(report):
    result = CliRunner().invoke(app, ["compare", "--out", str(report), *TINY])
    assert result.exit_code == 2
    assert "already exists" in result.output and "--overwrite" in result.output
    assert "Traceback" not in result.output


def test_overwrite_refuses_a_folder_that_is_not_a_compare(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["compare", "--out", str(tmp_path), "--overwrite", *TINY])
    assert result.exit_code == 2
    assert "not a lipgan compare folder" in result.output
    assert (tmp_path / "precious.txt").exists()


def test_diagnose_draws_the_same_figures_for_one_run(report, tmp_path):
    out = tmp_path / "diag"
    run = str(report / "runs" / "clip@0.01")
    result = invoke("diagnose", run, "--out", str(out), "--threshold", "100")
    assert result.exit_code == 0, result.output
    diagnosed = json.loads((out / "results.json").read_text())
    compared = json.loads((report / "results.json").read_text())
    row, same = diagnosed["strategies"]["clip@0.01"], compared["strategies"]["clip@0.01"]
    for key in (
        "final_quality", "best_quality", "lipschitz_estimate", "weights_at_bound",
        "steps_to_threshold", "grad_norm_interp_mean",
    ):  # fmt: skip
        assert row[key] == same[key], key
    assert len(diagnosed["figures"]) == 6


def test_diagnose_of_a_missing_run_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["diagnose", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_plan_expands_clipping_per_bound_and_refuses_bad_lists():
    entries = plan.plan("clip,gp", [0.1, 0.001])
    assert [(e.name, e.constraint, e.clip_value) for e in entries] == [
        ("clip@0.1", "clip", 0.1),
        ("clip@0.001", "clip", 0.001),
        ("gp", "gp", None),
    ]
    assert [e.name for e in plan.plan("clip,gp", None)] == ["clip", "gp"]
    with pytest.raises(ConfigError, match="unknown constraint 'gq'"):
        plan.plan("clip,gq", None)
    with pytest.raises(ConfigError, match="twice"):
        plan.plan("gp,gp", None)
    with pytest.raises(ConfigError, match="empty"):
        plan.plan("gp,,clip", None)
    with pytest.raises(ConfigError, match="> 0"):
        plan.plan("clip", [0.1, -1.0])


def test_threshold_defaults_to_twice_the_w1_noise_floor():
    records = [{"step": 2, "quality/w1": 1.0, "quality/w1_floor": 0.09}]
    assert examine.threshold_for(records, "quality/w1", None) == pytest.approx(0.18, abs=1e-12)
    assert examine.threshold_for(records, "quality/w1", 0.5) == 0.5
    assert examine.threshold_for([{"quality/frechet": 3.0}], "quality/frechet", None) is None
    assert examine.quality_key([{"quality/js4": 1.0}, {"quality/frechet": 2.0}]) == (
        "quality/frechet"
    )


def test_fixed_generator_is_real_data_plus_gaussian_noise():
    data = datasets.load("8gaussians")
    std = 0.5
    fake = critic_only.FixedGenerator(data, std, seed=0, device="cpu")(torch.zeros(40000, 2))
    # 8 centres at radius 2/1.414 evenly on a circle: per-coordinate variance r^2/2;
    # plus the mixture's own std and the added noise, all independent.
    radius, own = 2 / 1.414, 0.02 / 1.414
    expected = radius**2 / 2 + own**2 + std**2
    torch.testing.assert_close(fake.mean(0), torch.zeros(2), atol=0.02, rtol=0)
    torch.testing.assert_close(fake.var(0), torch.full((2,), expected), rtol=0.03, atol=0)


def test_critic_only_fits_critics_against_the_fixed_generator(tmp_path):
    out = tmp_path / "critics"
    result = invoke(
        "compare", "--critic-only", "--constraints", "clip,gp", "--clip-values", "",
        "--iters", "30", "--hidden", "16", "--batch-size", "64", "--log-every", "10",
        "--threads", "1", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["kind"] == "critic-only"
    assert list(results["strategies"]) == ["clip", "gp"]
    for row in results["strategies"].values():
        assert row["critic_steps"] == 30
        assert math.isfinite(row["w_estimate"]) and row["w_estimate"] > 0
    assert results["strategies"]["clip"]["weights_at_bound"] > 0
    assert (out / "figures" / "value_surfaces.png").exists()
    assert not (out / "runs").exists()  # no generator, no run folders


def test_bad_compare_options_are_one_line_errors(tmp_path):
    for args, needle in (
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--constraints", "gp,nope"], "unknown constraint"),
        (["--iters", "0"], "--iters must be >= 1"),
        (["--clip-values", "a,b"], "comma-separated"),
    ):
        result = CliRunner().invoke(app, ["compare", "--out", str(tmp_path / "x"), *args])
        assert result.exit_code == 2, args
        assert "error:" in result.output and needle in result.output, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.slow
def test_jobs_trains_in_worker_processes_with_the_same_numbers(tmp_path):
    args = ["--constraints", "clip,gp", "--clip-values", "", *TINY]
    one, two = tmp_path / "one", tmp_path / "two"
    assert invoke("compare", "--out", str(one), *args).exit_code == 0
    assert invoke("compare", "--out", str(two), "--jobs", "2", *args).exit_code == 0
    for name in ("clip", "gp"):
        # same seed, same data, same budget: the deterministic metrics are identical
        assert (one / "runs" / name / "metrics.jsonl").read_text() == (
            two / "runs" / name / "metrics.jsonl"
        ).read_text()
    rows = json.loads((two / "results.json").read_text())["strategies"]
    assert all(row["peak_memory_mib"] > 50 for row in rows.values())  # a child's ru_maxrss


def test_tensorboard_without_the_package_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import now raises ImportError
    result = CliRunner().invoke(app, ["train", "--tensorboard", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "pip install lipgan[tensorboard]" in result.output
    assert result.output.count("\n") == 1


def test_train_tensorboard_logs_scalars_images_and_histograms(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = invoke(
        "train", "--constraint", "clip", "--iters", "4", "--hidden", "8", "--batch-size", "32",
        "--log-every", "2", "--sample-every", "2", "--checkpoint-every", "2",
        "--eval-samples", "32", "--tensorboard", "--out", str(run),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    tags = events.Tags()
    metrics = RunFolder(run).read_metrics()
    w1 = [e.value for e in events.Scalars("quality/w1")]
    torch.testing.assert_close(w1, [m["quality/w1"] for m in metrics], rtol=1e-6, atol=0)
    assert [e.step for e in events.Scalars("loss/critic")] == [2, 4]
    assert "samples" in tags["images"]
    assert "critic/net.0.weight" in tags["histograms"]
    histogram = events.Histograms("critic/net.0.weight")[-1].histogram_value
    assert -0.01 - 1e-9 <= histogram.min and histogram.max <= 0.01 + 1e-9  # clipped at c


def test_compare_tensorboard_writes_one_log_folder_per_strategy(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    args = ["--constraints", "gp,none", "--tensorboard", "--out", str(out), *TINY]
    assert invoke("compare", *args).exit_code == 0
    for name in ("gp", "none"):
        events = EventAccumulator(str(out / "tensorboard" / name))
        events.Reload()
        steps = [e.step for e in events.Scalars("wasserstein/estimate")]
        assert steps == [2, 4, 6]
        metrics = RunFolder(out / "runs" / name).read_metrics()
        logged = [e.value for e in events.Scalars("wasserstein/estimate")]
        torch.testing.assert_close(
            logged, [m["wasserstein/estimate"] for m in metrics], rtol=1e-6, atol=1e-6
        )


@pytest.mark.slow
def test_compare_accepts_every_registered_strategy(tmp_path):
    from lipgan import constraints

    names = constraints.names()
    assert len(names) >= 10
    out = tmp_path / "all"
    result = invoke(
        "compare", "--constraints", ",".join(names), "--clip-values", "", "--iters", "2",
        "--threshold", "100", "--out", str(out), *TINY[2:],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    strategies = json.loads((out / "results.json").read_text())["strategies"]
    assert set(strategies) == set(names)
    assert {row["status"] for row in strategies.values()} == {"ok"}
