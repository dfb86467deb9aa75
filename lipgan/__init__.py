"""lipgan: Wasserstein GANs with pluggable Lipschitz strategies.

As a library (docs/api.md): the functional penalties below take a critic and plain
tensors and run the same code as the registered strategies; ``lipgan.constraints.build``
gives a whole strategy (``"sn+gp"``) for a training loop of your own.
``lipgan.train(config, run_dir, callbacks=[...])`` trains one run, ``lipgan.resume``
continues one and ``lipgan.Callback`` is the hook base class; these load on first use.
Bad arguments raise ``lipgan.errors.ArgumentError`` (a ``ValueError``) or
``ArgumentTypeError`` (a ``TypeError``), a call that cannot work ``UsageError`` (a
``RuntimeError``); docs/api.md, "Errors".
"""

import importlib
from typing import Any

from lipgan import constraints
from lipgan.constraints.clipping import clip_weights
from lipgan.constraints.dragan import dragan_penalty
from lipgan.constraints.finite_difference import finite_difference_penalty
from lipgan.constraints.gradient_penalty import gradient_penalty
from lipgan.constraints.spectral_norm import spectral_norm
from lipgan.constraints.wgan_div import wgan_div_penalty
from lipgan.constraints.zero_centred import (
    r1_penalty,
    r2_penalty,
    zero_centred_gradient_penalty,
)

__version__ = "0.1.0"

_LAZY = {
    "train": "lipgan.training",
    "resume": "lipgan.training",
    "sample": "lipgan.training",
    "TrainConfig": "lipgan.config",
    "Callback": "lipgan.callbacks",
}

__all__ = [
    "Callback",
    "TrainConfig",
    "__version__",
    "clip_weights",
    "constraints",
    "dragan_penalty",
    "finite_difference_penalty",
    "gradient_penalty",
    "r1_penalty",
    "r2_penalty",
    "resume",
    "sample",
    "spectral_norm",
    "train",
    "wgan_div_penalty",
    "zero_centred_gradient_penalty",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lipgan' has no attribute {name!r}")
