"""Every ```python block of docs/api.md runs, so the documented examples cannot rot.

Each block is a complete script: it runs in a fresh namespace of its own (in this
process, as ``__main__``), in the order of the page. The examples assert what they
claim (the generator's samples approach the modes, spectral norms are 1), so an
example that trains but no longer does what the page says fails here too. A block that
imports Lightning is skipped, with that reason, only when neither of its package names
(``lightning``, ``pytorch_lightning``) can be imported (``lightning`` is in the test
extra).
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


def test_every_example_keeps_the_critic_attach_returns():
    # gn returns a wrapper: a bare `strategy.attach(critic)` line would train the raw critic.
    calls = [line for b in BLOCKS for line in b.splitlines() if ".attach(" in line]
    assert calls
    for line in calls:
        assert re.match(r"^\s*[\w.]+ = [\w.]+\.attach\(", line), line


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=lambda i: f"block{i + 1}")
def test_every_python_block_runs(index):
    code = BLOCKS[index]
    if re.search(r"^\s*(import|from) (lightning|pytorch_lightning)\b", code, flags=re.M):
        if not any(importlib.util.find_spec(name) for name in ("lightning", "pytorch_lightning")):
            pytest.skip("Lightning is not installed: pip install lightning (in the test extra)")
    exec(compile(code, f"{DOC}:block{index + 1}", "exec"), {"__name__": "__main__"})
