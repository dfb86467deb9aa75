"""Upper bounds on a critic's Lipschitz constant once spectral normalisation (sn) is attached.

sn divides each Linear/Conv weight, seen as the matrix (out, in * prod(kernel)), by its top
singular value. That makes a Linear layer 1-Lipschitz, and ReLU, LeakyReLU, tanh and
flattening are 1-Lipschitz, so the layered MLP and DCGAN critics are bounded by the
product of their layers' bounds. Three things break "1 by construction"
(docs/constraints/sn.md has the table per architecture):

- a convolution is not its matrix: an input position enters up to prod(ceil(k_i / s_i))
  outputs, so its operator norm can reach sqrt of that (2 for 4x4 stride 2, 3 for 3x3
  stride 1, sqrt(5) for a width-5 1-D conv); ``conv_factor=False`` gives the bound that
  counts every normalised layer as 1 instead (what "by construction" assumes);
- a residual block x + f(x) is bounded by 1 + Lip(f), not by 1;
- layer norm divides by a per-sample standard deviation (its constant is up to
  max|gain| / sqrt(eps), ~316 per unit gain) and batch norm depends on the whole batch:
  no useful bound, reported as infinity.

Average pooling over 2x2 windows is 1/2-Lipschitz and a global mean over P positions is
1/sqrt(P)-Lipschitz (Cauchy-Schwarz), which the ResNet critic's bound uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from torch import nn

UNBOUNDED = math.inf

ONE_LIPSCHITZ = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Softplus, nn.Identity, nn.Flatten, nn.Linear,
)  # fmt: skip
"""Layers with bound 1 (a Linear layer under sn)."""

UNBOUNDED_LAYERS = (nn.GroupNorm, nn.LayerNorm, nn.modules.batchnorm._BatchNorm)


def layer_bound(module: nn.Module, conv_factor: bool = True) -> float:
    """The Lipschitz bound of one layer of an sn critic (a Sequential: the product)."""
    if isinstance(module, nn.Sequential):
        return chain_bound(module, conv_factor)
    if isinstance(module, nn.modules.conv._ConvNd):
        if not conv_factor:
            return 1.0
        pairs = zip(module.kernel_size, module.stride, strict=True)
        overlaps = math.prod(math.ceil(k / s) for k, s in pairs)
        return math.sqrt(overlaps)
    if isinstance(module, UNBOUNDED_LAYERS):
        return UNBOUNDED
    if isinstance(module, ONE_LIPSCHITZ):
        return 1.0
    bound = getattr(module, "lipschitz_bound", None)
    if bound is None:
        raise TypeError(f"no Lipschitz bound is known for {type(module).__name__}")
    return bound(conv_factor)


def chain_bound(modules: Iterable[nn.Module], conv_factor: bool = True) -> float:
    """Bound of layers applied one after the other: the product of theirs."""
    return math.prod(layer_bound(m, conv_factor) for m in modules)


def sn_bound(critic: nn.Module, conv_factor: bool = True) -> float:
    """Upper bound on ||grad_x D(x)|| of ``critic`` under sn (infinity: none)."""
    return layer_bound(critic, conv_factor)
