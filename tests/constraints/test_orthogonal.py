"""orthogonal: orthonormal weights and GroupSort make the critic Lipschitz by construction.

Closed forms: every rebuilt layer's (reshaped, rescaled) weight has singular values 1;
a square MLP of orthonormal layers and MaxMin has input-gradient norm exactly 1; a conv
critic's convolutions have operator norm <= 1 at the actual input shape.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipgan import constraints
from lipgan.certified import certified_bound
from lipgan.constraints import input_gradient, per_sample_norm
from lipgan.constraints.orthogonal import (
    MAX_ITERATIONS,
    GroupSort,
    MaxMin,
    Orthogonal,
    bjorck,
    conv_scale,
    polar,
    tolerance_for,
)
from lipgan.errors import ConfigError
from lipgan.models.conv import DCGANCritic
from lipgan.models.mlp import MLPCritic
from lipgan.models.resnet import ResNetCritic
from lipgan.models.text import TextCritic


def singular_values(layer: nn.Module) -> torch.Tensor:
    matrix = layer.weight.detach().flatten(1).double() / conv_scale(layer)
    return torch.linalg.svdvals(matrix)


def layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d)]


def train_a_little(critic: nn.Module, strategy: Orthogonal, shape: tuple[int, ...]) -> None:
    """A few Adam steps on a random objective, each followed by the Björck projection."""
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(16, *shape, generator=g)
        opt.zero_grad()
        (critic(x) ** 2).mean().backward()
        opt.step()
        strategy.after_critic_step(critic)


@pytest.mark.parametrize(
    ("critic", "shape"),
    [
        (MLPCritic((2,), 32, 3, "none"), (2,)),
        (DCGANCritic(1, 8, 8, "none"), (1, 8, 8)),
        (TextCritic(8, 6, 8, "none"), (8, 6)),
    ],
    ids=["mlp", "dcgan", "text"],
)
def test_every_layer_has_singular_values_one_before_and_after_training(critic, shape) -> None:
    torch.manual_seed(0)
    strategy = Orthogonal()
    assert strategy.attach(critic) is critic  # rebuilt in place
    assert not any(isinstance(m, nn.ReLU | nn.LeakyReLU) for m in critic.modules())
    assert any(isinstance(m, MaxMin) for m in critic.modules())
    for layer in layers(critic):
        torch.testing.assert_close(
            singular_values(layer), torch.ones_like(singular_values(layer)), atol=1e-5, rtol=0
        )
    train_a_little(critic, strategy, shape)
    for layer in layers(critic):
        sv = singular_values(layer)
        torch.testing.assert_close(sv, torch.ones_like(sv), atol=1e-5, rtol=0)


def test_bjorck_restores_orthonormality_after_a_perturbation() -> None:
    layer = nn.Linear(64, 64)
    Orthogonal().attach(nn.Sequential(layer))
    with torch.no_grad():
        layer.weight.add_(1e-2 * torch.randn(64, 64, generator=torch.Generator().manual_seed(0)))
    assert float((singular_values(layer) - 1).abs().max()) > 1e-3
    iterations = bjorck(layer)
    assert 1 <= iterations < 20
    torch.testing.assert_close(singular_values(layer), torch.ones(64, dtype=torch.float64),
                               atol=1e-5, rtol=0)  # fmt: skip


def test_square_mlp_has_input_gradient_norm_exactly_one() -> None:
    """Square orthogonal layers and MaxMin: the Jacobian is a product of orthogonal
    matrices and permutations, so ||grad D|| = ||last row|| = 1 almost everywhere."""
    torch.manual_seed(0)
    critic = MLPCritic((16,), 16, 3, "none")
    Orthogonal().attach(critic)
    x = torch.cat([torch.randn(200, 16), 100 * torch.randn(50, 16)])
    _, grad = input_gradient(critic, x, create_graph=False)
    torch.testing.assert_close(per_sample_norm(grad), torch.ones(250), atol=1e-5, rtol=0)


def test_toy_mlp_has_input_gradient_norm_at_most_one() -> None:
    torch.manual_seed(0)
    critic = MLPCritic((2,), 64, 3, "none")
    Orthogonal().attach(critic)
    x = torch.cat([torch.randn(500, 2), 1000 * torch.randn(100, 2)])
    _, grad = input_gradient(critic, x, create_graph=False)
    norms = per_sample_norm(grad)
    assert float(norms.max()) <= 1 + 1e-5
    # Not 1: the first layer's 2 x 64 transpose projects the gradient onto the input plane.
    assert float(norms.min()) > 0


def conv_operator_norm(conv: nn.Module, shape: tuple[int, ...], iterations: int = 300) -> float:
    """||conv|| (no bias) at input shape ``shape`` by power iteration on conv^T conv."""
    v = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weight = conv.weight.detach().double()
    forward = nn.functional.conv2d if conv.weight.dim() == 4 else nn.functional.conv1d
    value = 0.0
    for _ in range(iterations):
        v = (v / v.norm()).requires_grad_(True)
        out = forward(v, weight, None, conv.stride, conv.padding)
        value = float(out.detach().norm())
        (v,) = torch.autograd.grad(0.5 * out.pow(2).sum(), v)
    return value


def test_conv_layers_are_at_most_one_lipschitz_at_the_actual_input_shape() -> None:
    torch.manual_seed(0)
    critic = DCGANCritic(1, 8, 8, "none")
    Orthogonal().attach(critic)
    shapes = []
    hooks = [c.register_forward_hook(lambda m, i, o: shapes.append(i[0].shape[1:]))
             for c in layers(critic) if isinstance(c, nn.Conv2d)]  # fmt: skip
    x = torch.randn(300, 1, 8, 8)
    critic(x)
    for hook in hooks:
        hook.remove()
    convs = [c for c in layers(critic) if isinstance(c, nn.Conv2d)]
    norms = [conv_operator_norm(c, tuple(s)) for c, s in zip(convs, shapes, strict=True)]
    assert all(n <= 1 + 1e-6 for n in norms), norms
    assert all(n > 0.3 for n in norms), norms  # scaled by 1/3 or 1/2, not crushed
    _, grad = input_gradient(critic, torch.cat([x, 50 * x]), create_graph=False)
    assert float(per_sample_norm(grad).max()) <= 1 + 1e-5


def test_maxmin_is_a_per_sample_permutation() -> None:
    x = torch.randn(5, 6, 3, 3)
    y = MaxMin()(x)
    torch.testing.assert_close(y.flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values)
    a, b = x.chunk(2, dim=1)
    torch.testing.assert_close(y[:, :3], torch.maximum(a, b))


@pytest.mark.parametrize(
    ("critic", "words"),
    [
        (ResNetCritic(1, 8, 8, "none"), "cannot rebuild a ResNetCritic"),
        (MLPCritic((2,), 16, 2, "layer"), "LayerNorm in the critic is not 1-Lipschitz"),
        (MLPCritic((2,), 15, 2, "none"), "has 15 outputs, not a multiple of"),
    ],
)
def test_critics_it_cannot_rebuild_are_refused(critic, words) -> None:
    with pytest.raises(ConfigError, match=words):
        Orthogonal().attach(critic)


@pytest.mark.parametrize("step", [1e-3, 1e-2])
@pytest.mark.parametrize("shape", [(512, 512), (512, 2)], ids=["square", "first-layer"])
def test_bjorck_keeps_real_widths_orthonormal_after_every_large_step(step, shape) -> None:
    """Adam's early steps move every entry by about lr: +-step on a 512-wide layer puts
    sigma_max far above sqrt(3) at 1e-2, where unscaled Björck diverges."""
    layer = nn.Linear(shape[1], shape[0])
    polar(layer)
    g = torch.Generator().manual_seed(0)
    tolerance = tolerance_for(layer.weight)
    for _ in range(3):
        with torch.no_grad():
            layer.weight.add_(step * torch.randn(shape, generator=g).sign())
        iterations = bjorck(layer)
        assert 1 <= iterations < MAX_ITERATIONS  # converged, not capped
        sv = singular_values(layer)
        torch.testing.assert_close(sv, torch.ones_like(sv), atol=tolerance, rtol=0)


def test_group_sort_sorts_each_group_and_zero_sorts_all_channels() -> None:
    x = torch.randn(5, 8, 3)
    grouped = GroupSort(4)(x)
    expected = x.view(5, 2, 4, 3).sort(dim=2, descending=True).values.view(5, 8, 3)
    torch.testing.assert_close(grouped, expected, atol=0, rtol=0)
    full = GroupSort(0)(x)
    torch.testing.assert_close(full, x.sort(dim=1, descending=True).values, atol=0, rtol=0)


@pytest.mark.parametrize("group_size", [2, 4, 0], ids=["maxmin", "groups-of-4", "fullsort"])
def test_every_group_size_keeps_bound_one_and_square_gradient_norm_one(group_size) -> None:
    """Closed forms: each layer's exact spectral norm is 1 and GroupSort is a permutation,
    so the certified bound is 1; with square layers ||grad D|| = 1 almost everywhere."""
    torch.manual_seed(0)
    critic = MLPCritic((16,), 16, 3, "none")
    strategy = Orthogonal(group_size=group_size, bias_scale=0.0)
    strategy.attach(critic)
    kind = MaxMin if group_size == 2 else GroupSort
    assert sum(isinstance(m, kind) for m in critic.modules()) == 3
    train_a_little(critic, strategy, (16,))
    x = torch.cat([torch.randn(200, 16), 100 * torch.randn(50, 16)])
    bound, _ = certified_bound(critic, x)
    assert bound == pytest.approx(1.0, abs=1e-5)
    _, grad = input_gradient(critic, x, create_graph=False)
    torch.testing.assert_close(per_sample_norm(grad), torch.ones(250), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bias_scale", [0.0, 0.25, 1.0])
def test_attach_leaves_the_chosen_bias_init(bias_scale) -> None:
    torch.manual_seed(3)
    fresh = MLPCritic((2,), 16, 3, "none")
    torch.manual_seed(3)
    critic = MLPCritic((2,), 16, 3, "none")
    constraints.build("orthogonal", {"orthogonal": {"bias_scale": bias_scale}}).attach(critic)
    pairs = list(zip(layers(fresh), layers(critic), strict=True))
    assert len(pairs) == 4
    for before, after in pairs:
        torch.testing.assert_close(after.bias, bias_scale * before.bias, atol=0, rtol=0)


def test_group_size_is_a_typed_strategy_parameter() -> None:
    strategy = constraints.build("orthogonal", {"orthogonal": {"group_size": 4.0}})
    assert strategy.group_size == 4 and isinstance(strategy.group_size, int)
    with pytest.raises(ConfigError, match="group_size must be 0 .* or >= 2, got 1"):
        constraints.build("orthogonal", {"orthogonal": {"group_size": 1.0}})
    with pytest.raises(ConfigError, match="12 outputs, not a multiple of orthogonal.group_size 8"):
        Orthogonal(group_size=8).attach(MLPCritic((2,), 12, 2, "none"))


def test_points_default_to_fullsort_with_pytorch_biases_images_keep_maxmin() -> None:
    points = constraints.build("orthogonal", constraints.resolve_params("orthogonal", "points"))
    torch.manual_seed(5)
    fresh = MLPCritic((2,), 16, 3, "none")
    torch.manual_seed(5)
    critic = MLPCritic((2,), 16, 3, "none")
    points.attach(critic)
    sorts = [m for m in critic.modules() if isinstance(m, GroupSort)]
    assert len(sorts) == 3 and all(m.group_size == 0 for m in sorts)
    for before, after in zip(layers(fresh), layers(critic), strict=True):
        torch.testing.assert_close(after.bias, before.bias, atol=0, rtol=0)
    images = constraints.build("orthogonal", constraints.resolve_params("orthogonal", "images"))
    assert (images.group_size, images.bias_scale) == (2, 1.0)
