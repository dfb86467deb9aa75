"""orthogonal, gn and alr train on every data family, or are refused before any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runkit import TINY_ARGS, cli

WORDS = "the quick brown fox jumps over a lazy dog while cats sleep in the sun".split()


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    lines = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(6)) for i in range(60)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow  # nine tiny runs, ~2 s each on an idle machine
@pytest.mark.parametrize("family", ["points", "digits", "text"])
@pytest.mark.parametrize("constraint", ["orthogonal", "gn", "alr"])
def test_trains_a_few_iterations_on_each_family(tmp_path, text_file, constraint, family) -> None:
    data = {"points": "8gaussians", "digits": "digits", "text": f"text:{text_file}"}[family]
    out = tmp_path / "run"
    result = cli(
        "train", *TINY_ARGS, "--iters", "4", "-c", constraint, "-d", data, "--seq-len", "8",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 4 and summary["rollbacks"] == 0
    assert summary["lipschitz/grad_norm_mean"] > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-c", "orthogonal", "-d", "digits", "--architecture", "resnet"],
         "orthogonal cannot rebuild a ResNetCritic"),
        (["-c", "orthogonal", "--critic-norm", "layer"],
         "orthogonal: LayerNorm in the critic is not 1-Lipschitz; use --critic-norm none"),
        # Points default to FullSort (any width); MaxMin (group_size 2) needs an even one.
        (["-c", "orthogonal", "-o", "orthogonal.group_size=2", "--hidden", "15"],
         "15 outputs, not a multiple of orthogonal.group_size 2"),
        (["-c", "gn", "--critic-norm", "batch"], "batch norm makes each score depend"),
        (["-c", "gn+orthogonal"], "cannot rebuild a GradientNormalizedCritic"),
        (["-c", "alr", "-o", "alr.steps=0"], "constraint 'alr': steps must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_what_cannot_apply_is_refused_in_one_line_before_any_output(tmp_path, args, words):
    out = tmp_path / "new"
    result = cli("train", *TINY_ARGS, "--iters", "2", *args, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert words in result.output
    assert not out.exists()
