"""lipgan: Wasserstein GANs with pluggable Lipschitz strategies.

As a library (docs/api.md): the functional penalties below take a critic and plain
tensors and run the same code as the registered strategies; ``lipgan.constraints.build``
gives a whole strategy (``"sn+gp"``) for a training loop of your own.
"""

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

__all__ = [
    "__version__",
    "clip_weights",
    "constraints",
    "dragan_penalty",
    "finite_difference_penalty",
    "gradient_penalty",
    "r1_penalty",
    "r2_penalty",
    "spectral_norm",
    "wgan_div_penalty",
    "zero_centred_gradient_penalty",
]
