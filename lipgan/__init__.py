"""lipgan: Wasserstein GANs with pluggable Lipschitz strategies.

``lipgan.train(config, run_dir, callbacks=[...])`` trains one run (docs/api.md);
``lipgan.resume(run_dir)`` continues one; ``lipgan.Callback`` is the hook base class.
They load on first use, so ``import lipgan`` (and ``lipgan --version``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "train": "lipgan.training",
    "resume": "lipgan.training",
    "sample": "lipgan.training",
    "TrainConfig": "lipgan.config",
    "Callback": "lipgan.callbacks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lipgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
