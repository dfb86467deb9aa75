"""Spectral normalisation: every normalised weight has top singular value 1."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from lipgan import constraints as registry
from lipgan import runs
from lipgan.constraints import input_gradient, per_sample_norm
from lipgan.constraints.spectral_norm import SpectralNormalization
from lipgan.errors import ConfigError
from lipgan.models.mlp import MLPCritic

from runkit import train_run


def normalised_layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def warm_up(critic: nn.Module, x: torch.Tensor, passes: int) -> None:
    """Forward passes in train mode: each runs the power iteration once per layer."""
    critic.train()
    with torch.no_grad():
        for _ in range(passes):
            critic(x)


def test_mlp_weights_have_unit_spectral_norm_after_a_few_passes() -> None:
    torch.manual_seed(0)
    critic = MLPCritic((2,), hidden=32, layers=3, norm="none")
    raw = [m.weight.detach().clone() for m in normalised_layers(critic)]
    SpectralNormalization().attach(critic)
    warm_up(critic, torch.randn(8, 2), passes=30)
    layers = normalised_layers(critic)
    assert len(layers) == 4
    for layer, weight in zip(layers, raw, strict=True):
        effective = layer.weight  # W / sigma, recomputed by the parametrisation
        sigma = torch.linalg.matrix_norm(weight, 2)
        assert_close(torch.linalg.matrix_norm(effective, 2), torch.tensor(1.0), rtol=1e-3, atol=0)
        assert_close(effective, weight / sigma, rtol=1e-3, atol=1e-5)
        assert layer.parametrizations.weight[0].n_power_iterations == 1


def test_normalised_relu_critic_is_one_lipschitz() -> None:
    torch.manual_seed(1)
    critic = MLPCritic((2,), hidden=32, layers=3, norm="none")
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(10.0)  # steep before normalisation
    x = torch.randn(256, 2) * 3
    _, before = input_gradient(critic, x, create_graph=False)
    assert float(per_sample_norm(before).max()) > 10.0
    SpectralNormalization(power_iterations=3).attach(critic)
    warm_up(critic, torch.randn(8, 2), passes=10)
    critic.eval()
    _, after = input_gradient(critic, x, create_graph=False)
    # ReLU is 1-Lipschitz, so the product of unit layer norms bounds every gradient
    assert float(per_sample_norm(after).max()) <= 1.0 + 1e-3


def test_conv_weight_is_normalised_as_its_reshaped_matrix() -> None:
    torch.manual_seed(2)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 1))
    SpectralNormalization().attach(critic)
    warm_up(critic, torch.randn(2, 3, 6, 6), passes=30)
    conv = critic[0]
    matrix = conv.weight.flatten(1)  # (out, in * k * k), the matrix torch normalises
    assert_close(torch.linalg.matrix_norm(matrix, 2), torch.tensor(1.0), rtol=1e-3, atol=0)


def test_state_dict_round_trips_into_a_freshly_attached_critic() -> None:
    torch.manual_seed(3)
    critic = MLPCritic((2,), hidden=8, layers=2, norm="none")
    SpectralNormalization().attach(critic)
    warm_up(critic, torch.randn(4, 2), passes=3)
    state = critic.state_dict()
    assert "net.0.parametrizations.weight.original" in state
    assert "net.0.parametrizations.weight.0._u" in state
    fresh = MLPCritic((2,), hidden=8, layers=2, norm="none")
    SpectralNormalization().attach(fresh)
    fresh.load_state_dict(state)
    x = torch.randn(5, 2)
    critic.eval()
    fresh.eval()
    assert_close(fresh(x), critic(x), rtol=0, atol=0)


def test_a_critic_without_linear_or_conv_layers_is_refused() -> None:
    with pytest.raises(ConfigError, match="no Linear or Conv layer"):
        SpectralNormalization().attach(nn.Sequential(nn.Flatten(), nn.ReLU()))


def test_zero_power_iterations_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="power_iterations must be >= 1"):
        registry.build("sn", {"sn": {"power_iterations": 0}})


def test_an_sn_run_checkpoints_and_samples(tmp_path) -> None:
    run = tmp_path / "sn-run"
    summary = train_run(run, constraint="sn", iters=4)
    assert summary["rollbacks"] == 0
    generator, critic, state = runs.load_generator(run)
    assert critic is not None  # re-attached, so the parametrised keys loaded
    assert "net.0.parametrizations.weight.original" in state["critic"]
    out = runs.sample(run, 8, seed=0, out=tmp_path / "s.npy")
    import numpy as np

    samples = np.load(out)
    assert samples.shape == (8, 2) and np.isfinite(samples).all()
