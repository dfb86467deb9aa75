"""The strategy interface and the helpers every penalty shares.

A Lipschitz strategy is a small object with three hooks, all optional:

- ``attach(critic)``: once, before the optimiser is built. It may change the critic in
  place (reparametrise its layers: sn) and return None, or return a *replacement* that
  the engine then uses for every critic call: a wrapper around the critic's forward
  (gradient normalisation) or a critic with rebuilt layers (orthogonal);
- ``penalty(critic, batch)``: a scalar added to the critic loss, or ``None``;
- ``after_critic_step(critic)``: after every critic optimiser step (e.g. clip weights).

``Constraint`` itself is the "do nothing" strategy. ``Chain`` composes several.
``BatchRandom`` lives in ``lipgan.batch_random``; it is re-exported here for old imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom


@dataclass
class CriticBatch:
    """What a penalty may look at in one critic step (this process's shard)."""

    real: Tensor
    """Real samples, shape (n, ...)."""
    fake: Tensor
    """Generated samples, detached from the generator, shape (n, ...)."""
    critic_real: Tensor
    """D(real), shape (n,), with gradient to the critic."""
    critic_fake: Tensor
    """D(fake), shape (n,), with gradient to the critic."""
    rand: BatchRandom
    """Source of per-sample randomness (interpolation weights, perturbations)."""
    scaler: torch.amp.GradScaler | None = None
    """The fp16 gradient scaler, when one is active (see ``input_gradient``)."""


class Constraint:
    """The do-nothing strategy; other strategies override the hooks they need."""

    needs_double_backward: bool = False
    """True when the penalty back-propagates through an input gradient."""

    def attach(self, critic: nn.Module) -> nn.Module | None:
        """Called once with the critic before its optimiser is built.

        Return None to keep ``critic`` (changed in place or not), or a module that
        replaces it everywhere: training, penalties, measurements and checkpoints.
        """
        return None

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor | None:
        """A scalar added to the critic loss (already weighted), or None."""
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        """Called after every critic optimiser step."""

    def penalty_on(
        self,
        critic: nn.Module,
        real: Tensor,
        fake: Tensor,
        *,
        critic_real: Tensor | None = None,
        critic_fake: Tensor | None = None,
        generator: torch.Generator | BatchRandom | None = None,
        scaler: torch.amp.GradScaler | None = None,
    ) -> Tensor:
        """``penalty`` from plain tensors, for a training loop of your own (docs/api.md).

        The scores D(real), D(fake) are computed when not given (pass the ones your loss
        already has to save two forward passes); ``generator`` as in ``random_source``.
        A strategy without a penalty gives a zero scalar, so ``loss + penalty`` always works.
        """
        if not has_penalty(self):
            return real.new_zeros(())
        batch = CriticBatch(
            real,
            fake,
            critic(real) if critic_real is None else critic_real,
            critic(fake) if critic_fake is None else critic_fake,
            random_source(generator, real.device),
            scaler,
        )
        value = self.penalty(critic, batch)
        return real.new_zeros(()) if value is None else value


class Chain(Constraint):
    """Several strategies applied together: penalties add, hooks run in order."""

    def __init__(self, parts: Sequence[Constraint]) -> None:
        self.parts = list(parts)
        self.needs_double_backward = any(p.needs_double_backward for p in self.parts)

    def attach(self, critic: nn.Module) -> nn.Module | None:
        """Each part sees the critic the previous part returned (left to right)."""
        original = critic
        for part in self.parts:
            critic = part.attach(critic) or critic
        return None if critic is original else critic

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor | None:
        terms = [t for t in (p.penalty(critic, batch) for p in self.parts) if t is not None]
        if not terms:
            return None
        return torch.stack(terms).sum() if len(terms) > 1 else terms[0]

    def after_critic_step(self, critic: nn.Module) -> None:
        for part in self.parts:
            part.after_critic_step(critic)


# --- helpers shared by the penalty families -------------------------------------------


def non_negative(name: str, value: float) -> float:
    """``value`` if it is >= 0 (NaN fails too); registry.build turns the error into one line."""
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value:g}")
    return value


def has_penalty(constraint: Constraint) -> bool:
    """Whether ``constraint`` (or a part of a chain) overrides ``penalty``."""
    parts = constraint.parts if isinstance(constraint, Chain) else [constraint]
    return any(type(p).penalty is not Constraint.penalty for p in parts)


def random_source(
    generator: torch.Generator | BatchRandom | None, device: torch.device | str
) -> BatchRandom:
    """The per-sample randomness of a penalty computed outside the engine.

    A ``BatchRandom`` is used as it is (the engine's, sharded across processes); a
    ``torch.Generator`` draws on its own device; ``None`` draws from torch's global RNG
    for ``device`` (the one ``torch.manual_seed`` seeds). Results land on ``device``.
    """
    if isinstance(generator, BatchRandom):
        return generator
    device = torch.device(device)
    if generator is None:
        generator = torch.default_generator
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            generator = torch.cuda.default_generators[index]
    return BatchRandom(generator, device=str(device))


def interpolate(real: Tensor, fake: Tensor, rand: BatchRandom) -> Tensor:
    """eps * real + (1 - eps) * fake with one eps ~ U[0, 1] per sample, any sample shape."""
    eps = rand.uniform(real.shape[0], *([1] * (real.dim() - 1))).to(real.dtype)
    return torch.lerp(fake, real, eps)


def input_gradient(
    critic: nn.Module,
    x: Tensor,
    create_graph: bool = True,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Tensor, Tensor]:
    """(D(x), dD/dx) per sample; with ``create_graph`` the gradient is differentiable.

    Under an fp16 gradient scaler the gradient is taken of the scaled float32 *mean* of
    the outputs and rescaled by n / scale after it (PyTorch's AMP recipe for gradient
    penalties), so small input gradients do not underflow. Scaling the sum instead would
    hand every fp16 output the scale itself (65536 at start, above fp16's max 65504):
    inf, then a NaN penalty. Any overflow left makes the step's gradients non-finite,
    which the scaler detects and skips.
    """
    x = x.detach().requires_grad_(True)
    out = critic(x)
    if scaler is not None and scaler.is_enabled():
        n = out.shape[0]
        scaled = scaler.scale(out.float().mean())
        (grad,) = torch.autograd.grad(scaled, x, create_graph=create_graph)
        # scale as a tensor: no host sync (get_scale() would read it back).
        scale = scaler.scale(torch.ones((), device=out.device))
        grad = grad * (n / scale).to(grad.dtype)
    else:
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=create_graph)
    return out, grad


def precise(t: Tensor) -> Tensor:
    """``t`` in float32 at least: half precision is promoted, float64 is kept."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def per_sample_squared_norm(t: Tensor) -> Tensor:
    """Squared L2 norm of each sample over all non-batch dimensions, shape (n,)."""
    return precise(t.flatten(1)).pow(2).sum(dim=1)


def per_sample_norm(t: Tensor) -> Tensor:
    """L2 norm of each sample over all non-batch dimensions, shape (n,).

    A zero vector gives norm ~1e-6 and gradient 0 rather than the NaN that
    ``sqrt(0)`` back-propagates.
    """
    return per_sample_squared_norm(t).clamp_min(1e-12).sqrt()
