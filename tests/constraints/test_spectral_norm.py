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


def square_critic_with_orthogonal_weights(seed: int) -> MLPCritic:
    """16 -> 16 -> 16 -> 16 -> 1 with orthogonal weights: sn divides each by sigma = 1."""
    torch.manual_seed(seed)
    critic = MLPCritic((16,), hidden=16, layers=3, norm="none")
    for layer in normalised_layers(critic):
        nn.init.orthogonal_(layer.weight)
    return critic


def test_sn_keeps_the_critics_activations_by_default() -> None:
    """The class (and lipgan.spectral_norm) default: only 2-D points change it."""
    from lipgan.models.groupsort import GroupSort

    critic = MLPCritic((2,), hidden=16, layers=3, norm="none")
    kinds = [type(m) for m in critic.modules()]
    SpectralNormalization().attach(critic)
    assert [type(m) for m in critic.modules()].count(nn.ReLU) == kinds.count(nn.ReLU)
    assert kinds.count(nn.ReLU) == 3
    assert not any(isinstance(m, GroupSort) for m in critic.modules())


@pytest.mark.parametrize("group_size", [0, 2, 4], ids=["fullsort", "maxmin", "groups-of-4"])
def test_sn_with_groupsort_is_gradient_norm_preserving_where_relu_is_not(group_size) -> None:
    """Closed form: square orthogonal layers under sn are themselves orthogonal (every
    singular value 1), and GroupSort permutes, so ||grad D(x)|| = 1 at every x; the same
    layers with the critic's ReLUs lose norm wherever a unit is negative."""
    from lipgan.models.groupsort import GroupSort, MaxMin
    from lipgan.models.lipschitz import sn_bound

    x = torch.randn(300, 16) * 2
    sorted_critic = square_critic_with_orthogonal_weights(4)
    SpectralNormalization(group_size=group_size).attach(sorted_critic)
    kind = MaxMin if group_size == 2 else GroupSort
    assert sum(isinstance(m, kind) for m in sorted_critic.modules()) == 3
    assert sn_bound(sorted_critic) == 1.0
    warm_up(sorted_critic, torch.randn(8, 16), passes=3)
    sorted_critic.eval()
    _, grad = input_gradient(sorted_critic, x, create_graph=False)
    assert_close(per_sample_norm(grad), torch.ones(300), atol=1e-5, rtol=0)

    relu_critic = square_critic_with_orthogonal_weights(4)
    SpectralNormalization().attach(relu_critic)
    warm_up(relu_critic, torch.randn(8, 16), passes=3)
    relu_critic.eval()
    _, grad = input_gradient(relu_critic, x, create_graph=False)
    norms = per_sample_norm(grad)
    assert float(norms.max()) <= 1 + 1e-5 and float(norms.mean()) < 0.8


def test_sn_group_size_errors_name_the_fix() -> None:
    from lipgan.models.resnet import ResNetCritic

    strategy = registry.build("sn", {"sn": {"group_size": 0.0}})
    assert strategy.group_size == 0 and isinstance(strategy.group_size, int)
    with pytest.raises(ConfigError, match="group_size must be 1 .keep ReLU., 0 .* got -1"):
        registry.build("sn", {"sn": {"group_size": -1.0}})
    with pytest.raises(ConfigError, match="12 outputs, not a multiple of sn.group_size 8"):
        SpectralNormalization(group_size=8).attach(MLPCritic((2,), 12, 2, "none"))
    with pytest.raises(ConfigError, match="cannot swap the activations of a ResNetCritic"):
        SpectralNormalization(group_size=0).attach(ResNetCritic(3, 32, 16, "none"))


def test_an_sn_fullsort_run_resumes_into_the_same_critic(tmp_path) -> None:
    from lipgan.models.groupsort import GroupSort

    run = tmp_path / "sn-sort"
    train_run(run, constraint="sn", iters=4, constraint_options={"sn.group_size": 0})
    _, critic, state = runs.load_generator(run)
    assert critic is not None
    sorts = [m for m in critic.modules() if isinstance(m, GroupSort)]
    assert len(sorts) == 2 and all(m.group_size == 0 for m in sorts)
    assert "net.0.parametrizations.weight.original" in state["critic"]


def test_sn_defaults_to_fullsort_on_points_and_keeps_relu_elsewhere(tmp_path) -> None:
    from lipgan import engine
    from lipgan.config import TrainConfig
    from lipgan.models.groupsort import GroupSort

    config = TrainConfig(constraint="sn")
    assert engine.resolve(config, "points").constraint_options["sn.group_size"] == 0
    for family in ("images", "text"):
        assert engine.resolve(config, family).constraint_options["sn.group_size"] == 1
    run = tmp_path / "sn-points"
    train_run(run, constraint="sn", iters=2)
    _, critic, _ = runs.load_generator(run)
    assert not any(isinstance(m, nn.ReLU) for m in critic.modules())
    assert [m.group_size for m in critic.modules() if isinstance(m, GroupSort)] == [0, 0]


def test_a_run_saved_before_sn_group_size_existed_resumes_with_its_relus(tmp_path) -> None:
    """Such a run trained ReLUs; resuming it on points must not swap in FullSort."""
    from runkit import resume_run

    run = tmp_path / "old-sn"
    train_run(run, constraint="sn", iters=2, constraint_options={"sn.group_size": 1})
    # what the release before the parameter wrote: no sn.group_size anywhere
    config = run / "config.toml"
    config.write_text("".join(
        line for line in config.read_text().splitlines(keepends=True) if "sn.group_size" not in line
    ))  # fmt: skip
    for checkpoint in (run / "checkpoints").glob("*.pt"):
        state = torch.load(checkpoint, weights_only=False)
        del state["config"]["constraint_options"]["sn.group_size"]
        torch.save(state, checkpoint)
    summary = resume_run(run, iters=4)
    assert summary["step"] == 4
    _, critic, state = runs.load_generator(run)
    assert state["config"]["constraint_options"]["sn.group_size"] == 1
    assert sum(isinstance(m, nn.ReLU) for m in critic.modules()) == 2
