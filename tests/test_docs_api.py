"""Every ```python block of docs/api.md runs, so the documented examples cannot rot.

Each block is a complete script: it runs in a fresh namespace of its own (in this
process, as ``__main__``), in the order of the page. The examples assert what they
claim (the gradient norm on interpolates ends near 1, spectral norms are 1), so an
example that trains but no longer does what the page says fails here too. A block that
imports ``lightning`` is skipped, with that reason, only when Lightning cannot be
imported (it is in the test extra).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.S | re.M)


def test_the_page_has_the_examples():
    # A changed fence (```py, indentation) would silently drop a block from the run below.
    fences = re.findall(r"^```python$", DOC.read_text(), flags=re.M)
    assert len(BLOCKS) == len(fences) >= 2
    assert any("lipgan.gradient_penalty(" in b for b in BLOCKS)
    assert any("lipgan.constraints.build(" in b and "LightningModule" in b for b in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_every_python_block_runs(index):
    code = BLOCKS[index]
    if re.search(r"^import lightning|^from lightning", code, flags=re.M):
        if importlib.util.find_spec("lightning") is None:
            pytest.skip("lightning is not installed: pip install lightning (in the test extra)")
    exec(compile(code, f"{DOC}:block{index + 1}", "exec"), {"__name__": "__main__"})
