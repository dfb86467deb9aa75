"""Search spaces: the ranges a tuning study draws from, declared next to each strategy.

A range is one of four small types (``LogUniform``, ``Uniform``, ``IntRange``, ``Choice``);
each draws from a numpy generator, says whether a value lies inside it and asks an Optuna
trial for its value (``suggest``). Strategies declare theirs with ``@tunable({...})``
stacked on ``@register(...)``; plugins do the same. ``SHARED`` holds the training knobs
every strategy is tuned over (learning rates, betas, n_critic, EMA decay).

Fair comparisons need the same shared values for every strategy at the same draw: draw k
of a study with seed s samples the shared space from its own generator seeded (s, k, 0)
and the strategy's space from (s, k, 1), so gp's and sn's draw 5 have the same learning
rate whatever else each of them tunes.

Nothing here imports Optuna or the strategies: the constraint modules import this one.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lipgan.errors import ConfigError


@dataclass(frozen=True)
class LogUniform:
    """low * (high/low)^U[0, 1]: the log of a draw is uniform (learning rates, weights)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))

    def contains(self, value: Any) -> bool:
        return _number(value) and self.low <= value <= self.high

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def describe(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"

    def to_toml(self) -> dict[str, Any]:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class Uniform:
    """U[low, high] (Adam's betas)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return _number(value) and self.low <= value <= self.high

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)

    def describe(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"

    def to_toml(self) -> dict[str, Any]:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class IntRange:
    """A whole number in [low, high], each equally likely (or log-uniform with ``log``)."""

    low: int
    high: int
    log: bool = False

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:  # uniform in log space over [low - 0.5, high + 0.5), as Optuna's
            edges = math.log(self.low - 0.5), math.log(self.high + 0.5)
            return min(self.high, max(self.low, round(math.exp(rng.uniform(*edges)))))
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: Any) -> bool:
        return _number(value) and float(value).is_integer() and self.low <= value <= self.high

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"{'log-' if self.log else ''}int [{self.low}, {self.high}]"

    def to_toml(self) -> dict[str, Any]:
        return {"int_log" if self.log else "int": [self.low, self.high]}


@dataclass(frozen=True)
class Choice:
    """One of a few values, each equally likely (n_critic, widths)."""

    options: tuple[float | int, ...]

    def sample(self, rng: np.random.Generator) -> float | int:
        return self.options[int(rng.integers(len(self.options)))]

    def contains(self, value: Any) -> bool:
        return value in self.options

    def suggest(self, trial: Any, name: str) -> float | int:
        return trial.suggest_categorical(name, list(self.options))

    def describe(self) -> str:
        return "one of {" + ", ".join(f"{v:g}" for v in self.options) + "}"

    def to_toml(self) -> dict[str, Any]:
        return {"choice": list(self.options)}


Range = LogUniform | Uniform | IntRange | Choice


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the shared training space ---------------------------------------------------------------

SHARED: dict[str, Range] = {
    "lr": LogUniform(1e-5, 1e-2),
    "generator_lr": LogUniform(1e-5, 1e-2),
    "beta1": Uniform(0.0, 0.99),
    "beta2": Uniform(0.9, 0.999),
    "n_critic": Choice((1, 3, 5)),
    "ema_decay": Choice((0.0, 0.99, 0.999, 0.9999)),
}
"""compare_gan's wide ranges (Lucic et al. 2018; lr 10^U[-5,-2], beta1 U[0,1], n_critic
{1, 5}) widened where lipgan's defaults lie outside: n_critic 3 is the 2-D points recipe
(docs/results.md), beta1 stops at 0.99 (Adam needs beta1 < 1). beta2 and the EMA decay are
lipgan's choice: the values in use (0.9, 0.999; EMA off, 0.999) and their neighbours."""

ADAM_ONLY = ("beta1", "beta2")
"""Shared knobs that only apply to Adam: drawn for every strategy (so the other draws
stay identical) and dropped for an RMSprop strategy (clip)."""

TRAINING_FIELDS = ("hidden", "critic_layers", "generator_layers")
"""TrainConfig fields a strategy's space may tune besides its own parameters (the widths
matter for Lipschitz-by-construction critics)."""


# --- declarations next to each strategy ------------------------------------------------------


