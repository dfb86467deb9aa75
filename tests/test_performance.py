"""FLOP counts of the engine's steps against a hand count, and the constant-mask saving.

The counter is the one benchmarks/bench_roofline.py reports (``FlopCounterMode``, which
counts 2*m*k*n per (m x k) @ (k x n) matmul), so these tests also pin the benchmark.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import torch

from lipgan import constraints, engine
from lipgan import data as datasets
from lipgan.data.toy import ToyData
from lipgan.engine import updates

from testkit import tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_roofline import StepFlopCounter  # noqa: E402

N, D, Z, H = 32, 2, 2, 16  # batch, point dimension, noise dimension, width
CRITIC = D * H + H * H + H * 1  # sum of in * out over the critic's layers: 304
LAST = H * 1  # the critic's last layer (to one score)
GENERATOR = Z * H + H * H + H * D  # the generator's: 320

DOUBLE_BACKWARD = [
    n for n in constraints.names() if constraints.get(n).factory.needs_double_backward
]


def tiny_parts(**changes) -> engine.Parts:
    config = tiny_config(batch_size=N, hidden=H, critic_layers=2, generator_layers=2,
                         n_critic=5, **changes)  # fmt: skip
    config = engine.resolve(config, "points")
    parts, _ = engine.build_parts(config, ToyData("8gaussians"), engine.distributed.setup("cpu"))
    return parts


def flops(step) -> int:
    with StepFlopCounter() as counter:
        step()
    return counter.get_total_flops()


def no_masks(module: torch.nn.Module) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def test_flops_of_one_gp_critic_step_match_the_hand_count(monkeypatch) -> None:
    """One gp critic step on the tiny MLP, n = 32 samples, critic 2 -> 16 -> 16 -> 1
    (F = sum in*out = 304), generator 2 -> 16 -> 16 -> 2 (G = 320). A Linear in -> out on
    m samples costs 2*m*in*out forward, the same again for its weight gradient and again
    for its input gradient (only where the input needs one):

    - generator forward, no grad, n samples:                      2nG   = 20480
    - critic forward on real and fake together, 2n samples:       4nF   = 38912
    - its backward: weight gradients, and input gradients of every
      layer but the first (the data need none):                   4nF + 4n(F - 2*16) = 73728
    - penalty: critic forward on n interpolates:                  2nF   = 19456
    - their input gradient (create_graph; weights not asked for): 2nF   = 19456
    - double backward of that gradient g_x = ((1 W3) m2 W2) m1 W1, whose masks m are
      constants: per matmul the gradient to the weight and to the other factor, except
      the ones that start the chain (1, a constant):            2n(2F - 16) = 37888

    total 209920. Without constant masks, ReLU's backward also sends zero gradients into
    every pre-activation, and so through the forward graph: a weight and an input matmul
    of zeros for every layer but the last, 4n(F - 16) = 36864 more (246784, 15%)."""
    parts = tiny_parts(constraint="gp")
    forward_backward = (
        2 * N * GENERATOR + 4 * N * CRITIC + 4 * N * CRITIC + 4 * N * (CRITIC - D * H)
    )
    penalty = 2 * N * CRITIC + 2 * N * CRITIC + 2 * N * (2 * CRITIC - LAST)
    assert flops(lambda: engine.critic_update(parts)) == forward_backward + penalty == 209920
    monkeypatch.setattr(updates, "constant_masks", no_masks)
    zeros = 4 * N * (CRITIC - LAST)
    assert flops(lambda: engine.critic_update(parts)) == forward_backward + penalty + zeros


def test_flops_of_one_generator_step_and_of_a_whole_iteration() -> None:
    """Generator step: G forward with grad (2nG), critic forward on the fakes (2nF), the
    critic's input gradients only (its weights are frozen: 2nF), the generator's weight
    gradients (2nG) and input gradients of all but its first layer (2n(G - 2*16)):
    98304. An iteration is n_critic = 5 critic steps and one generator step (the EMA
    update and the optimisers do no matmul)."""
    parts = tiny_parts(constraint="gp")
    generator = 4 * N * GENERATOR + 4 * N * CRITIC + 2 * N * (GENERATOR - Z * H)
    assert flops(lambda: engine.generator_update(parts)) == generator == 98304
    assert flops(lambda: engine.train_iteration(parts, 0)) == 5 * 209920 + generator
    none = tiny_parts(constraint="none")
    critic_none = 2 * N * GENERATOR + 8 * N * CRITIC + 4 * N * (CRITIC - D * H)
    assert flops(lambda: engine.critic_update(none)) == critic_none


def tiny_conv_parts(**changes) -> engine.Parts:
    """The DCGAN-style critic (LeakyReLU) on 8x8 digits, 8 channels wide."""
    source = datasets.load("digits")
    config = tiny_config(**{"data": "digits", "batch_size": 16, "hidden": 8, "n_critic": 2,
                            **changes})  # fmt: skip
    config = engine.resolve(config, source.family)
    parts, _ = engine.build_parts(config, source, engine.distributed.setup("cpu"))
    return parts


def _trained(
    monkeypatch, masks: bool, iterations: int = 3, conv: bool = False, **changes
) -> list[torch.Tensor]:
    with monkeypatch.context() as patch:
        if not masks:
            patch.setattr(updates, "constant_masks", no_masks)
        parts = (tiny_conv_parts if conv else tiny_parts)(**changes)
        for i in range(iterations):
            engine.train_iteration(parts, i)
    nets = [parts.critic, parts.generator]
    return [t.detach().clone() for net in nets for t in net.state_dict().values()] + [
        parts.window.clone()
    ]


@pytest.mark.parametrize("constraint", DOUBLE_BACKWARD)
def test_constant_masks_change_no_number_of_a_run(monkeypatch, constraint) -> None:
    with_masks = _trained(monkeypatch, True, constraint=constraint)
    without = _trained(monkeypatch, False, constraint=constraint)
    assert all(torch.equal(a, b) for a, b in zip(with_masks, without, strict=True))
    untrained = tiny_parts(constraint=constraint).critic.state_dict().values()
    assert not all(torch.equal(a, b) for a, b in zip(with_masks, untrained, strict=False))


@pytest.mark.parametrize(
    "changes",
    [{"precision": "bf16"}, {"critic_norm": "layer"},
     pytest.param({"conv": True}, marks=pytest.mark.slow),  # loads digits
     pytest.param({"conv": True, "precision": "bf16"}, marks=pytest.mark.slow),
     # at this width a cheaper LeakyReLU form drifted by an ulp (masks.py)
     pytest.param({"conv": True, "constraint": "r1", "batch_size": 64, "hidden": 64},
                  marks=pytest.mark.slow)],
)  # fmt: skip
def test_constant_masks_are_exact_under_bf16_layer_norm_and_leaky_relu(
    monkeypatch, changes
) -> None:
    changes = {"constraint": "gp", **changes}
    with_masks = _trained(monkeypatch, True, **changes)
    without = _trained(monkeypatch, False, **changes)
    assert all(torch.equal(a, b) for a, b in zip(with_masks, without, strict=True))
