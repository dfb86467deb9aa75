"""The training engine: ``train(config, run_dir)`` and the parts it is made of.

- ``resolve``: fill the strategy- and data-dependent defaults of a config;
- ``parts``: ``Parts``, everything one run holds, and ``build_parts``;
- ``updates``: the critic, generator and one-step updates (the hot path);
- ``measure``: the metrics of a log step and the final summary;
- ``state``: the whole training state as a checkpoint, and back;
- ``loop``: ``train`` and the loop, one named step per thing it does.

The names below are the engine's interface to the rest of lipgan (``engine.train``,
``engine.resolve`` ...).
"""

from lipgan import distributed
from lipgan.batch_random import BatchRandom
from lipgan.engine.loop import Interrupted, Progress, train
from lipgan.engine.measure import (
    EVAL_SEED_OFFSET,
    _eval_noise,
    draw_samples,
    fresh_interpolate_grad_norms,
    measure,
    summarize,
)
from lipgan.engine.parts import Parts, build_parts
from lipgan.engine.resolve import (
    build_constraint,
    has_penalty,
    resolve,
    resolve_iters,
)
from lipgan.engine.state import _rng_state, _set_rng_state, restore, snapshot
from lipgan.engine.updates import (
    critic_loss,
    critic_update,
    generator_update,
    one_step_update,
    train_iteration,
)

__all__ = [
    "EVAL_SEED_OFFSET",
    "BatchRandom",
    "Interrupted",
    "Parts",
    "Progress",
    "_eval_noise",
    "_rng_state",
    "_set_rng_state",
    "build_constraint",
    "build_parts",
    "critic_loss",
    "critic_update",
    "draw_samples",
    "distributed",
    "generator_update",
    "has_penalty",
    "fresh_interpolate_grad_norms",
    "measure",
    "one_step_update",
    "resolve",
    "resolve_iters",
    "restore",
    "snapshot",
    "summarize",
    "train",
    "train_iteration",
]
