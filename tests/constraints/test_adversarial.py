"""alr: the power iteration finds the top right-singular vector; the penalty of a
linear critic is lambda * max(0, ||w|| - K)^2 exactly."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lipgan.constraints.adversarial import AdversarialLipschitz, adversarial_direction

from critickit import batch_for


class NormCritic(nn.Module):
    """D(x) = ||A x||: from x = 0 the steepest direction is A's top right-singular vector."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a)

    def forward(self, x: Tensor) -> Tensor:
        return (x @ self.a.T).norm(dim=1)


def rotated_matrix(singular_values: list[float], seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = len(singular_values)
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(singular_values, dtype=torch.float64)) @ v.T, v[:, 0]


def test_power_iteration_converges_to_the_top_right_singular_vector() -> None:
    a, top = rotated_matrix([3.0, 2.0, 1.0, 0.5], seed=0)
    critic = NormCritic(a)
    x = torch.zeros(8, 4, dtype=torch.float64)
    start = torch.randn(8, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scores = critic(x)
    alignment = []
    for steps in (1, 3, 30):
        d = adversarial_direction(critic, x, scores, start, xi=0.1, steps=steps)
        alignment.append((d @ top).abs())
    # Power iteration on A^T A: the error shrinks like (2/3)^(2k); per_sample_norm is float32.
    assert float(alignment[0].min()) < float(alignment[1].min()) < 1
    torch.testing.assert_close(alignment[2], torch.ones(8, dtype=torch.float64), atol=1e-6, rtol=0)


def linear_critic(w: list[float]) -> nn.Module:
    layer = nn.Linear(len(w), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([w]))
        layer.bias.fill_(0.3)
    return nn.Sequential(layer, nn.Flatten(0))


def test_one_step_finds_the_gradient_direction_of_a_linear_critic() -> None:
    critic = linear_critic([3.0, 4.0])
    x = torch.randn(10, 2)
    d = adversarial_direction(critic, x, critic(x), torch.randn(10, 2), xi=10.0, steps=1)
    torch.testing.assert_close(d.abs(), torch.tensor([[0.6, 0.8]]).expand(10, 2))


@pytest.mark.parametrize(("w", "K"), [([3.0, 4.0], 1.0), ([0.3, 0.4], 1.0), ([3.0, 4.0], 2.0)])
def test_linear_critic_penalty_is_the_closed_form(w, K) -> None:
    critic = linear_critic(w)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g) + 1
    strategy = AdversarialLipschitz(weight=10.0, K=K, xi=1.0, eps_min=0.1, eps_max=2.0)
    penalty = strategy.penalty(critic, batch_for(critic, real, fake, seed=3))
    expected = 10.0 * max(0.0, 5.0 * (w[0] / 3.0) - K) ** 2
    torch.testing.assert_close(penalty, torch.tensor(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("params", "words"),
    [({"steps": 0}, "steps must be >= 1"), ({"xi": 0.0}, "xi must be > 0"),
     ({"eps_min": 2.0, "eps_max": 1.0}, "0 < eps_min <= eps_max")],
)  # fmt: skip
def test_bad_settings_are_refused(params, words) -> None:
    with pytest.raises(ValueError, match=words):
        AdversarialLipschitz(**params)
