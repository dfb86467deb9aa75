"""Tuning: every strategy gets the same budget of hyperparameter draws (``lipgan tune``,
``lipgan compare --tune N``).

- ``space``: the search-space types, the shared training space and ``tunable``, the
  declaration each strategy makes next to its ``@register`` (imported by the strategies,
  so it imports neither Optuna nor them);
- ``study``: one strategy's study (Optuna, journal storage in the output folder);
- ``budget``: expected best result of k trials (Dodge et al. 2019);
- ``compare``: ``compare --tune``, every strategy tuned alike, the best retrained.

Only ``space`` is imported here: Optuna is an optional extra (``lipgan[tune]``).
"""

from lipgan.tune.space import (
    SHARED,
    Choice,
    IntRange,
    LogUniform,
    StrategySpace,
    Uniform,
    tunable,
)

__all__ = ["SHARED", "Choice", "IntRange", "LogUniform", "StrategySpace", "Uniform", "tunable"]
