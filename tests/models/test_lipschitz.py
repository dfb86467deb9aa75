"""What spectral normalisation actually bounds, per architecture (docs/constraints/sn.md)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lipgan import constraints, models
from lipgan.config import TrainConfig, replace
from lipgan.models.lipschitz import UNBOUNDED, sn_bound
from lipgan.models.text import TextCritic

META = {
    "mlp": {"family": "points", "shape": [2]},
    "dcgan32": {"family": "images", "shape": [3, 32, 32]},
    "dcgan8": {"family": "images", "shape": [1, 8, 8]},
    "resnet32": {"family": "images", "shape": [3, 32, 32]},
    "text": {"family": "text", "shape": [16, 12]},
}


def sn_critic(name: str, norm: str = "none", hidden: int = 8) -> nn.Module:
    architecture = name.rstrip("0123456789")
    config = replace(
        TrainConfig(hidden=hidden, z_dim=4), architecture=architecture, critic_norm=norm
    )
    torch.manual_seed(0)
    _, critic = models.build(config, META[name])
    constraints.build("sn", {"sn": {}}).attach(critic)
    return critic


# (guaranteed bound, bound counting every normalised layer as 1), worked by hand:
# dcgan 32x32: three 4x4 stride-2 convs, 2 each; 8x8: a 3x3 stride-1 conv (3) and one 4x4
# stride-2 (2); resnet 32x32: three down blocks 0.5 * (1 + 3 * 3) = 5, two plain blocks
# 1 + 3 * 3 = 10, mean over 4x4 positions 1/4; the layer view: 1, 1, 1, 2, 2, then 1/4;
# text: five blocks 1 + 0.3 * sqrt(5)^2 = 2.5 each, or 1 + 0.3 = 1.3 in the layer view.
EXPECTED = {
    "mlp": (1.0, 1.0),
    "dcgan32": (8.0, 1.0),
    "dcgan8": (6.0, 1.0),
    "resnet32": (5**3 * 10**2 / 4, 1.0),
    "text": (2.5**5, 1.3**5),
}


@pytest.mark.parametrize("name", EXPECTED)
def test_bounds_per_architecture(name: str) -> None:
    critic = sn_critic(name)
    guaranteed, layer_view = EXPECTED[name]
    assert sn_bound(critic) == pytest.approx(guaranteed, rel=1e-12)
    assert sn_bound(critic, conv_factor=False) == pytest.approx(layer_view, rel=1e-12)


@pytest.mark.parametrize("name", ["mlp", "dcgan32", "text"])
def test_layer_norm_has_no_bound(name: str) -> None:
    assert sn_bound(sn_critic(name, norm="layer")) == UNBOUNDED


def gradient_norms(critic: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    return grad.flatten(1).norm(dim=1)


@pytest.mark.parametrize("name", EXPECTED)
def test_sampled_gradient_norms_stay_under_the_bound(name: str) -> None:
    critic = sn_critic(name)
    shape = META[name]["shape"]
    for _ in range(30):  # converge the power iteration, then freeze it
        critic(torch.randn(4, *shape))
    critic.eval()
    norms = gradient_norms(critic, 3 * torch.randn(256, *shape))
    assert norms.max().item() <= sn_bound(critic) * (1 + 1e-4)


def test_the_text_critic_under_sn_reaches_3_6_not_1() -> None:
    # Identity kernels (spectral norm exactly 1, so sn leaves them alone) and a positive
    # input keep every ReLU open: each residual block multiplies by 1 + 0.3 = 1.3.
    seq_len, vocab, width = 16, 12, 12
    critic = TextCritic(seq_len, vocab, width, "none")
    with torch.no_grad():
        for conv in [critic.inp, *(m for m in critic.blocks.modules() if isinstance(m, nn.Conv1d))]:
            conv.weight.zero_()
            conv.weight[:, :, conv.kernel_size[0] // 2] = torch.eye(width, conv.in_channels)
            conv.bias.zero_()
        critic.score.weight.fill_(1 / math.sqrt(width * seq_len))
    constraints.build("sn", {"sn": {}}).attach(critic)
    critic.eval()
    x = torch.rand(8, seq_len, vocab)
    norms = gradient_norms(critic, x)
    torch.testing.assert_close(norms, torch.full((8,), 1.3**5), rtol=1e-5, atol=0)
    assert norms.max().item() <= sn_bound(critic, conv_factor=False) * (1 + 1e-5)
