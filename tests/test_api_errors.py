"""The library API never returns a silently wrong penalty (issue 21).

Each case of the issue's table, on a critic whose penalty is known in closed form: the
linear critic D(x) = w.x + b of test_api.py, restated here (||w|| = 13, real - fake along w, so gp
and fd are lambda (13 - 1)^2 and r1 is (gamma / 2) 13^2). What lipgan cannot compute
correctly is an error whose type is the one Python callers expect (ValueError,
TypeError, RuntimeError) and whose message names the argument and the fix.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.testing import assert_close

import lipgan
from lipgan import constraints
from lipgan.constraints import registry
from lipgan.errors import ArgumentError, ArgumentTypeError, ConfigError, UsageError

W = torch.tensor([3.0, 4.0, 12.0])  # ||w|| = 13
NORM = 13.0
WEIGHT = 0.5
GP = WEIGHT * (NORM - 1) ** 2  # 72: gp and fd on the linear critic
R1 = 0.5 * WEIGHT * NORM**2  # 42.25


def linear_critic() -> nn.Module:
    """D(x) = w.x + 0.3, scores of shape (n,)."""
    layer = nn.Linear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(W.view(1, -1))
        layer.bias.fill_(0.3)
    return nn.Sequential(layer, nn.Flatten(0))


def points(n: int = 64) -> tuple[Tensor, Tensor]:
    """Real along w from fake: the finite difference equals ||w|| exactly."""
    g = torch.Generator().manual_seed(0)
    fake = torch.randn(n, 3, generator=g)
    return fake + (torch.rand(n, 1, generator=g) + 0.5) * W / NORM, fake


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Columns(nn.Module):
    """D(x) = w.x + b in ``k`` identical columns: shape (n, k), or (n, 1) for k = 1."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.layer = nn.Linear(3, k)
        with torch.no_grad():
            self.layer.weight.copy_(W.expand(k, 3))
            self.layer.bias.fill_(0.3)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class BatchMean(nn.Module):
    """The mistake of returning the loss's mean instead of the scores: shape ()."""

    def __init__(self) -> None:
        super().__init__()
        self.critic = linear_critic()

    def forward(self, x: Tensor) -> Tensor:
        return self.critic(x).mean()


# --- critic scores: (n,), (n, 1) squeezed, anything else refused ------------------------


def test_an_n_by_1_critic_gives_the_closed_form_in_fd_and_penalty_on():
    # Before: 0.0812-like values, the (n, 1) scores broadcast against (n,) terms.
    critic, (real, fake) = Columns(1), points()
    expected = torch.tensor(GP)
    assert critic(real).shape == (64, 1)
    fd = lipgan.finite_difference_penalty(critic, real, fake, weight=WEIGHT, generator=seeded(1))
    assert_close(fd, expected, rtol=1e-5, atol=0)
    strategy = constraints.build("fd", weight=WEIGHT)
    given = strategy.penalty_on(
        critic, real, fake, critic_real=critic(real), critic_fake=critic(fake), generator=seeded(1)
    )
    assert_close(given, expected, rtol=1e-5, atol=0)
    # Exactly the (n,) critic's value, draw for draw.
    flat = lipgan.finite_difference_penalty(
        linear_critic(), real, fake, weight=WEIGHT, generator=seeded(1)
    )
    assert torch.equal(fd, flat)
    for name in ("gp", "r1", "alr", "dragan"):
        strategy = constraints.build(name)
        squeezed = strategy.penalty_on(critic, real, fake, generator=seeded(2))
        assert torch.equal(
            squeezed, strategy.penalty_on(linear_critic(), real, fake, generator=seeded(2))
        )


