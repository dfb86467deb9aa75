"""Generator and critic builders, chosen by ``architecture`` and the data's family.

A critic maps a batch (n, *shape) to scores of shape (n,); a generator maps noise
(n, z_dim) to samples (n, *shape). Each architecture is a function
``(config, meta) -> (generator, critic)`` in ``ARCHITECTURES``; ``meta`` is the data
source's ``meta()`` (family, shape and, for text, the vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from lipgan.config import TrainConfig
from lipgan.errors import ConfigError
from lipgan.models.conv import DCGANCritic, DCGANGenerator, conv_width, image_shape
from lipgan.models.mlp import MLPCritic, MLPGenerator
from lipgan.models.resnet import ResNetCritic, ResNetGenerator
from lipgan.models.text import TextCritic, TextGenerator, text_shape

Builder = Callable[[TrainConfig, dict[str, Any]], tuple[nn.Module, nn.Module]]


def _mlp(config: TrainConfig, meta: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    shape = tuple(meta["shape"])
    assert config.z_dim is not None  # resolved before models are built
    generator = MLPGenerator(config.z_dim, shape, config.hidden, config.generator_layers)
    critic = MLPCritic(shape, config.hidden, config.critic_layers, config.critic_norm)
    return generator, critic


def _image_models(name: str, generator_cls: type, critic_cls: type) -> Builder:
    """A builder for a square-image architecture whose classes take (.., side, width)."""

    def build(config: TrainConfig, meta: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
        channels, side = image_shape(meta, name)
        width = conv_width(config.hidden, side)
        generator = generator_cls(config.z_dim, channels, side, width)
        return generator, critic_cls(channels, side, width, config.critic_norm)

    return build


def _text(config: TrainConfig, meta: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    seq_len, vocab = text_shape(meta)
    width = conv_width(config.hidden)
    assert config.z_dim is not None  # resolved before models are built
    generator = TextGenerator(config.z_dim, seq_len, vocab, width)
    return generator, TextCritic(seq_len, vocab, width, config.critic_norm)


ARCHITECTURES: dict[str, Builder] = {
    "mlp": _mlp,
    "dcgan": _image_models("dcgan", DCGANGenerator, DCGANCritic),
    "resnet": _image_models("resnet", ResNetGenerator, ResNetCritic),
    "text": _text,
}
DEFAULT_FOR_FAMILY = {"points": "mlp", "images": "dcgan", "text": "text"}


def architecture_for(config: TrainConfig, family: str) -> str:
    name = config.architecture
    if name == "auto":
        name = DEFAULT_FOR_FAMILY.get(family, "mlp")
    if name not in ARCHITECTURES:
        raise ConfigError(
            f"architecture {name!r} is not available for {family} data; "
            f"available: {', '.join(ARCHITECTURES)}"
        )
    return name


def has_batch_statistics(module: nn.Module) -> bool:
    """True when some layer of ``module`` normalises with statistics of the whole batch."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def build(config: TrainConfig, meta: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    """(generator, critic) for the resolved config and the data's meta."""
    return ARCHITECTURES[architecture_for(config, meta["family"])](config, meta)
