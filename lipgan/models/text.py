"""The paper's character-level language GAN: 1-D conv residual nets over positions.

Generator: linear from noise to (width, seq_len), five residual blocks
(ReLU, conv k=5, ReLU, conv k=5, added back at 0.3), a 1x1 conv to the vocabulary and
a softmax over it at every position at once. Output layout (n, seq_len, vocab), the
same as the one-hot real samples. Critic: transpose to (n, vocab, seq_len), 1x1 conv
to width, five residual blocks (``critic_norm`` before each ReLU), linear to a score.
The paper used 512 channels; the default here is ``--hidden`` = 32 for CPU runs.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lipgan.errors import ConfigError
from lipgan.models.lipschitz import chain_bound

BLOCKS = 5
RESIDUAL_SCALE = 0.3


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    return nn.Identity()


class ResBlock1d(nn.Module):
    def __init__(self, width: int, norm: str = "none") -> None:
        super().__init__()
        self.net = nn.Sequential(
            _norm(norm, width), nn.ReLU(), nn.Conv1d(width, width, 5, padding=2),
            _norm(norm, width), nn.ReLU(), nn.Conv1d(width, width, 5, padding=2),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + RESIDUAL_SCALE * self.net(x)

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        return 1 + RESIDUAL_SCALE * chain_bound(self.net, conv_factor)


def text_shape(meta: dict[str, Any]) -> tuple[int, int]:
    """(seq_len, vocab) of text data; ConfigError for anything else."""
    shape = tuple(int(s) for s in meta["shape"])
    if meta.get("family") != "text" or len(shape) != 2:
        raise ConfigError(
            f"--architecture text needs text data (--data text:FILE), got "
            f"{meta.get('family')} data of shape {shape}"
        )
    return shape[0], shape[1]


class TextGenerator(nn.Module):
    def __init__(self, z_dim: int, seq_len: int, vocab: int, width: int) -> None:
        super().__init__()
        self.seq_len, self.width = seq_len, width
        self.project = nn.Linear(z_dim, width * seq_len)
        self.blocks = nn.Sequential(*[ResBlock1d(width) for _ in range(BLOCKS)])
        self.out = nn.Conv1d(width, vocab, 1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.blocks(self.project(z).view(-1, self.width, self.seq_len))
        return self.out(h).transpose(1, 2).softmax(dim=-1)


class TextCritic(nn.Module):
    """Scores (n, seq_len, vocab) one-hot or softmax sequences, shape (n,)."""

    def __init__(self, seq_len: int, vocab: int, width: int, norm: str) -> None:
        super().__init__()
        self.inp = nn.Conv1d(vocab, width, 1)
        self.blocks = nn.Sequential(*[ResBlock1d(width, norm) for _ in range(BLOCKS)])
        self.score = nn.Linear(width * seq_len, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.blocks(self.inp(x.transpose(1, 2)))
        return self.score(h.flatten(1)).squeeze(1)

    def lipschitz_bound(self, conv_factor: bool = True) -> float:
        """Upper bound on the Lipschitz constant under sn (lipgan/models/lipschitz.py)."""
        return chain_bound([self.inp, self.blocks, self.score], conv_factor)