@pytest.mark.parametrize(
    ("call", "shape"),
    [
        (lambda d, r, f: lipgan.gradient_penalty(d, r, f, weight=WEIGHT), "()"),
        (lambda d, r, f: lipgan.finite_difference_penalty(d, r, f, weight=WEIGHT), "()"),
        (lambda d, r, f: lipgan.r1_penalty(d, r, weight=WEIGHT), "()"),
        (lambda d, r, f: constraints.build("fd").penalty_on(d, r, f), "()"),
        (lambda d, r, f: constraints.build("alr").penalty_on(d, r, f), "()"),
    ],
    ids=["gp", "fd", "r1", "fd-penalty_on", "alr-penalty_on"],
)
def test_a_scalar_critic_is_refused_naming_the_shapes(call, shape):
    # Before: gp 0.0944, fd 0.0209, r1 0.0004 (the gradient of a mean is w / n).
    real, fake = points()
    with pytest.raises(ArgumentError) as err:
        call(BatchMean(), real, fake)
    message = str(err.value)
    assert (
        f"has shape {shape} (a scalar: return the scores, not their mean) for 64 samples" in message
    )
    assert "expected (64,), one score per sample" in message
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("name", ["gp", "r1", "gp-zero-centred", "dragan", "wgan-div", "fd", "alr"])
def test_an_n_by_2_critic_is_refused_naming_the_shapes(name):
    # Before: gp 0.679 against 0.0644, r1 6.5 against 1.625 (the gradient of two columns).
    real, fake = points()
    with pytest.raises(
        ArgumentError, match=r"has shape \(64, 2\) for 64 samples; expected \(64,\)"
    ):
        constraints.build(name).penalty_on(Columns(2), real, fake)
    with pytest.raises(ArgumentError, match=r"critic_real has shape \(64, 2\)"):
        constraints.build(name).penalty_on(
            linear_critic(), real, fake, critic_real=Columns(2)(real), critic_fake=Columns(2)(fake)
        )


def test_the_gn_wrapper_squeezes_and_refuses_like_the_penalties():
    # f_hat = f / (||grad f|| + |f|) per sample: an (n, 1) f would broadcast into (n, n).
    real, _ = points()
    wrapped = constraints.build("gn").attach(Columns(1))
    f = linear_critic()(real).detach()
    assert_close(wrapped(real).detach(), f / (NORM + f.abs()), rtol=1e-6, atol=0)
    with pytest.raises(ArgumentError, match=r"has shape \(64, 2\)"):
        constraints.build("gn").attach(Columns(2))(real)


# --- string options: a typo lists the valid values --------------------------------------


def test_a_family_typo_lists_the_families():
    # Before: build("gp", family="point") silently gave lambda 10 (the images default).
    with pytest.raises(
        ArgumentError, match=r"^unknown data family 'point'; valid: points, images, text$"
    ):
        constraints.build("gp", family="point")
    assert constraints.build("gp", family="points").weight == 0.1
    for call in (
        lambda: registry.resolve_params("gp", "image"),
        lambda: constraints.get("gp").defaults_for("Points"),
        lambda: registry.ADAM.for_family("txt"),
        lambda: registry.ADAM.schedule_for("point"),
    ):
        with pytest.raises(
            ArgumentError, match="unknown data family .*; valid: points, images, text"
        ):
            call()


def test_a_plugin_registration_typo_is_refused_where_it_is_written():
    with pytest.raises(ArgumentError, match="unknown data family 'point'"):
        constraints.register("typo-strategy", description="x", family_params={"point": {}})
    with pytest.raises(ArgumentError, match="^unknown optimizer 'adamw'; valid: adam, rmsprop$"):
        registry.OptimizerDefaults("adamw", 1e-4)
    with pytest.raises(ArgumentError, match="unknown data family 'image'"):
        registry.OptimizerDefaults("adam", 1e-4, by_family=(("image", 1e-3, (0.5, 0.9)),))
    assert "typo-strategy" not in constraints.names()


def test_other_option_types_are_refused_naming_them():
    real, fake = points()
    critic = linear_critic()
    with pytest.raises(ArgumentTypeError, match="one_sided must be True or False, got 'no'"):
        lipgan.gradient_penalty(critic, real, fake, one_sided="no")
    with pytest.raises(
        ArgumentTypeError,
        match=r"generator must be a torch.Generator, a BatchRandom or None, got int 0",
    ):
        lipgan.gradient_penalty(critic, real, fake, generator=0)
    with pytest.raises(ArgumentTypeError, match="constraint spec must be a string"):
        constraints.build(["gp"])
    with pytest.raises(ArgumentTypeError, match="scaler must be a torch.amp.GradScaler or None"):
        lipgan.r1_penalty(critic, real, scaler="fp16")


