"""Conv, ResNet and text models: shapes, ranges, critic normalisation, no batch coupling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lipgan import engine, models
from lipgan.config import TrainConfig, replace
from lipgan.errors import ConfigError

IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def config(**changes) -> TrainConfig:
    return replace(TrainConfig(hidden=8, z_dim=16), **changes)


def image_meta(shape) -> dict:
    return {"kind": "images", "family": "images", "shape": list(shape)}


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_image_models_shapes_and_range(architecture, shape):
    torch.manual_seed(0)
    generator, critic = models.build(config(architecture=architecture), image_meta(shape))
    with torch.no_grad():
        fake = generator(torch.randn(5, 16))
    assert fake.shape == (5, *shape)
    assert float(fake.abs().max()) <= 1.0
    scores = critic(fake)
    assert scores.shape == (5,)
    # critic scores do not depend on the rest of the batch (no batch norm under a penalty)
    torch.testing.assert_close(critic(fake[:1]), scores[:1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
def test_critic_norm_is_honoured(architecture):
    meta = image_meta((3, 32, 32))

    def norms(kind):
        _, critic = models.build(config(architecture=architecture, critic_norm=kind), meta)
        return {type(m) for m in critic.modules()} & {nn.GroupNorm, nn.BatchNorm2d}

    assert norms("none") == set()
    assert norms("layer") == {nn.GroupNorm}
    assert norms("batch") == {nn.BatchNorm2d}
    layer = models.build(config(architecture=architecture, critic_norm="layer"), meta)[1]
    assert all(m.num_groups == 1 for m in layer.modules() if isinstance(m, nn.GroupNorm))


def test_batch_norm_refused_with_penalty_on_images():
    with pytest.raises(ConfigError, match="critic-norm batch"):
        engine.resolve(config(critic_norm="batch", constraint="gp"), "images")


def test_text_models():
    meta = {"kind": "text", "family": "text", "shape": [12, 7], "vocab": "abcdefg"}
    generator, critic = models.build(config(architecture="auto"), meta)
    fake = generator(torch.randn(4, 16))
    assert fake.shape == (4, 12, 7)
    torch.testing.assert_close(fake.sum(-1), torch.ones(4, 12))
    assert float(fake.detach().min()) >= 0
    assert critic(fake).shape == (4,)


def test_architecture_mismatch_is_a_config_error():
    text_meta = {"kind": "text", "family": "text", "shape": [12, 7], "vocab": "abcdefg"}
    with pytest.raises(ConfigError, match="dcgan needs square images"):
        models.build(config(architecture="dcgan"), text_meta)
    with pytest.raises(ConfigError, match="text needs text data"):
        models.build(config(architecture="text"), image_meta((1, 8, 8)))