@dataclass(frozen=True)
class StrategySpace:
    """One strategy's ranges: its own parameters and TRAINING_FIELDS, per data family."""

    ranges: dict[str, Range] = field(default_factory=dict)
    by_family: dict[str, dict[str, Range]] = field(default_factory=dict)
    """Per data family ('points', 'images', 'text'), ranges that replace or add to
    ``ranges``."""

    def for_family(self, family: str) -> dict[str, Range]:
        return {**self.ranges, **self.by_family.get(family, {})}


_SPACES: dict[Callable[..., Any], StrategySpace] = {}
"""Keyed by the registered factory (``StrategyInfo.factory``), filled by ``tunable``."""

F = TypeVar("F", bound=Callable[..., Any])


def tunable(
    ranges: Mapping[str, Range], *, by_family: Mapping[str, Mapping[str, Range]] | None = None
) -> Callable[[F], F]:
    """Declare the search space of the strategy registered just below (``@register``).

    Keys are the strategy's parameters ('weight', 'c') or TRAINING_FIELDS ('hidden');
    parameters left out keep their registered default in every trial.
    """

    def decorate(factory: F) -> F:
        if factory in _SPACES:
            raise ValueError(f"{factory.__name__} already declares a search space")
        _SPACES[factory] = StrategySpace(
            dict(ranges), {family: dict(r) for family, r in (by_family or {}).items()}
        )
        return factory

    return decorate


def declared(factory: Callable[..., Any]) -> StrategySpace:
    """The space a strategy declared (empty when it tunes only the shared knobs)."""
    return _SPACES.get(factory, StrategySpace())


def describe(space: StrategySpace) -> str:
    """'weight log-uniform [0.1, 100] (points: weight log-uniform [0.01, 100])', '-'."""
    text = ", ".join(f"{k} {r.describe()}" for k, r in space.ranges.items())
    for family, ranges in space.by_family.items():
        text += f" ({family}: " + ", ".join(f"{k} {r.describe()}" for k, r in ranges.items()) + ")"
    return text.strip() or "-"


PENALTY_WEIGHT: dict[str, Range] = {"weight": LogUniform(1e-1, 1e2)}
"""compare_gan's lambda 10^U[-1, 2] (Kurach et al. 2019)."""
POINTS_PENALTY_WEIGHT: dict[str, dict[str, Range]] = {"points": {"weight": LogUniform(1e-2, 1e2)}}
"""On 2-D points one decade lower: there lambda 0.1 (the default) reaches W1 0.12 where 10
leaves a blob (docs/constraints/gp.md), and 0.1 would sit on the edge."""
WIDTHS: dict[str, dict[str, Range]] = {
    "points": {"hidden": Choice((128, 256, 512, 1024))},
    "images": {"hidden": Choice((32, 64, 128))},
    "text": {"hidden": Choice((16, 32, 64))},
}
"""Model widths around each family's default (512, 64, 32): for critics that are
Lipschitz by construction the width matters (issue 25's deel-torchlip check used 256)."""


# --- one study's space ------------------------------------------------------------------------


@dataclass(frozen=True)
class StudySpace:
    """What one study draws: the shared space and, per part of the strategy, its own.

    Parameter names are those of the config: 'lr', 'n_critic', 'hidden' and
    'PART.PARAM' for a strategy's own ('gp.weight'), so a trial's values map straight
    onto a TrainConfig.
    """

    shared: dict[str, Range]
    strategy: dict[str, Range]

    def draw(self, seed: int, k: int) -> dict[str, Any]:
        """Draw ``k`` of a study seeded ``seed``: shared values from their own stream."""
        shared_rng = np.random.default_rng([seed, k, 0])
        strategy_rng = np.random.default_rng([seed, k, 1])
        values = {name: r.sample(shared_rng) for name, r in self.shared.items()}
        values.update({name: r.sample(strategy_rng) for name, r in self.strategy.items()})
        return values

    def ranges(self) -> dict[str, Range]:
        return {**self.shared, **self.strategy}

    def describe(self) -> dict[str, str]:
        return {name: r.describe() for name, r in self.ranges().items()}