# --- grad mode, dtypes, devices, integers, non-tensors, weights --------------------------

EVERY_PENALTY = {
    "gradient_penalty": lambda d, r, f: lipgan.gradient_penalty(d, r, f),
    "finite_difference_penalty": lambda d, r, f: lipgan.finite_difference_penalty(d, r, f),
    "r1_penalty": lambda d, r, f: lipgan.r1_penalty(d, r),
    "r2_penalty": lambda d, r, f: lipgan.r2_penalty(d, f),
    "zero_centred_gradient_penalty": lambda d, r, f: lipgan.zero_centred_gradient_penalty(d, r, f),
    "dragan_penalty": lambda d, r, f: lipgan.dragan_penalty(d, r),
    "wgan_div_penalty": lambda d, r, f: lipgan.wgan_div_penalty(d, r, f),
    "penalty_on": lambda d, r, f: constraints.build("alr").penalty_on(d, r, f),
}


@pytest.mark.parametrize("name", sorted(EVERY_PENALTY))
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_every_penalty_refuses_grad_mode_off(name, mode):
    # Before: fd returned a value with no graph, a penalty that trains nothing.
    real, fake = points()
    with getattr(torch, mode)(), pytest.raises(UsageError) as err:
        EVERY_PENALTY[name](linear_critic(), real, fake)
    assert str(err.value).startswith(f"{name} was called with grad mode off")
    assert isinstance(err.value, RuntimeError)


@pytest.mark.parametrize("name", sorted(EVERY_PENALTY))
def test_every_penalty_names_a_bad_sample_argument(name):
    call, critic = EVERY_PENALTY[name], linear_critic()
    real, fake = points()
    uses_fake = name not in ("r1_penalty", "dragan_penalty")
    bad = "fake" if name == "r2_penalty" else "real"
    args = {"real": real, "fake": fake}

    def run(**changes):
        both = {**args, **changes}
        return call(critic, both["real"], both["fake"])

    with pytest.raises(ArgumentTypeError, match=f"{bad} must be a torch.Tensor, got ndarray"):
        run(**{bad: args[bad].numpy()})
    with pytest.raises(ArgumentError, match=f"{bad} is torch.int64, but penalties need floating"):
        run(**{bad: args[bad].long()})
    with pytest.raises(
        ArgumentError,
        match=rf"the critic's parameters are torch.float32 but {bad} is torch.float64",
    ):
        run(real=real.double(), fake=fake.double())
    if uses_fake and name != "r2_penalty":
        with pytest.raises(ArgumentError, match="real is torch.float32 but fake is torch.float64"):
            run(fake=fake.double())
        with pytest.raises(ArgumentError, match="real is on cpu but fake is on meta"):
            run(fake=fake.to("meta"))
        with pytest.raises(ArgumentError, match=r"real has shape \(64, 3\) but fake \(1, 3\)"):
            run(fake=fake[:1])  # would broadcast one fake against every real


def test_a_critic_on_another_device_is_named():
    real, fake = points()
    with pytest.raises(
        ArgumentError, match="the critic's parameters are on meta but real is on cpu"
    ):
        lipgan.gradient_penalty(linear_critic().to("meta"), real, fake)


@pytest.mark.parametrize("weight", ["0.1", None, True, torch.tensor([0.1, 0.2])])
def test_a_weight_that_is_not_a_number_is_named(weight):
    real, fake = points()
    with pytest.raises(ArgumentTypeError, match="^weight must be a number, got "):
        lipgan.gradient_penalty(linear_critic(), real, fake, weight=weight)
    if weight is not None:  # build's weight=None means "not given"
        with pytest.raises(ArgumentTypeError, match="^constraint 'gp': weight must be a number"):
            constraints.build("gp", weight=weight)
    with pytest.raises(ArgumentTypeError, match="c must be a number"):
        lipgan.clip_weights(linear_critic(), weight)


