"""The strategy registry: one dict, filled by a decorator next to each definition.

Third-party packages add strategies through the entry-point group
``lipgan.constraints``: each entry point names a module (or callable) whose import
runs ``@register``. See docs/extending.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

from lipgan.constraints.base import Chain, Constraint
from lipgan.errors import ArgumentError, ArgumentTypeError, ConfigError

ENTRY_POINT_GROUP = "lipgan.constraints"
FAMILIES = ("points", "images", "text")
"""The data families a strategy's defaults may depend on (every data source has one)."""
OPTIMIZERS = ("adam", "rmsprop")


def check_family(family: object) -> str:
    """``family`` if it is a data family; a typo lists the valid ones."""
    if family not in FAMILIES:
        raise ArgumentError(f"unknown data family {family!r}; valid: {', '.join(FAMILIES)}")
    return family  # type: ignore[return-value]


@dataclass(frozen=True)
class OptimizerDefaults:
    """The optimiser a strategy trains best with."""

    name: str
    """'adam' or 'rmsprop'."""
    lr: float
    betas: tuple[float, float] = (0.0, 0.9)
    """Adam betas on images (the paper's)."""
    by_family: tuple[tuple[str, float, tuple[float, float]], ...] = ()
    """(family, lr, betas) where a data family trains better with other values."""
    schedule_by_family: tuple[tuple[str, int, str], ...] = ()
    """(family, n_critic, lr_decay) where a data family trains better with other values
    than n_critic 5 and a constant learning rate (docs/results.md has the measurements)."""

    def __post_init__(self) -> None:
        # A typo here would silently train with another optimiser or another family's values.
        if self.name not in OPTIMIZERS:
            raise ArgumentError(f"unknown optimizer {self.name!r}; valid: {', '.join(OPTIMIZERS)}")
        for family, *_ in (*self.by_family, *self.schedule_by_family):
            check_family(family)

    def for_family(self, family: str) -> tuple[float, tuple[float, float]]:
        """(lr, betas) for data of ``family``."""
        check_family(family)
        for name, lr, betas in self.by_family:
            if name == family:
                return lr, betas
        return self.lr, self.betas

    def schedule_for(self, family: str) -> tuple[int, str]:
        """(n_critic, lr_decay) for data of ``family``."""
        check_family(family)
        for name, n_critic, lr_decay in self.schedule_by_family:
            if name == family:
                return n_critic, lr_decay
        return 5, "constant"

    def describe(self) -> str:
        if self.name != "adam":
            return f"{self.name.capitalize()} lr {self.lr:g}"
        text = f"Adam lr {self.lr:g}, betas {self.betas}"
        schedules = {family: (n, decay) for family, n, decay in self.schedule_by_family}
        for family, lr, betas in self.by_family:
            text += f"; {family}: lr {lr:g}, betas {betas}"
            if family in schedules:
                n_critic, decay = schedules[family]
                text += f", n_critic {n_critic}, {decay} decay"
        return text


# The paper's toy script used betas (0.5, 0.9) on points; on text lr 1e-3 with those betas
# gives word-like samples within minutes on a CPU where 1e-4 does not (docs/data.md). On
# points lr 3e-4 with 3 critic steps and a linear decay reaches a lower W1 at the default
# budget in 0.6x the critic work of the paper's 1e-4 / 5 / constant (docs/results.md).
ADAM = OptimizerDefaults(
    "adam",
    1e-4,
    (0.0, 0.9),
    by_family=(("points", 3e-4, (0.5, 0.9)), ("text", 1e-3, (0.5, 0.9))),
    schedule_by_family=(("points", 3, "linear"),),
)
RMSPROP = OptimizerDefaults("rmsprop", 5e-5)