def study_space(
    parts: Mapping[str, tuple[Callable[..., Any], Mapping[str, float]]],
    family: str,
    overrides: Mapping[str, Mapping[str, Range]] | None = None,
    *,
    skip: tuple[str, ...] = (),
) -> StudySpace:
    """The space of a strategy (its parts: name -> (factory, parameters)) on ``family``.

    ``overrides`` (from ``--space``) replace ranges by section: 'shared' and each part's
    name; ``skip`` drops shared knobs that do not apply (n_critic on the one-step
    schedule). The draws of the shared knobs do not depend on the parts.
    """
    overrides = overrides or {}
    unknown = sorted(set(overrides) - {"shared", *parts})
    if unknown:
        raise ConfigError(
            f"--space section [{unknown[0]}] names no part of this strategy; use [shared] or "
            f"one of: {', '.join(f'[{p}]' for p in parts)}"
        )
    shared = {**SHARED, **overrides.get("shared", {})}
    bad = sorted(set(shared) - set(SHARED))
    if bad:
        raise ConfigError(
            f"--space [shared] has no knob {bad[0]!r}; shared knobs: {', '.join(SHARED)}"
        )
    shared = {name: r for name, r in shared.items() if name not in skip}
    strategy: dict[str, Range] = {}
    for part, (factory, params) in parts.items():
        ranges = {**declared(factory).for_family(family), **overrides.get(part, {})}
        for name, r in ranges.items():
            if name in params:
                strategy[f"{part}.{name}"] = r
            elif name in TRAINING_FIELDS:
                strategy.setdefault(name, r)
            else:
                valid = [*params, *TRAINING_FIELDS]
                raise ConfigError(
                    f"search space of {part!r} names {name!r}, which is neither one of its "
                    f"parameters nor a training field; valid: {', '.join(valid)}"
                )
    return StudySpace(shared, strategy)


# --- --space FILE.toml -------------------------------------------------------------------------

KINDS: dict[str, Callable[[list[Any]], Range]] = {
    "log_uniform": lambda v: LogUniform(float(v[0]), float(v[1])),
    "uniform": lambda v: Uniform(float(v[0]), float(v[1])),
    "int": lambda v: IntRange(int(v[0]), int(v[1])),
    "int_log": lambda v: IntRange(int(v[0]), int(v[1]), log=True),
    "choice": lambda v: Choice(tuple(v)),
}


def parse_range(value: Any, where: str) -> Range:
    """One TOML entry, e.g. ``{log_uniform = [1e-5, 1e-2]}`` or ``{choice = [1, 5]}``."""
    example = "e.g. lr = {log_uniform = [1e-5, 1e-2]} or n_critic = {choice = [1, 5]}"
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in KINDS:
        raise ConfigError(f"{where}: write one of {', '.join(KINDS)} = [...], {example}")
    kind, bounds = next(iter(value.items()))
    if not isinstance(bounds, list) or not bounds or not all(_number(b) for b in bounds):
        raise ConfigError(f"{where}: {kind} needs a list of numbers, {example}")
    if kind != "choice":
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise ConfigError(f"{where}: {kind} needs [low, high] with low < high")
        if kind in ("log_uniform", "int_log") and bounds[0] <= 0:
            raise ConfigError(f"{where}: {kind} needs low > 0 (a log scale)")
        if kind.startswith("int") and not all(float(b).is_integer() for b in bounds):
            raise ConfigError(f"{where}: {kind} needs whole-number bounds")
    return KINDS[kind](bounds)


def load_space_file(path: Path) -> dict[str, dict[str, Range]]:
    """``--space FILE.toml``: sections [shared] and [PART] of ranges that replace the
    declared ones (docs/tune.md)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--space file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--space file {path} cannot be read ({exc})") from None
    sections: dict[str, dict[str, Range]] = {}
    for section, entries in data.items():
        if not isinstance(entries, dict):
            raise ConfigError(
                f"--space file {path}: {section!r} must be a section such as [shared] or [gp]"
            )
        sections[section] = {
            name: parse_range(value, f"--space file {path} [{section}] {name}")
            for name, value in entries.items()
        }
    return sections


def space_to_toml(sections: Mapping[str, Mapping[str, Range]]) -> dict[str, Any]:
    """The inverse of ``load_space_file``: what a study saves, and resumes from."""
    return {s: {n: r.to_toml() for n, r in ranges.items()} for s, ranges in sections.items()}