def test_argument_errors_are_the_types_python_callers_expect():
    assert issubclass(ArgumentError, ValueError) and issubclass(ArgumentError, ConfigError)
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ConfigError)
    assert issubclass(UsageError, RuntimeError)
    with pytest.raises(ValueError, match="unknown constraint 'gpp'"):
        constraints.build("gpp")
    with pytest.raises(ValueError, match="weight must be >= 0, got -1"):
        lipgan.gradient_penalty(linear_critic(), *points(), weight=-1.0)


# --- strategies that must be attached -----------------------------------------------------


@pytest.mark.parametrize("name", ["sn", "orthogonal", "gn", "sn+gp"])
def test_an_unattached_strategy_refuses_its_hooks(name):
    # Before: sn's hooks ran on a plain critic; its layer sigmas drifted to 4.8 and 7.1.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    strategy = constraints.build(name)
    for hook in (
        lambda: strategy.penalty_on(critic, real, fake),
        lambda: strategy.after_critic_step(critic),
    ):
        with pytest.raises(
            UsageError,
            match="the strategy was never attached, so the critic is unconstrained; call critic = ",
        ):
            hook()
    attached = strategy.attach(critic)
    strategy.after_critic_step(attached)
    assert strategy.penalty_on(attached, real, fake).shape == ()


def test_gn_with_attachs_return_value_dropped_is_refused():
    # Before: the unwrapped critic trained unconstrained and penalty_on returned 0.
    critic, (real, fake) = linear_critic(), points()
    strategy = constraints.build("gn")
    wrapped = strategy.attach(critic)
    assert wrapped is not critic
    for hook in (
        lambda: strategy.penalty_on(critic, real, fake),
        lambda: strategy.after_critic_step(critic),
    ):
        with pytest.raises(
            UsageError, match="was given a critic other than the one attach returned"
        ):
            hook()
    strategy.after_critic_step(wrapped)
    # The wrapper is what constrains: |grad f_hat| = 13 b' / (13 + |f|)^2 <= 1 here.
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(wrapped(x).sum(), x)
    f = critic(real).detach()
    assert_close(grad.norm(dim=1), NORM * NORM / (NORM + f.abs()) ** 2, rtol=1e-5, atol=0)


@pytest.mark.parametrize("name", ["sn", "orthogonal", "gn", "sn+gp"])
def test_a_second_critic_is_refused_before_it_is_changed(name):
    first = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    second = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    before = {k: v.clone() for k, v in second.state_dict().items()}
    strategy = constraints.build(name)
    assert strategy.attach(first) is not None
    with pytest.raises(
        UsageError, match="is already attached to a critic.*build one strategy per critic"
    ):
        strategy.attach(second)
    assert not parametrize.is_parametrized(second[0]) and isinstance(second[1], nn.ReLU)
    assert all(torch.equal(v, before[k]) for k, v in second.state_dict().items())


def test_attach_returns_the_critic_to_use_for_every_builtin():
    for name in constraints.names():
        if name in ("orthogonal",):
            critic = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        else:
            critic = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
        returned = constraints.build(name).attach(critic)
        assert returned is critic or (name == "gn" and returned.critic is critic), name


def test_a_chain_runs_every_parts_hooks_on_its_final_critic():
    # sn changes the critic in place, gn wraps it: sn's hooks then see the wrapper.
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    chain = constraints.build("sn+gn")
    wrapped = chain.attach(critic)
    assert wrapped.critic is critic and parametrize.is_parametrized(critic[0])
    chain.after_critic_step(wrapped)
    with pytest.raises(
        UsageError, match="SpectralNormalization.after_critic_step was given a critic other"
    ):
        chain.parts[0].after_critic_step(critic)
    real = torch.randn(8, 2)
    assert math.isfinite(float(chain.penalty_on(wrapped, real, real.flip(0))))
