"""Third-party strategies arrive through the ``lipgan.constraints`` entry-point group.

The plugin is the package documented in docs/extending.md, extracted from its
``# file:`` code blocks, so the documented example is the tested one.

Nothing is installed into the shared environment (other processes in it would start
seeing the plugin mid-run). Instead the distribution goes into a temporary folder put
on ``PYTHONPATH`` of a fresh interpreter, which rescans entry points at start-up:

- the fast test writes the ``*.dist-info`` (METADATA + entry_points.txt) that pip
  would write: importlib.metadata discovers entry points from exactly those files on
  any sys.path entry, so this is the same discovery path an installed package takes;
- the slow test builds and installs the package for real with
  ``pip install --no-deps --no-build-isolation --target DIR``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
TINY_ARGS = [
    "--iters", "3", "--log-every", "1", "--hidden", "16", "--critic-layers", "2",
    "--generator-layers", "2", "--batch-size", "32", "--eval-samples", "32",
    "--sample-every", "10000", "--checkpoint-every", "10000",
]  # fmt: skip


def documented_files() -> dict[str, str]:
    """{relative path: content} of every fenced block starting with '# file: PATH'."""
    blocks = re.findall(r"```\w*\n# file: (\S+)\n(.*?)```", DOC.read_text(), flags=re.S)
    return dict(blocks)


def write_package(root: Path) -> Path:
    files = documented_files()
    assert set(files) == {"lipgan-maxnorm/pyproject.toml", "lipgan-maxnorm/lipgan_maxnorm.py"}
    for path, body in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body)
    return root / "lipgan-maxnorm"


def write_dist_info(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def lipgan(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m lipgan ARGS`` in a fresh interpreter that sees ``site``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env["COLUMNS"] = "250"  # keep the table's cells on one line
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "lipgan", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def check_plugin_lists_and_trains(site: Path, tmp_path: Path) -> None:
    listed = lipgan(site, "constraints", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " max-norm " in line)
    assert "lipgan_maxnorm" in row and "max_norm=1" in row
    names = re.findall(r"^│ (\S+)", listed.stdout, flags=re.M)
    assert len(names) >= 10 and "max-norm" in names

    out = tmp_path / "run"
    trained = lipgan(
        site, "train", "--constraint", "max-norm", "-o", "max-norm.max_norm=0.5",
        *TINY_ARGS, "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 3 and summary["rollbacks"] == 0


@pytest.mark.slow  # three fresh interpreters: ~10 s on an idle 2-core machine
def test_entry_point_plugin_is_listed_and_trains(tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = write_package(tmp_path)
    site.mkdir()
    (site / "lipgan_maxnorm.py").write_text((package / "lipgan_maxnorm.py").read_text())
    write_dist_info(site, "lipgan-maxnorm", "[lipgan.constraints]\nmax-norm = lipgan_maxnorm\n")
    check_plugin_lists_and_trains(site, tmp_path)

    refused = lipgan(site, "train", "--constraint", "sn+max-norm", *TINY_ARGS, cwd=tmp_path)
    assert refused.returncode == 2
    assert "'sn' and 'max-norm' both constrain the critic through weights" in refused.stderr


def test_a_plugin_that_fails_to_import_is_one_line_error(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    write_dist_info(site, "lipgan-broken", "[lipgan.constraints]\nbroken = lipgan_missing_mod\n")
    result = lipgan(site, "constraints", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: plugin 'broken' (lipgan_missing_mod) failed to load")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_pip_installed_plugin_is_listed_and_trains(tmp_path: Path) -> None:
    package = write_package(tmp_path)
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(package)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert list(site.glob("lipgan_maxnorm-0.1.0.dist-info/entry_points.txt"))
    check_plugin_lists_and_trains(site, tmp_path)
