"""Bad input through the real CLI: one line naming the problem, an exit code, no traceback.

Every case also checks that nothing was written: the output folder of a refused
``train`` is never created, and an existing run is never touched.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lipgan.runio import RunFolder

from runkit import TINY_ARGS, cli, train_run

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    train_run(root / "run", iters=4)
    (root / "bad.toml").write_text("iters = [unclosed\n")
    (root / "unknown.toml").write_text("iters = 2\nnope = 1\n")
    (root / "type.toml").write_text('iters = "ten"\n')
    (root / "afile").write_text("not a folder\n")
    (root / "notrun").mkdir()
    (root / "notrun" / "precious.txt").write_text("keep me\n")
    (root / "empty.npy").write_bytes(b"")
    (root / "corrupt.npy").write_bytes(random.Random(0).randbytes(500))
    (root / "empty.txt").write_text("")
    shutil.copytree(root / "run", root / "corrupt-run")
    RunFolder(root / "corrupt-run").last.write_bytes(random.Random(1).randbytes(3000))
    np.save(root / "ok.npy", np.zeros(3))
    return root


TRAIN = ["train", *TINY_ARGS, "--iters", "2"]

# (id, arguments with {root} for the sandbox, exit code, text (or texts) the message contains)
CASES = [
    ("negative lambda", [*TRAIN, "--lambda", "-1"], 2, "--lambda must be >= 0, got -1"),
    ("clip 0", [*TRAIN, "-c", "clip", "--clip", "0"], 2, "--clip must be > 0, got 0"),
    ("iters 0", [*TRAIN, "--iters", "0"], 2, "--iters must be >= 1, got 0"),
    ("batch 0", [*TRAIN, "--batch-size", "0"], 2, "--batch-size must be >= 1, got 0"),
    ("lr 0", [*TRAIN, "--lr", "0"], 2, "--lr must be > 0, got 0"),
    ("lr -1", [*TRAIN, "--lr", "-1"], 2, "--lr must be > 0, got -1"),
    ("lr nan", [*TRAIN, "--lr", "nan"], 2, "--lr must be > 0, got nan"),
    ("n-critic 0", [*TRAIN, "--n-critic", "0"], 2, "--n-critic must be >= 1, got 0"),
    ("keep 0", [*TRAIN, "--keep", "0"], 2, "--keep must be >= 1, got 0"),
    ("eval-sets 0", [*TRAIN, "--eval-sets", "0"], 2, "--eval-sets must be >= 1, got 0"),
    ("seed -1", [*TRAIN, "--seed", "-1"], 2, "--seed must be between 0 and 4294967295"),
    ("seed huge", [*TRAIN, "--seed", str(2**70)], 2, "--seed must be between 0 and"),
    (
        "iters not whole",
        [*TRAIN, "--iters", "1.5"],
        2,
        "'--iters': Input should be a valid integer",
    ),
    ("unknown constraint", [*TRAIN, "-c", "nope"], 2, "unknown constraint 'nope'; available:"),
    ("unknown data", [*TRAIN, "-d", "nope"], 2, "unknown data 'nope'; available: 8gaussians"),
    ("toy data argument", [*TRAIN, "-d", "8gaussians:x"], 2, "toy data take no ':' argument"),
    ("conflicting combination", [*TRAIN, "-c", "gp+fd"], 2, "both constrain the critic"),
    ("none combined", [*TRAIN, "-c", "none+clip"], 2, "'none' cannot be combined"),
    ("lambda on clip", [*TRAIN, "-c", "clip", "--lambda", "1"], 2, "--lambda has no effect"),
    ("clip on gp", [*TRAIN, "--clip", "0.1"], 2, "--clip has no effect"),
    ("betas one number", [*TRAIN, "--betas", "0.5"], 2, "expected 2 numbers"),
    ("betas not numbers", [*TRAIN, "--betas", "a,b"], 2, "not a comma-separated list"),
    ("betas out of range", [*TRAIN, "--betas", "1,0.9"], 2, "--betas must both lie in [0, 1)"),
    (
        "betas with rmsprop",
        [*TRAIN, "--optimizer", "rmsprop", "--betas", "0.5,0.9"],
        2,
        "--betas only applies to Adam",
    ),  # fmt: skip
    ("option syntax", [*TRAIN, "-o", "gp.weight"], 2, "is not STRATEGY.PARAM=NUMBER"),
    (
        "unknown option key",
        [*TRAIN, "-o", "gp.nope=1"],
        2,
        "constraint option 'gp.nope' does not exist; valid: gp.weight",
    ),  # fmt: skip
    ("option value", [*TRAIN, "-o", "gp.weight=-2"], 2, "weight must be >= 0"),
    (
        "batch norm with gp",
        [*TRAIN, "--critic-norm", "batch"],
        2,
        "--critic-norm batch cannot be used with a penalty",
    ),  # fmt: skip
    ("unknown choice", [*TRAIN, "--on-nan", "maybe"], 2, "is not one of: stop, rollback"),
    (
        "one-step n-critic",
        [*TRAIN, "--schedule", "one-step", "--n-critic", "5"],
        2,
        "set --n-critic 1",
    ),  # fmt: skip
    ("config missing", [*TRAIN, "--config", "{root}/missing.toml"], 2, "does not exist"),
    ("config bad toml", [*TRAIN, "--config", "{root}/bad.toml"], 2, "is not valid TOML"),
    (
        "config unknown key",
        [*TRAIN, "--config", "{root}/unknown.toml"],
        2,
        "unknown option 'nope'",
    ),  # fmt: skip
    (
        "config wrong type",
        [*TRAIN, "--config", "{root}/type.toml"],
        2,
        "iters = 'ten' is not a valid whole number",
    ),  # fmt: skip
    ("data file missing", [*TRAIN, "-d", "array:{root}/missing.npy"], 2, "does not exist"),
    ("data file empty", [*TRAIN, "-d", "array:{root}/empty.npy"], 2, "empty.npy is empty"),
    ("data file corrupt", [*TRAIN, "-d", "array:{root}/corrupt.npy"], 2, "corrupt.npy"),
    ("text file empty", [*TRAIN, "-d", "text:{root}/empty.txt"], 2, "is empty"),
    (
        "existing out folder",
        [*TRAIN, "--out", "{root}/run"],
        2,
        "already exists; pass --overwrite to replace it or --resume",
    ),  # fmt: skip
    (
        "overwrite a non-run folder",
        [*TRAIN, "--out", "{root}/notrun", "--overwrite"],
        2,
        "is not a lipgan run folder",
    ),  # fmt: skip
    ("out is a file", [*TRAIN, "--out", "{root}/afile"], 2, "is a file; choose a folder"),
    (
        "out below a file",
        [*TRAIN, "--out", "{root}/afile/run"],
        2,
        "cannot be created: {root}/afile is a file",
    ),  # fmt: skip
    ("resume missing folder", ["train", "--resume", "{root}/missing"], 2, "no config.toml"),
    (
        "resume changed setting",
        ["train", "--resume", "{root}/run", "--iters", "8", "--lr", "0.1"],
        2,
        "--lr cannot change",
    ),  # fmt: skip
    (
        "resume changed data",
        ["train", "--resume", "{root}/run", "-d", "swissroll"],
        2,
        "--data cannot change",
    ),  # fmt: skip
    (
        "resume with overwrite",
        ["train", "--resume", "{root}/run", "--overwrite"],
        2,
        "--resume cannot be combined with --config or --overwrite",
    ),  # fmt: skip
    ("resume a finished run", ["train", "--resume", "{root}/run"], 2, "raise --iters"),
    (
        "resume corrupt checkpoint",
        ["train", "--resume", "{root}/corrupt-run", "--iters", "8"],
        2,
        "is corrupt or not a checkpoint",
    ),  # fmt: skip
    (
        "sample bad suffix",
        ["sample", "{root}/run", "--out", "{root}/s.jpg"],
        2,
        "has an unknown type; end it in .png, .npy, .txt",
    ),  # fmt: skip
    ("sample missing run", ["sample", "{root}/missing"], 2, "does not exist; check the path"),
    (
        "sample corrupt checkpoint",
        ["sample", "{root}/corrupt-run", "--out", "{root}/s.npy"],
        2,
        "is corrupt or not a checkpoint",
    ),  # fmt: skip
    (
        "sample n 0",
        ["sample", "{root}/run", "--n", "0", "--out", "{root}/s.npy"],
        2,
        "--n must be >= 1",
    ),  # fmt: skip
    (
        "sample text of points",
        ["sample", "{root}/run", "--out", "{root}/s.txt"],
        2,
        ".txt is for text runs",
    ),  # fmt: skip
    ("nproc 0", [*TRAIN, "--nproc", "0"], 2, ("--nproc", "must be >= 1")),
]
if not CUDA:
    CASES += [
        ("fp16 on cpu", [*TRAIN, "--precision", "fp16"], 2, "fp16 needs a CUDA device"),
        ("cuda without cuda", [*TRAIN, "--device", "cuda"], 2, "no CUDA device is available"),
    ]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("args", "code", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_one_line_and_writes_nothing(sandbox, args, code, words) -> None:
    args = [a.format(root=sandbox) for a in args]
    if args[0] == "train" and "--out" not in args and "--resume" not in args:
        args += ["--out", str(sandbox / "new")]
    before = snapshot(sandbox)
    result = cli(*args)
    output = result.output
    assert "Traceback" not in output
    assert result.exit_code == code, output
    assert output.count("\n") == 1 and output.startswith("error: "), output
    for word in (words,) if isinstance(words, str) else words:
        assert word.format(root=sandbox) in output
    assert snapshot(sandbox) == before
    assert not (sandbox / "new").exists()


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 20


def test_unknown_constraint_lists_every_available_name(sandbox) -> None:
    from lipgan import constraints as registry

    result = cli(*TRAIN, "-c", "nope", "--out", sandbox / "new")
    available = result.output.split("available:")[1].strip()
    assert available.split(", ") == registry.names()


def test_overwrite_replaces_a_run_folder(tmp_path) -> None:
    out = tmp_path / "run"
    train_run(out, iters=4)
    result = cli(*TRAIN, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert [m["step"] for m in RunFolder(out).read_metrics()] == [2]
