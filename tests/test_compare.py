"""`lipgan compare` / `lipgan diagnose` end to end on tiny budgets, and their pieces."""

from __future__ import annotations

import json
import math
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lipgan import data as datasets
from lipgan.cli import app
from lipgan.compare import critic_only, examine, plan
from lipgan.compare.table import SUMMARY_COLUMNS, TRAIN_COLUMNS
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
        "compare", "--constraints", "clip,gp", "--seeds", "2", "--threshold", "100",
        "--out", str(out), *TINY,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


NAMES = ["clip@0.01", "gp"]
RUNS = ["clip@0.01__s0", "clip@0.01__s1", "gp__s0", "gp__s1"]


def test_results_json_holds_every_strategy_over_its_seeds_and_every_run(report):
    results = json.loads((report / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    assert results["baseline"] == "gp"
    assert list(results["strategies"]) == NAMES
    assert list(results["runs"]) == RUNS
    # toy data: modes and hq, and precision ... coverage on the raw points with the floor
    toy = {"modes", "hq_fraction", "quality_floor", "precision", "recall", "density", "coverage"}
    assert set(results["columns"]) == {c.key for c in SUMMARY_COLUMNS} | toy
    assert set(results["runs_columns"]) == {c.key for c in TRAIN_COLUMNS} | {"seed", *toy}
    for name, row in results["runs"].items():
        assert row["status"] == "ok" and row["seed"] == int(name[-1])
        assert row["peak_memory_mib"] > 0 and row["seconds_per_step"] > 0
        # every run is a normal run folder, and the table reads it back faithfully
        metrics = RunFolder(report / row["run"]).read_metrics()
        assert [m["step"] for m in metrics] == [2, 4, 6]
        assert row["final_quality"] == metrics[-1]["quality/w1"]
        assert row["best_quality"] == min(m["quality/w1"] for m in metrics)
        assert row["hq_fraction"] == metrics[-1]["quality/hq_fraction"]
        assert row["steps_to_threshold"] == 2  # --threshold 100: the first log step
        # the certified bound is an upper bound, the estimate a lower one
        assert row["lipschitz_certified"] >= row["lipschitz_estimate"] * (1 - 1e-6)
    for name, summary in results["strategies"].items():
        runs = [results["runs"][f"{name}__s{seed}"] for seed in (0, 1)]
        final = summary["final_quality"]
        values = [r["final_quality"] for r in runs]
        assert final["values"] == values and final["n"] == 2
        assert final["mean"] == pytest.approx(sum(values) / 2, abs=1e-10)
        assert final["ci95"][0] < final["mean"] < final["ci95"][1]
        assert summary["steps_to_threshold"]["reached"] == 2
        assert summary["status"] == {"ok": 2}
    clip = results["runs"]["clip@0.01__s0"]
    assert 0 < clip["weights_at_bound"] <= 1
    assert clip["diagnostics"]["clip_value"] == 0.01
    assert len(clip["diagnostics"]["layer_gradient_norms"]) == 3  # 2 hidden + output
    assert results["runs"]["gp__s1"]["weights_at_bound"] is None
    assert "weights_at_bound" not in results["strategies"]["gp"]


def test_verdicts_and_findings_are_in_the_report(report):
    results = json.loads((report / "results.json").read_text())
    verdicts = {(v["metric"], v["other"]): v for v in results["verdicts"]}
    assert set(verdicts) == {
        (m, "clip@0.01") for m in ("final_quality", "best_quality", "modes", "hq_fraction")
    }
    final = verdicts["final_quality", "clip@0.01"]
    assert final["baseline"] == "gp" and final["n_baseline"] == final["n_other"] == 2
    assert final["outcome"] in ("better", "worse", "no difference")
    claims = [(f["claim"], f["status"]) for f in results["findings"]]
    assert len(claims) == 5
    assert all(status in ("held", "did not hold", "not measurable") for _, status in claims)
    markdown = (report / "report.md").read_text()
    assert "## Verdicts" in markdown and "## Findings" in markdown
    assert final["sentence"] in markdown
    for finding in results["findings"]:
        assert finding["detail"] in markdown


def test_clip_runs_use_their_bound_and_the_strategy_defaults(report):
    import tomllib

    configs = {n: tomllib.loads((report / "runs" / n / "config.toml").read_text()) for n in RUNS}
    assert configs["clip@0.01__s1"]["constraint_options"] == {"clip.c": 0.01}
    assert configs["clip@0.01__s0"]["optimizer"] == "rmsprop"
    assert configs["gp__s0"]["optimizer"] == "adam"
    assert configs["gp__s1"]["constraint_options"] == {"gp.weight": 0.1}  # default on points
    assert [configs[n]["seed"] for n in RUNS] == [0, 1, 0, 1]
    assert {c["iters"] for c in configs.values()} == {6}


def test_a_compare_run_folder_is_a_normal_run(report, tmp_path):
    out = tmp_path / "samples.npy"
    result = invoke("sample", str(report / "runs" / "gp__s1"), "--n", "16", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (16, 2)


def test_html_parses_and_embeds_every_figure(report):
    results = json.loads((report / "results.json").read_text())
    figures = results["figures"]
    assert {Path(f).name for f in figures} == {
        "samples.png", "quality.png", "wasserstein.png", "layer_grad_norms.png",
        "weight_histograms.png", "interp_grad_norms.png", "lipschitz_gap.png",
        "precision_recall.png",
    }  # fmt: skip
    parser = Images()
    parser.feed((report / "report.html").read_text())
    assert parser.tables == 2  # strategies, then every run
    assert sorted(img["alt"] for img in parser.images) == sorted(Path(f).name for f in figures)
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,")
    markdown = (report / "report.md").read_text()
    for figure in figures:
        assert f"]({figure})" in markdown
        assert (report / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in NAMES:
        assert f"| {name} | 2/2 ok |" in markdown  # the strategies' table
        for seed in (0, 1):
            assert f"| {name} | {seed} | ok |" in markdown  # every run


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
    run = str(report / "runs" / "clip@0.01__s1")
    result = invoke("diagnose", run, "--out", str(out), "--threshold", "100")
    assert result.exit_code == 0, result.output
    diagnosed = json.loads((out / "results.json").read_text())
    compared = json.loads((report / "results.json").read_text())
    row, same = diagnosed["runs"]["clip@0.01__s1"], compared["runs"]["clip@0.01__s1"]
    for key in (
        "final_quality", "best_quality", "lipschitz_estimate", "weights_at_bound",
        "steps_to_threshold", "grad_norm_interp_mean",
    ):  # fmt: skip
        assert row[key] == same[key], key
    assert {Path(f).name for f in diagnosed["figures"]} == {
        Path(f).name for f in compared["figures"]
    }
    assert len(diagnosed["figures"]) == 8


def test_the_certified_bound_is_never_below_the_gradient_found(report):
    # The gap figure draws [largest gradient found, certified bound]: a product of layer
    # norms bounds every input gradient, so the bar can never be upside down.
    runs = json.loads((report / "results.json").read_text())["runs"]
    pairs = [(r["lipschitz_certified"], r["lipschitz_max_grad_norm"]) for r in runs.values()]
    assert len(pairs) == len(RUNS)
    for certified, found in pairs:
        assert 0 < found <= certified * (1 + 1e-5)


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


def test_threshold_defaults_to_twice_the_quality_metrics_own_floor():
    records = [{"step": 2, "quality/w1": 1.0, "quality/w1_floor": 0.09}]
    assert examine.threshold_for(records, "quality/w1", None) == pytest.approx(0.18, abs=1e-12)
    assert examine.threshold_for(records, "quality/w1", 0.5) == 0.5
    # Images and text: the floor of the headline metric, the last one logged.
    digits = [
        {"step": 1, "quality/frechet": 90.0, "quality/frechet_floor": 40.0},
        {"step": 2, "quality/frechet": 80.0, "quality/frechet_floor": 39.5},
    ]
    assert examine.threshold_for(digits, "quality/frechet", None) == pytest.approx(79.0)
    text = [{"step": 1, "quality/js4": 0.6, "quality/js1_floor": 0.07, "quality/js4_floor": 0.35}]
    assert examine.threshold_for(text, "quality/js4", None) == pytest.approx(0.70)
    # No floor logged (a run from before floors existed): no default.
    assert examine.threshold_for([{"quality/frechet": 3.0}], "quality/frechet", None) is None
    assert examine.quality_key([{"quality/js4": 1.0}, {"quality/frechet": 2.0}]) == (
        "quality/frechet"
    )


def test_a_compare_shares_twice_the_mean_of_its_runs_last_floors(tmp_path):
    def run(name: str, *records: dict) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        lines = [json.dumps(r) for r in records]
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        return folder

    a = run("a", {"step": 1, "quality/frechet": 90.0, "quality/frechet_floor": 50.0},
            {"step": 2, "quality/frechet": 80.0, "quality/frechet_floor": 40.0})  # fmt: skip
    b = run("b", {"step": 2, "quality/frechet": 70.0, "quality/frechet_floor": 38.0})
    missing = tmp_path / "not-trained"
    # The last floor of each run: 2 * mean(40, 38) = 78; a run not trained adds nothing.
    assert examine.shared_threshold([a, b, missing], None) == pytest.approx(78.0)
    assert examine.shared_threshold([a, b], 100.0) == 100.0
    assert examine.shared_threshold([run("c", {"step": 2, "quality/js4": 0.5})], None) is None


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
        (["--jobs", "2", "--threads", "4096"], "jobs x threads <= cores"),
        (["--constraints", "gp,nope"], "unknown constraint"),
        (["--iters", "0"], "--iters must be >= 1"),
        (["--clip-values", "a,b"], "comma-separated"),
        (["--seeds", "two"], "neither a count"),
        (["--seeds", "0,0"], "distinct seeds"),
        (["--baseline", "sn"], "not one of the compared runs"),
        (["--critic-only", "--seeds", "2"], "drop --seeds"),
        (["--resume", str(tmp_path)], "no plan.json"),
        (["--resume", str(tmp_path), "--iters", "5"], "--iters cannot change a saved compare"),
        (["--resume", str(tmp_path), "--out", "y"], "--out cannot change a saved compare"),
    ):
        out = [] if "--resume" in args else ["--out", str(tmp_path / "x")]
        result = CliRunner().invoke(app, ["compare", *out, *args])
        assert result.exit_code == 2, args
        assert "error:" in result.output and needle in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_seeds_are_a_count_from_seed_or_a_list():
    assert plan.parse_seeds("3", 0) == [0, 1, 2]
    assert plan.parse_seeds("2", 5) == [5, 6]
    assert plan.parse_seeds("0,3,7", 5) == [0, 3, 7]
    assert plan.parse_seeds(None, 4) == [4]
    with pytest.raises(ConfigError, match=">= 1"):
        plan.parse_seeds("0", 0)


WALL_CLOCK = {"seconds_per_step", "seconds_to_threshold", "peak_memory_mib", "command"}


def without_wall_clock(value):
    """results.json minus what depends on the machine's load and on how it was invoked."""
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


@pytest.mark.slow
def test_jobs_trains_in_worker_processes_with_the_same_numbers(report, tmp_path):
    two = tmp_path / "two"
    args = ["--constraints", "clip,gp", "--seeds", "2", "--threshold", "100", *TINY]
    assert invoke("compare", "--out", str(two), "--jobs", "2", *args).exit_code == 0
    for name in RUNS:
        # same seed, same data, same budget: the deterministic metrics are identical
        assert (report / "runs" / name / "metrics.jsonl").read_text() == (
            two / "runs" / name / "metrics.jsonl"
        ).read_text()
    one_results = json.loads((report / "results.json").read_text())
    two_results = json.loads((two / "results.json").read_text())
    assert without_wall_clock(two_results) == without_wall_clock(one_results)
    rows = two_results["runs"]
    assert all(row["peak_memory_mib"] > 50 for row in rows.values())  # a child's ru_maxrss


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_an_interrupted_compare_resumed_gives_the_same_results(report, tmp_path, monkeypatch, jobs):
    import contextlib
    import signal

    from lipgan import callbacks

    out = tmp_path / "resumed"

    @contextlib.contextmanager
    def stop_once_a_run_ended():
        # a stop as soon as the first run is recorded: with --jobs 1 the next run never
        # starts, with --jobs 2 the other running one stops at a checkpoint
        outcomes = out / "outcomes.json"
        yield (
            lambda: signal.SIGINT if outcomes.is_file() and '"ok"' in outcomes.read_text() else None
        )

    args = ["--constraints", "clip,gp", "--seeds", "2", "--threshold", "100", *TINY]
    with monkeypatch.context() as patch:
        patch.setattr(callbacks, "StopOnSignals", stop_once_a_run_ended)
        stopped = CliRunner().invoke(app, ["compare", "--out", str(out), "--jobs", jobs, *args])
    assert stopped.exit_code == 130, stopped.output
    assert f"lipgan compare --resume {out}" in stopped.output
    assert not (out / "results.json").exists()
    outcomes = json.loads((out / "outcomes.json").read_text())
    assert len([o for o in outcomes.values() if o["status"] == "ok"]) < len(RUNS)
    resumed = invoke("compare", "--resume", str(out), "--jobs", jobs)
    assert resumed.exit_code == 0, resumed.output
    assert "reused" in resumed.output or jobs == "2"
    uninterrupted = json.loads((report / "results.json").read_text())
    again = json.loads((out / "results.json").read_text())
    assert without_wall_clock(again) == without_wall_clock(uninterrupted)


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
    for name in ("gp__s0", "none__s0"):
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
    assert all(row["status"] == {"ok": 1} for row in strategies.values())


def test_compare_config_file_sets_shared_settings_and_each_strategy_gets_its_options(tmp_path):
    import tomllib

    config = tmp_path / "shared.toml"
    config.write_text('lr_decay = "linear"\nlr = 0.0003\n[constraint_options]\n"gp.weight" = 1.0\n')
    out = tmp_path / "report"
    result = invoke(
        "compare", "--constraints", "fd,gp", "--config", str(config), "--out", str(out), *TINY
    )
    assert result.exit_code == 0, result.output
    saved = {
        n: tomllib.loads((out / "runs" / n / "config.toml").read_text())
        for n in ("fd__s0", "gp__s0")
    }
    assert {c["lr_decay"] for c in saved.values()} == {"linear"}
    assert {c["lr"] for c in saved.values()} == {0.0003}
    assert saved["gp__s0"]["constraint_options"] == {"gp.weight": 1.0}
    assert "gp.weight" not in saved["fd__s0"]["constraint_options"]


def test_compare_config_option_for_no_compared_strategy_is_one_line(tmp_path):
    config = tmp_path / "shared.toml"
    config.write_text('constraint = "gp"\n[constraint_options]\n"gp.weight" = 1.0\n')
    result = CliRunner().invoke(
        app, ["compare", "--constraints", "fd,none", "--config", str(config),
              "--out", str(tmp_path / "r"), *TINY],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "'gp.weight' applies to none of the compared strategies" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_compare_config_options_are_checked_against_each_strategy(tmp_path):
    import tomllib

    config = tmp_path / "shared.toml"
    config.write_text('[constraint_options]\n"fd.weight" = 2.0\n"gp.weight" = 1.0\n')
    out = tmp_path / "report"
    result = invoke(
        "compare", "--constraints", "fd, sn + gp", "--config", str(config), "--out", str(out),
        "--iters", "2", *TINY[2:],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fd = tomllib.loads((out / "runs" / "fd__s0" / "config.toml").read_text())
    chain = tomllib.loads((out / "runs" / "sn+gp__s0" / "config.toml").read_text())
    assert fd["constraint_options"]["fd.weight"] == 2.0
    assert chain["constraint_options"]["gp.weight"] == 1.0
    assert "fd.weight" not in chain["constraint_options"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ('"clip.c" = 0.1', "takes its clipping bounds from --clip-values"),
        ('"gp.nope" = 1.0', "'gp.nope' does not exist"),
    ],
)
def test_compare_config_bad_options_are_one_line(tmp_path, option, message):
    config = tmp_path / "shared.toml"
    config.write_text(f"[constraint_options]\n{option}\n")
    result = CliRunner().invoke(
        app, ["compare", "--constraints", "clip,gp", "--config", str(config),
              "--out", str(tmp_path / "r"), *TINY],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_a_resumed_compare_trains_what_was_planned_even_if_defaults_changed(tmp_path, monkeypatch):
    from lipgan.constraints.registry import OptimizerDefaults
    from lipgan.runs import build_config

    base = build_config(None, {"iters": 4, "hidden": 8, "batch_size": 32, "threads": 1})
    out = tmp_path / "cmp"
    setup = plan.setup(base, plan.plan("gp", None), out, seeds=[0, 1])
    setup.release()  # as run_compare does when it ends
    planned = {job.seed: job.config for job in setup.jobs}
    assert planned[0].n_critic == 3 and planned[0].lr_decay == "linear"
    # a later lipgan with other points defaults resumes this compare
    monkeypatch.setattr(OptimizerDefaults, "schedule_for", lambda self, family: (4, "cosine"))
    resumed = plan.resume_setup(out)
    assert {job.seed: job.config for job in resumed.jobs} == planned
