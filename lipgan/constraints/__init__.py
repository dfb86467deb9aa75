"""Lipschitz strategies: the registry and the built-in families.

``register`` adds a strategy, ``get(name)`` looks one up, ``names()`` lists them,
``build(spec, weight=...)`` instantiates ``'gp'`` or a chain such as ``'sn+gp'``. The
functional forms (``lipgan.gradient_penalty``, ``lipgan.clip_weights``, ...) live next to
their strategy, one module per family; docs/api.md shows both in a loop of your own.
"""

from lipgan.constraints import (  # noqa: F401  (imported to register)
    adversarial,
    clipping,
    dragan,
    finite_difference,
    gradient_normalization,
    gradient_penalty,
    none,
    orthogonal,
    spectral_norm,
    wgan_div,
    zero_centred,
)
from lipgan.constraints.base import (
    BatchRandom,
    Chain,
    Constraint,
    CriticBatch,
    attaches_critic,
    has_penalty,
    input_gradient,
    interpolate,
    per_sample_norm,
    random_source,
    scores_of,
)
from lipgan.constraints.registry import (
    ADAM,
    ENTRY_POINT_GROUP,
    RMSPROP,
    OptimizerDefaults,
    StrategyInfo,
    build,
    get,
    names,
    optimizer_for,
    parse,
    register,
    resolve_params,
)

__all__ = [
    "ADAM",
    "ENTRY_POINT_GROUP",
    "RMSPROP",
    "BatchRandom",
    "Chain",
    "Constraint",
    "CriticBatch",
    "OptimizerDefaults",
    "StrategyInfo",
    "attaches_critic",
    "build",
    "get",
    "has_penalty",
    "input_gradient",
    "interpolate",
    "names",
    "optimizer_for",
    "parse",
    "per_sample_norm",
    "random_source",
    "register",
    "resolve_params",
    "scores_of",
]
