"""The critic's activation masks as constants in a penalty's double backward.

A ReLU critic's input gradient depends on the input only through its activation masks,
which are piecewise constant. PyTorch's ReLU backward (``threshold_backward``, and
``leaky_relu_backward``) still has a derivative with respect to the activations, defined
as zeros, so back-propagating a gradient penalty sends zero tensors back through the
whole forward graph: a weight-gradient and an input-gradient matmul of zeros per layer,
about a third of the penalty's FLOPs (tests/test_performance.py counts them). Writing the
activation as a ``where`` on a boolean mask computes the same values and the same
gradients, bit for bit, but the mask has no gradient, so the double backward stops there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


def _relu(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
    x = inputs[0]
    return torch.where(x <= 0, 0.0, x)  # NaN stays NaN, as in relu


def _leaky_relu(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
    x = inputs[0]
    return torch.where(x > 0, x, x * module.negative_slope)


# x * where(x > 0, 1, slope), with one multiply in each backward, is cheaper but not exact:
# r1 on the 64-wide conv critic drifted by an ulp in 3 iterations (the gradient sums
# change order). Both forms here leave every number of a run unchanged (tested).
MASKED = {nn.ReLU: _relu, nn.LeakyReLU: _leaky_relu}
"""Activation modules whose output is recomputed with a constant mask (exact types only:
a subclass may compute something else)."""


@contextlib.contextmanager
def constant_masks(critic: nn.Module) -> Iterator[None]:
    """While open, the critic's ReLU / LeakyReLU modules return the same values through a
    ``where`` on a constant mask (a forward hook; in-place ones are left alone, their
    input is already overwritten). Activations written as functions are not reached."""
    handles = [
        module.register_forward_hook(MASKED[type(module)])
        for module in critic.modules()
        if type(module) in MASKED and not getattr(module, "inplace", False)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
