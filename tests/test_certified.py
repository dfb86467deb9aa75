"""Certified (product of layer norms) and empirical (largest gradient) Lipschitz constants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipgan.certified import (
    certified_bound,
    conv_operator_norm,
    largest_gradient_norm,
    lipschitz_bounds,
)
from lipgan.constraints.gradient_normalization import GradientNormalization
from lipgan.constraints.orthogonal import Orthogonal
from lipgan.models.conv import DCGANCritic
from lipgan.models.mlp import MLPCritic
from lipgan.models.text import RESIDUAL_SCALE, ResBlock1d


def test_linear_critic_bounds_are_both_the_weight_norm() -> None:
    layer = nn.Linear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))
    critic = nn.Sequential(layer, nn.Flatten(0))
    bounds = lipschitz_bounds(critic, torch.randn(20, 3))
    assert bounds.certified == pytest.approx(3.0, rel=1e-12)
    assert bounds.empirical == pytest.approx(3.0, rel=1e-6)
    assert bounds.gap == pytest.approx(1.0, rel=1e-6)


def test_two_layer_relu_bound_is_the_product_of_spectral_norms() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.LeakyReLU(0.2), nn.Linear(6, 1))
    expected = float(torch.linalg.svdvals(critic[0].weight.detach().double())[0]) * float(
        critic[3].weight.detach().double().norm()
    )
    certified, notes = certified_bound(critic, torch.randn(2, 4))
    assert certified == pytest.approx(expected, rel=1e-12) and notes == []


@pytest.mark.parametrize("dense_limit", [4_000_000, 0], ids=["svd", "power-iteration"])
def test_conv_operator_norm_matches_the_dense_matrix_at_the_input_shape(
    monkeypatch, dense_limit
) -> None:
    monkeypatch.setattr("lipgan.certified.DENSE_LIMIT", dense_limit)
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 4, stride=2, padding=1)
    shape = (2, 6, 6)
    # The conv's matrix: its response (without bias) to every basis image.
    basis = torch.eye(2 * 36, dtype=torch.float64).view(-1, *shape)
    dense = nn.functional.conv2d(basis, conv.weight.detach().double(), None, 2, 1).flatten(1).T
    exact = float(torch.linalg.svdvals(dense)[0])
    assert conv_operator_norm(conv, torch.Size(shape)) == pytest.approx(exact, rel=1e-6)


def test_square_orthogonal_groupsort_critic_is_tight() -> None:
    torch.manual_seed(0)
    critic = MLPCritic((16,), 16, 3, "none")
    Orthogonal().attach(critic)
    bounds = lipschitz_bounds(critic, torch.randn(64, 16))
    assert bounds.certified == pytest.approx(1.0, abs=1e-5)
    assert bounds.empirical == pytest.approx(1.0, abs=1e-5)


def test_residual_block_counts_one_plus_scale_times_its_branch() -> None:
    torch.manual_seed(0)
    block = ResBlock1d(4)
    convs = [m for m in block.net if isinstance(m, nn.Conv1d)]
    example = torch.randn(1, 4, 9)
    branch = conv_operator_norm(convs[0], example.shape[1:])
    branch *= conv_operator_norm(convs[1], example.shape[1:])
    certified, _ = certified_bound(block, example)
    assert certified == pytest.approx(1 + RESIDUAL_SCALE * branch, rel=1e-9)


def test_upper_bound_is_above_the_lower_bound_on_a_trained_looking_conv_critic() -> None:
    torch.manual_seed(0)
    critic = DCGANCritic(1, 8, 8, "none")
    bounds = lipschitz_bounds(critic, torch.randn(64, 1, 8, 8))
    assert bounds.certified is not None and bounds.certified >= bounds.empirical > 0


def test_hill_climb_finds_a_steeper_point_than_the_samples() -> None:
    """D(x) = ||x||^3 / 3: ||grad|| = ||x||^2 grows away from the samples at the origin."""

    class Cubic(nn.Module):
        def forward(self, x):
            return x.norm(dim=1).pow(3) / 3

    points = 0.1 * torch.randn(16, 2)
    on_samples = float(points.norm(dim=1).pow(2).max())
    assert largest_gradient_norm(Cubic(), points) > 1.5 * on_samples


def test_layers_without_a_bound_say_why() -> None:
    gn = GradientNormalization().attach(MLPCritic((2,), 8, 2, "none"))
    certified, notes = certified_bound(gn, torch.randn(2, 2))
    assert certified is None
    assert notes == ["a GradientNormalizedCritic has no global Lipschitz bound"]
    certified, notes = certified_bound(nn.Sequential(nn.Linear(2, 2), nn.ELU()), torch.randn(2, 2))
    assert certified is None and notes == ["no bound for a ELU layer"]
    certified, notes = certified_bound(MLPCritic((2,), 8, 2, "layer"), torch.randn(2, 2))
    assert certified is not None and certified > 100
    assert notes and "LayerNorm: only the trivial bound" in notes[0]
