"""The peer implementation: deel-torchlip's toy critic as a lipgan strategy (benchmark only).

deel-torchlip is not a lipgan dependency; install it next to lipgan's torch with

    pip install --no-deps deel-torchlip

``register_peer()`` adds the strategy ``torchlip``, whose ``attach`` ignores lipgan's
critic (keeping only its input width) and returns deel-torchlip's toy-critic recipe,
which the engine then trains everywhere in its place:

    SpectralLinear(d, 256) FullSort SpectralLinear(256, 128) FullSort
    SpectralLinear(128, 64) FullSort FrobeniusLinear(64, 1)

SpectralLinear is orthogonally initialised, zero bias, and normalised inside the forward
pass (power iteration, then Björck to eps 1e-3, both differentiated through);
FrobeniusLinear divides the single output row by its norm. The recipe's critic learning
rate is 1e-2 (``--lr 1e-2 --generator-lr 3e-4`` in lipgan's terms).
"""

from __future__ import annotations

from torch import Tensor, nn

from lipgan.constraints.base import Constraint
from lipgan.constraints.registry import _REGISTRY, ADAM, register

WIDTHS = (256, 128, 64)


class PeerCritic(nn.Module):
    """deel-torchlip's toy critic; scores of shape (n,)."""

    def __init__(self, inputs: int, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        import deel.torchlip as tl

        layers: list[nn.Module] = []
        width = inputs
        for out in widths:
            layers += [tl.SpectralLinear(width, out), tl.FullSort()]
            width = out
        layers.append(tl.FrobeniusLinear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)


class PeerTorchlip(Constraint):
    """Replaces the critic by ``PeerCritic``; nothing after the step (the layers are
    normalised inside their forward pass)."""

    def attach(self, critic: nn.Module) -> nn.Module:
        first = next(m for m in critic.modules() if isinstance(m, nn.Linear))
        peer = PeerCritic(first.in_features)
        self.attached_critic = peer
        return peer


def register_peer() -> None:
    """Register ``torchlip`` once per process (idempotent)."""
    if "torchlip" in _REGISTRY:
        return
    register(
        "torchlip",
        description="deel-torchlip's toy critic (SpectralLinear + FullSort + FrobeniusLinear)",
        optimizer=ADAM,
        group="weights",
    )(PeerTorchlip)
