"""Shared fixtures; helpers importable by every test live in testkit.py."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Tests run beside other work on a 2-core machine; one thread keeps timings sane.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
