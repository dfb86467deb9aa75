from __future__ import annotations

import torch
from torch import nn

from lipgan.constraints.clipping import WeightClipping


def test_every_critic_parameter_lies_in_the_box_after_a_step():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 1))
    clip = WeightClipping(c=0.01)
    clip.attach(critic)
    optimizer = torch.optim.RMSprop(critic.parameters(), lr=0.5)
    loss = critic(torch.randn(32, 2)).pow(2).mean() * 1e3
    loss.backward()
    optimizer.step()
    assert max(p.abs().max().item() for p in critic.parameters()) > 0.01  # step left the box
    clip.after_critic_step(critic)
    for p in critic.parameters():
        assert p.min().item() >= -0.01 and p.max().item() <= 0.01
    # LayerNorm's weight starts at 1: clipping includes it, as in the paper.
    assert critic[1].weight.max().item() == torch.tensor(0.01).item()


def test_clipping_leaves_values_inside_the_box_unchanged():
    layer = nn.Linear(3, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.2, 0.0], [2.0, -3.0, 0.1], [0, 0, 0]]))
        layer.bias.copy_(torch.tensor([0.05, -0.5, 1.0]))
    WeightClipping(c=0.3).after_critic_step(layer)
    expected_w = torch.tensor([[0.3, -0.2, 0.0], [0.3, -0.3, 0.1], [0, 0, 0]])
    torch.testing.assert_close(layer.weight.data, expected_w)
    torch.testing.assert_close(layer.bias.data, torch.tensor([0.05, -0.3, 0.3]))