@dataclass(frozen=True)
class StrategyInfo:
    """A registered strategy: how to build it and what it recommends."""

    name: str
    factory: Callable[..., Constraint]
    description: str
    optimizer: OptimizerDefaults
    params: dict[str, float]
    """Constructor parameters and their defaults."""
    group: str | None = None
    """Strategies in the same group do the same job and cannot be combined."""
    family_params: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per data family ('points', 'images', 'text'), defaults that differ from params."""
    source: str = "lipgan"
    """'lipgan' or the distribution that registered it."""

    def defaults_for(self, family: str) -> dict[str, float]:
        """The parameters for data of ``family``; "" gives the registered defaults."""
        if family:
            check_family(family)
        return {**self.params, **self.family_params.get(family, {})}


_REGISTRY: dict[str, StrategyInfo] = {}
_plugin_failures: list[str] | None = None
"""One line per entry point that failed to import; None until the entry points are read."""

T = TypeVar("T", bound=Callable[..., Constraint])


def register(
    name: str,
    *,
    description: str,
    optimizer: OptimizerDefaults = ADAM,
    group: str | None = None,
    family_params: Mapping[str, Mapping[str, float]] | None = None,
) -> Callable[[T], T]:
    """Class (or factory) decorator that adds a strategy under ``name``.

    The factory's keyword parameters, with float defaults, are the strategy's
    hyperparameters. A name may be registered once.
    """

    for family in family_params or {}:
        check_family(family)

    def decorate(factory: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"constraint {name!r} is already registered")
        if "+" in name or not name:
            raise ValueError(f"constraint name {name!r} must be non-empty and have no '+'")
        params = {}
        for pname, p in inspect.signature(factory).parameters.items():
            if p.default is inspect.Parameter.empty:
                raise ValueError(f"{name}: parameter {pname!r} needs a default")
            params[pname] = float(p.default)
        module = getattr(factory, "__module__", "") or ""
        _REGISTRY[name] = StrategyInfo(
            name=name,
            factory=factory,
            description=description,
            optimizer=optimizer,
            params=params,
            group=group,
            family_params={k: dict(v) for k, v in (family_params or {}).items()},
            source="lipgan" if module.startswith("lipgan.") else module.split(".")[0],
        )
        return factory

    return decorate


def load_plugins() -> None:
    """Import every ``lipgan.constraints`` entry point once (they self-register).

    A plugin that fails to import is reported on every call, not only the first: a
    later lookup must not silently list the other strategies as if it did not exist.
    """
    global _plugin_failures
    if _plugin_failures is None:
        failures = []
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()
            except Exception as exc:  # a broken plugin must not break lipgan with a traceback
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                failures.append(f"plugin {entry.name!r} ({entry.value}) failed to load: {reason}")
        _plugin_failures = failures
    if _plugin_failures:
        raise ConfigError(
            "; ".join(_plugin_failures) + "; fix or uninstall that package (pip uninstall ...)"
        )


def names() -> list[str]:
    """All registered strategy names, sorted."""
    load_plugins()
    return sorted(_REGISTRY)


def get(name: str) -> StrategyInfo:
    """The strategy registered as ``name``; unknown names list the valid ones."""
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ArgumentError(
            f"unknown constraint {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def parse(spec: str) -> list[StrategyInfo]:
    """'sn+gp' -> the registered strategies, refusing conflicting combinations."""
    if not isinstance(spec, str):
        raise ArgumentTypeError(
            f"constraint spec must be a string such as 'gp' or 'sn+gp', got {type(spec).__name__}"
        )
    parts = [p.strip() for p in spec.split("+")]
    if any(not p for p in parts):
        raise ArgumentError(f"constraint {spec!r} has an empty part; write e.g. 'sn+gp'")
    infos = [get(p) for p in parts]
    if len(infos) > 1:
        if "none" in parts:
            raise ArgumentError("'none' cannot be combined with other constraints; drop it")
        seen: dict[str, str] = {}
        for info in infos:
            if info.name in seen.values():
                raise ArgumentError(f"constraint {info.name!r} appears twice in {spec!r}")
            if info.group is not None and info.group in seen:
                raise ArgumentError(
                    f"{seen[info.group]!r} and {info.name!r} both constrain the critic "
                    f"through {info.group}; combine strategies that do different jobs"
                )
            if info.group is not None:
                seen[info.group] = info.name
            else:
                seen[f"_{info.name}"] = info.name
    return infos


def resolve_params(
    spec: str,
    family: str,
    penalty_weight: float | None = None,
    clip_value: float | None = None,
    options: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """Every part's final hyperparameters: defaults, then --lambda/--clip, then options.

    ``options`` keys are 'strategy.param'; an unknown strategy or parameter is an error.
    """
    infos = parse(spec)
    resolved = {info.name: info.defaults_for(family) for info in infos}
    for params in resolved.values():
        if penalty_weight is not None and "weight" in params:
            params["weight"] = penalty_weight
        if clip_value is not None and "c" in params:
            params["c"] = clip_value
    if penalty_weight is not None and not any("weight" in p for p in resolved.values()):
        raise ArgumentError(f"--lambda has no effect: {spec!r} has no penalty weight; drop it")
    if clip_value is not None and not any("c" in p for p in resolved.values()):
        raise ArgumentError(f"--clip has no effect: {spec!r} does not clip; drop it")
    for key, value in (options or {}).items():
        strategy, _, param = key.partition(".")
        if strategy not in resolved or param not in resolved[strategy]:
            valid = [f"{s}.{p}" for s, ps in resolved.items() for p in ps]
            raise ArgumentError(
                f"constraint option {key!r} does not exist; valid: {', '.join(valid) or 'none'}"
            )
        resolved[strategy][param] = float(value)
    return resolved


def build(
    spec: str,
    params: Mapping[str, Mapping[str, float]] | None = None,
    *,
    weight: float | None = None,
    c: float | None = None,
    family: str | None = None,
) -> Constraint:
    """Instantiate ``'gp'`` or a chain such as ``'sn+gp'``, for the engine or any loop.

    Each part starts from its registered defaults (for data ``family`` when given, e.g.
    lambda 0.1 on 'points'); ``weight`` then sets every part that has a ``weight`` and
    ``c`` every part that has a ``c`` (like ``--lambda``/``--clip``); ``params``, per part
    (``{"gp": {"weight": 1.0}}``), comes last. The engine passes resolved ``params``.
    """
    infos = parse(spec)
    if family is not None:
        check_family(family)
    resolved = {i.name: i.defaults_for(family) if family else dict(i.params) for i in infos}
    for name, value in (("weight", weight), ("c", c)):
        if value is None:
            continue
        if not any(name in p for p in resolved.values()):
            raise ArgumentError(f"{name}= has no effect: {spec!r} has no {name!r}; drop it")
        for part in resolved.values():
            if name in part:
                part[name] = value
    for part, overrides in (params or {}).items():
        if part not in resolved:
            raise ArgumentError(f"{part!r} is not a part of {spec!r}; parts: {', '.join(resolved)}")
        unknown = [k for k in overrides if k not in resolved[part]]
        if unknown:
            valid = ", ".join(f"{part}.{p}" for p in resolved[part]) or "none"
            raise ArgumentError(f"'{part}.{unknown[0]}' does not exist; valid: {valid}")
        resolved[part].update(overrides)
    parts = []
    for info in infos:
        try:
            parts.append(info.factory(**_typed(info, resolved[info.name])))
        except ArgumentTypeError as exc:
            raise ArgumentTypeError(f"constraint {info.name!r}: {exc}") from None
        except ValueError as exc:
            raise ArgumentError(f"constraint {info.name!r}: {exc}") from None
    return parts[0] if len(parts) == 1 else Chain(parts)


def _typed(info: StrategyInfo, params: Mapping[str, float]) -> dict[str, Any]:
    """Cast each value to the type of its default; a whole-number parameter gets one."""
    signature = inspect.signature(info.factory).parameters
    typed: dict[str, Any] = {}
    for key, value in params.items():
        default = signature[key].default if key in signature else None
        if isinstance(default, int) and not isinstance(default, bool):
            if not float(value).is_integer():
                raise ArgumentError(f"{info.name}.{key} must be a whole number, got {value:g}")
            value = int(value)
        typed[key] = value
    return typed


def optimizer_for(spec: str) -> OptimizerDefaults:
    """The recommended optimiser of ``spec``; for a chain, the most conservative of its
    parts' recommendations, whatever their order (docs/extending.md).

    RMSprop (no momentum) wins over Adam: a strategy recommends it because momentum
    destabilises it (clipping, in the WGAN paper), and that does not stop being true when
    a penalty is added. Between recommendations of the same optimiser the smaller
    learning rate wins, then the betas and the description, so the choice is total.
    """
    recommendations = {info.optimizer for info in parse(spec)}
    return min(
        recommendations,
        key=lambda o: (o.name != "rmsprop", o.lr, o.for_family("images")[1], o.describe()),
    )
