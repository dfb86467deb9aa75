"""Lipschitz strategies: the registry and the built-in families.

``register`` adds a strategy, ``get(name)`` looks one up, ``names()`` lists them,
``build(spec, params)`` instantiates ``'gp'`` or a chain such as ``'sn+gp'``.
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
    input_gradient,
    interpolate,
    per_sample_norm,
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
    "build",
    "get",
    "input_gradient",
    "interpolate",
    "names",
    "optimizer_for",
    "parse",
    "per_sample_norm",
    "register",
    "resolve_params",
]
