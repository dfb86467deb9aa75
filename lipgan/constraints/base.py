"""The strategy interface and the helpers every penalty shares.

A Lipschitz strategy is a small object with three hooks, all optional:

- ``attach(critic)``: once, before the optimiser is built; returns the critic to use from
  then on. It may change the critic in place (reparametrise its layers: sn) and return
  it, or return a *replacement*: a wrapper around the critic's forward (gradient
  normalisation). Older plugins may return None for "in place"; the engine accepts that;
- ``penalty(critic, batch)``: a scalar added to the critic loss, or ``None``;
- ``after_critic_step(critic)``: after every critic optimiser step (e.g. clip weights).

``Constraint`` itself is the "do nothing" strategy. ``Chain`` composes several.
``BatchRandom`` lives in ``lipgan.batch_random``; it is re-exported here for old imports.

The checks below turn every silently wrong penalty of the library API into a one-line
error: critic scores must have shape (n,) ((n, 1) is squeezed: the penalty of an
(n, 1) critic is then exactly that of the (n,) one), inputs must be floating tensors of
one dtype, device and shape, and a penalty refuses grad mode off. They are shape and
type comparisons on the host, never a device read, so they cost the engine's step
nothing measurable (docs/performance.md, "Argument checks").
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom
from lipgan.errors import ArgumentError, ArgumentTypeError, UsageError


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

    def __post_init__(self) -> None:
        # Scores of shape (n, 1) would broadcast against (n,) terms into (n, n) ones.
        self.critic_real = scores_of(self.critic_real, self.real.shape[0], "critic_real")
        self.critic_fake = scores_of(self.critic_fake, self.fake.shape[0], "critic_fake")


class Constraint:
    """The do-nothing strategy; other strategies override the hooks they need."""

    needs_double_backward: bool = False
    """True when the penalty back-propagates through an input gradient."""
    requires_attach: bool = False
    """True when the hooks work only on the critic ``attach`` returned (sn, orthogonal,
    gn): ``penalty_on`` and ``after_critic_step`` then refuse any other critic, and the
    strategy belongs to one critic (a second ``attach`` is refused)."""
    attached_critic: nn.Module | None = None
    """The critic ``attach`` returned, recorded by ``attaches_critic`` (or the chain's)."""

    def attach(self, critic: nn.Module) -> nn.Module | None:
        """Called once with the critic before its optimiser is built.

        Return the critic to use from then on: ``critic`` itself (changed in place or
        not), or a module that replaces it everywhere: training, penalties, measurements
        and checkpoints. (None, for "in place", is still accepted from older plugins.)
        """
        return critic

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor | None:
        """A scalar added to the critic loss (already weighted), or None."""
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        """Called after every critic optimiser step."""
        if self.requires_attach:
            self.check_attached(critic, "after_critic_step")

    def check_attached(self, critic: nn.Module, hook: str) -> None:
        """Refuse to run ``hook`` on a critic other than the one ``attach`` returned."""
        if critic is self.attached_critic:
            return
        name = type(self).__name__
        if self.attached_critic is None:
            raise UsageError(
                f"{name}.{hook}: the strategy was never attached, so the critic is "
                "unconstrained; call critic = strategy.attach(critic) once, before "
                "building the critic's optimiser"
            )
        raise UsageError(
            f"{name}.{hook} was given a critic other than the one attach returned (the "
            "return value dropped, or another critic); use critic = strategy.attach(critic) "
            "and pass that critic everywhere"
        )

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
        if self.requires_attach:
            self.check_attached(critic, "penalty_on")
        check_samples("penalty_on", real, fake)
        if not has_penalty(self):
            return real.new_zeros(())
        check_penalty_call("penalty_on", critic, real, scaler)
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
        self.requires_attach = any(p.requires_attach for p in self.parts)

    def attach(self, critic: nn.Module) -> nn.Module:
        """Each part sees the critic the previous part returned (left to right); every
        part's hooks then run on the chain's final critic."""
        if self.requires_attach and self.attached_critic is not None:
            raise_attached_twice(self)
        for part in self.parts:
            critic = part.attach(critic) or critic
        for part in self.parts:
            if part.requires_attach:
                part.attached_critic = critic
        if self.requires_attach:
            self.attached_critic = critic
        return critic

    def penalty(self, critic: nn.Module, batch: CriticBatch) -> Tensor | None:
        terms = [t for t in (p.penalty(critic, batch) for p in self.parts) if t is not None]
        if not terms:
            return None
        return torch.stack(terms).sum() if len(terms) > 1 else terms[0]

    def after_critic_step(self, critic: nn.Module) -> None:
        for part in self.parts:
            part.after_critic_step(critic)


C = TypeVar("C", bound=Constraint)


def attaches_critic(
    attach: Callable[[C, nn.Module], nn.Module | None],
) -> Callable[[C, nn.Module], nn.Module]:
    """Decorator for the ``attach`` of a strategy with ``requires_attach``.

    A second attach is refused before anything is changed (the strategy's hooks belong
    to one critic: build one strategy per critic); the critic attach returns (``critic``
    itself when changed in place) is returned and recorded for ``check_attached``.
    """

    @functools.wraps(attach)
    def attach_once(self: C, critic: nn.Module) -> nn.Module:
        if self.attached_critic is not None:
            raise_attached_twice(self)
        result = attach(self, critic) or critic
        self.attached_critic = result
        return result

    return attach_once


def raise_attached_twice(strategy: Constraint) -> None:
    raise UsageError(
        f"{type(strategy).__name__} is already attached to a critic, and its hooks work on "
        "that one only; build one strategy per critic (lipgan.constraints.build(...))"
    )


# --- helpers shared by the penalty families -------------------------------------------


def check_number(name: str, value: object) -> float:
    """``value`` if it is a real number (not a bool, a str or a tensor): a typed error
    naming ``name`` otherwise, before arithmetic would fail or broadcast with it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"{name} must be a number, got {type(value).__name__} {value!r}; pass a float"
        )
    return value  # type: ignore[return-value]


def non_negative(name: str, value: float) -> float:
    """``value`` if it is a number >= 0 (NaN fails too); registry.build makes it one line."""
    if not check_number(name, value) >= 0:
        raise ArgumentError(f"{name} must be >= 0, got {value:g}")
    return value


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool: ``one_sided="no"`` would otherwise be truthy."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_samples(
    caller: str, real: object, fake: object | None = None, name: str = "real"
) -> None:
    """Real (and fake) are floating tensors with samples; fake matches real's dtype,
    device and shape (a mismatch would cast, fail inside torch, or broadcast). ``name``
    is what the caller calls its first argument (r2 penalises ``fake``)."""
    _check_sample_tensor(caller, name, real)
    if fake is None:
        return
    _check_sample_tensor(caller, "fake", fake)
    assert isinstance(real, Tensor) and isinstance(fake, Tensor)
    if fake.dtype != real.dtype:
        raise ArgumentError(
            f"{caller}: real is {real.dtype} but fake is {fake.dtype}; convert one, "
            "e.g. fake.to(real.dtype)"
        )
    if fake.device != real.device:
        raise ArgumentError(
            f"{caller}: real is on {real.device} but fake is on {fake.device}; move one, "
            "e.g. fake.to(real.device)"
        )
    if fake.shape != real.shape:
        raise ArgumentError(
            f"{caller}: real has shape {tuple(real.shape)} but fake {tuple(fake.shape)}; "
            "pass real and fake batches of the same shape"
        )


def _check_sample_tensor(caller: str, name: str, x: object) -> None:
    if not isinstance(x, Tensor):
        raise ArgumentTypeError(
            f"{caller}: {name} must be a torch.Tensor, got {type(x).__name__}; convert it "
            f"with torch.as_tensor({name}, dtype=torch.float32)"
        )
    if not x.is_floating_point():
        raise ArgumentError(
            f"{caller}: {name} is {x.dtype}, but penalties need floating-point samples "
            f"(interpolation weights would round to 0); pass {name}.float()"
        )
    if x.dim() == 0 or x.shape[0] == 0:
        raise ArgumentError(
            f"{caller}: {name} has shape {tuple(x.shape)}; pass a batch of shape (n, ...) "
            "with n >= 1"
        )


def check_penalty_call(
    caller: str,
    critic: object,
    real: Tensor,
    scaler: torch.amp.GradScaler | None = None,
    name: str = "real",
) -> None:
    """The call can build a penalty with a graph: grad mode on, a critic on ``real``'s
    device and (outside autocast) of its dtype, a GradScaler or None."""
    if not torch.is_grad_enabled():
        raise UsageError(
            f"{caller} was called with grad mode off (inside torch.no_grad() or "
            "torch.inference_mode()): the penalty would have no graph and train nothing; "
            "compute it where the critic loss is built, outside no_grad"
        )
    if not callable(critic):
        raise ArgumentTypeError(
            f"{caller}: critic must be an nn.Module mapping (n, ...) to (n,) scores, "
            f"got {type(critic).__name__}"
        )
    if scaler is not None and not isinstance(scaler, torch.amp.GradScaler):
        raise ArgumentTypeError(
            f"{caller}: scaler must be a torch.amp.GradScaler or None, got {type(scaler).__name__}"
        )
    weight = next(critic.parameters(), None) if isinstance(critic, nn.Module) else None
    if weight is None or not weight.is_floating_point():
        return
    if weight.device != real.device:
        raise ArgumentError(
            f"{caller}: the critic's parameters are on {weight.device} but {name} is on "
            f"{real.device}; move the critic or the samples to one device"
        )
    # Under autocast the critic's layers cast their inputs: differing dtypes are normal.
    if weight.dtype != real.dtype and not torch.is_autocast_enabled(real.device.type):
        raise ArgumentError(
            f"{caller}: the critic's parameters are {weight.dtype} but {name} is "
            f"{real.dtype}; convert one, e.g. {name}.to({weight.dtype}) or "
            f"critic.to({real.dtype})"
        )


def scores_of(scores: object, n: int, what: str) -> Tensor:
    """``scores`` as shape (n,); (n, 1) is squeezed (same penalty); any other shape is an
    error. A shape comparison on the host: no device sync, nothing measurable per step."""
    if isinstance(scores, Tensor):
        if scores.shape == (n,):
            return scores
        if scores.shape == (n, 1):
            return scores.squeeze(1)
        got = tuple(scores.shape)
        hint = " (a scalar: return the scores, not their mean)" if not got else ""
        raise ArgumentError(
            f"{what} has shape {got}{hint} for {n} samples; expected ({n},), one score per "
            f"sample (({n}, 1) is accepted and squeezed); end the critic in e.g. nn.Flatten(0)"
        )
    raise ArgumentTypeError(f"{what} must be a tensor of shape ({n},), got {type(scores).__name__}")


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
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ArgumentTypeError(
            f"generator must be a torch.Generator, a BatchRandom or None, got "
            f"{type(generator).__name__} {generator!r}; e.g. torch.Generator().manual_seed(0)"
        )
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
    out = scores_of(critic(x), x.shape[0], "the critic's output")
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
