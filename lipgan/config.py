"""Training configuration: one typed dataclass, loadable from TOML, validated once.

``TrainConfig`` holds what the user asked for; ``None`` in a strategy-dependent
field (learning rate, betas ...) means "the strategy's default". The strategy's own
parameters live in one place, ``constraint_options`` ('gp.weight', 'clip.c' ...):
``--lambda`` and ``--clip`` are shorthands folded into it at the edge
(``fold_shorthands``), and config files written before that (with ``penalty_weight`` /
``clip_value``) are migrated when they are read. ``resolve`` fills the rest for the
chosen strategy and data, so the config saved into a run folder is complete and
re-running it reproduces the run.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import tomli_w

from lipgan.errors import ConfigError


@dataclass
class TrainConfig:
    # what to train
    constraint: str = "gp"
    """Lipschitz strategy name, or several joined with '+' (see `lipgan constraints`)."""
    data: str = "8gaussians"
    """Data set: a toy name, 'digits', or KIND:PATH (see `lipgan data`)."""
    seed: int = 0
    """Seed for every random draw (data order, noise, interpolation)."""

    # budget and schedule
    iters: int | None = None
    """Generator iterations (default 2000 on 2-D points, 1000 on images and text)."""
    n_critic: int | None = None
    """Critic updates per generator update (default: the strategy's recommendation, 5, or 3
    for Adam strategies on 2-D points; 1 for the one-step schedule)."""
    batch_size: int | None = None
    """Samples per step, across all processes (default 256; 64 for text, as the paper)."""
    schedule: str = "alternating"
    """'alternating' (n_critic critic steps, then one generator step) or 'one-step'."""
    generator_weight: float = 1.0
    """One-step schedule only: weight of the generator part of the single loss."""
    penalty_every: int = 1
    """Apply the penalty every k critic steps, scaled by k (lazy regularisation)."""
    critic_warmup: bool = False
    """WGAN warm-up: 100 critic steps for the first 25 generator iterations and every 500th."""

    # optimisation (None: the strategy's recommended value)
    optimizer: str | None = None
    """'adam' or 'rmsprop'."""
    lr: float | None = None
    """Critic learning rate (and generator's unless generator_lr is set)."""
    generator_lr: float | None = None
    """Generator learning rate; set it apart from lr for TTUR."""
    betas: tuple[float, float] | None = None
    """Adam betas."""
    lr_decay: str | None = None
    """Learning-rate schedule over the run: 'constant', 'linear' or 'cosine' (from the full
    rate at the first iteration towards 0 at the end of the budget); default: linear for
    Adam strategies on 2-D points, constant otherwise."""
    constraint_options: dict[str, float] = field(default_factory=dict)
    """The strategy's parameters as 'strategy.param' = value ('gp.weight', 'clip.c',
    'sn.power_iterations'); unset ones take the strategy's defaults."""
    ema_decay: float = 0.999
    """Decay of the generator's weight average (EMA) that metrics and samples come from,
    with a warm-up min(decay, (1+t)/(10+t)); 0 turns it off (metrics from the generator)."""

    # models
    hidden: int | None = None
    """MLP width (default 512) / base channels of conv (64) and text (32) models."""
    critic_layers: int = 3
    """Hidden layers of the MLP critic."""
    generator_layers: int = 3
    """Hidden layers of the MLP generator."""
    z_dim: int | None = None
    """Noise dimension (default: 2 for toy data, 128 otherwise)."""
    critic_norm: str = "none"
    """Normalisation inside the critic: 'none', 'layer' or 'batch' (not with a penalty)."""
    architecture: str = "auto"
    """'auto' (by data), 'mlp', 'dcgan', 'resnet' or 'text'."""

    # data options
    image_size: int | None = None
    """Resize image data to this size (default: the data's own size)."""
    channels: int | None = None
    """1 (grayscale) or 3 (RGB) for image folders."""
    seq_len: int = 32
    """Characters per sequence for text data."""

    # logging and outputs
    log_every: int = 50
    """Compute metrics every k generator iterations."""
    sample_every: int = 250
    """Write a sample picture every k generator iterations."""
    checkpoint_every: int = 500
    """Write last.pt and a numbered checkpoint every k generator iterations (and at the end)."""
    keep: int = 3
    """Numbered checkpoints kept (the oldest are deleted)."""
    eval_samples: int = 512
    """Samples used for quality metrics (per set on toy data, see eval_sets)."""
    eval_sets: int = 4
    """Toy data: W1 and its floor are means over this many independent sets of
    eval_samples generated and real points (one set's W1 varies by ~0.03 at 512 points).
    Images and text use one set."""
    out: str | None = None
    """Run folder (default runs/<constraint>__<data>__s<seed>__<time>)."""

    # execution
    device: str = "auto"
    """'auto', 'cpu' or 'cuda'."""
    precision: str = "fp32"
    """'fp32', 'bf16' (autocast), 'fp16' (autocast + gradient scaler, CUDA only) or 'auto'
    (bf16 where the hardware runs it fast: AMX or AVX-512-BF16 CPUs, CUDA compute
    capability 8.0+; fp32 elsewhere; the run's config.toml keeps the choice)."""
    precision_auto: bool = False
    """Written by the run: precision was chosen by 'auto' on the machine the run started
    on (a resume keeps that choice on any machine)."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice; 1 is faster on a busy shared machine)."""
    compile: bool = False
    """torch.compile the parts that are sound to compile."""
    on_nan: str = "stop"
    """On a non-finite loss: 'stop', or 'rollback' to the last good checkpoint."""
    max_rollbacks: int = 3
    """Rollbacks allowed before the run stops."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (no None), as written to config.toml."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                value = list(value)
            if isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        data = _migrate(data, source)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option {unknown[0]!r}; valid options are listed by "
                "`lipgan train --help`"
            )
        config = cls()
        return replace(config, source=source, **data)


@functools.cache
def field_docs() -> dict[str, str]:
    """Each field's doc (the string under it above), one line: the CLI's help texts."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(TrainConfig)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


# The options --lambda and --clip: the parameter they set in every part that has it.
SHORTHANDS = {"penalty_weight": "weight", "clip_value": "c"}


def fold_shorthands(
    constraint: str, penalty_weight: float | None = None, clip_value: float | None = None
) -> dict[str, float]:
    """--lambda / --clip as 'strategy.param' options: the weight of every part of the chain
    that has one (c of every part that clips); refused when no part has it."""
    from lipgan.constraints import registry

    if penalty_weight is not None and not (math.isfinite(penalty_weight) and penalty_weight >= 0):
        raise ConfigError(f"--lambda must be >= 0, got {penalty_weight:g}")
    if clip_value is not None and not (math.isfinite(clip_value) and clip_value > 0):
        raise ConfigError(f"--clip must be > 0, got {clip_value:g}")
    params = registry.resolve_params(constraint, "", penalty_weight, clip_value)
    given = {"weight": penalty_weight, "c": clip_value}
    return {
        f"{part}.{key}": value
        for part, values in params.items()
        for key, value in values.items()
        if given.get(key) is not None
    }


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """An older config in today's form.

    - A run's saved (resolved) config from before ``lr_decay`` existed trained with a
      constant learning rate: keep it, so it resumes and reproduces as it ran.
    - Before the shorthands were folded in (penalty_weight, clip_value at the top level);
      its own options still win, as they did then.
    """
    if "lr_decay" not in data and "optimizer" in data and "n_critic" in data:
        data = {**data, "lr_decay": "constant"}
    if not any(k in data for k in SHORTHANDS):
        return data
    shorthands = {k: _coerce(k, data[k], float, source) for k in SHORTHANDS if k in data}
    data = {k: v for k, v in data.items() if k not in SHORTHANDS}
    if any(v is not None for v in shorthands.values()):
        folded = fold_shorthands(str(data.get("constraint", TrainConfig.constraint)), **shorthands)
        data["constraint_options"] = {**folded, **dict(data.get("constraint_options") or {})}
    return data


def strategy_param(config: TrainConfig, param: str) -> float | None:
    """The value of ``param`` (e.g. 'c') in a resolved config, if one part of it has it."""
    values = [v for k, v in config.constraint_options.items() if k.endswith(f".{param}")]
    return values[0] if len(values) == 1 else None


def replace(config: TrainConfig, source: str = "option", **changes: Any) -> TrainConfig:
    """A copy with ``changes`` applied, each coerced to its field's type."""
    hints = get_type_hints(TrainConfig)
    coerced = {name: _coerce(name, value, hints[name], source) for name, value in changes.items()}
    return dataclasses.replace(config, **coerced)


def _coerce(name: str, value: Any, hint: Any, source: str) -> Any:
    if value is None:
        return None
    if get_origin(hint) in (Union, UnionType):
        hint = next(t for t in get_args(hint) if t is not type(None))
    target = hint
    origin = get_origin(target) or target
    try:
        if origin is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if origin is int:
            if isinstance(value, bool | str) or not float(value).is_integer():
                raise TypeError
            return int(value)
        if origin is float:
            if isinstance(value, bool | str):  # TOML has numbers: "1e-4" is a typo
                raise TypeError
            return float(value)
        if origin is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if origin is tuple:
            items = tuple(float(v) for v in value)
            if len(items) != 2:
                raise TypeError
            return items
        if origin is dict:
            return {str(k): float(v) for k, v in dict(value).items()}
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{source}: {name} = {value!r} is not a valid {_type_name(target)}")


def _type_name(target: Any) -> str:
    origin = get_origin(target) or target
    return {
        bool: "true/false",
        int: "whole number",
        float: "number",
        str: "string",
        tuple: "pair of numbers",
        dict: "table of numbers",
    }.get(origin, str(target))


def load_toml(path: Path) -> TrainConfig:
    """Read a config file; a missing or malformed file raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc})") from None
    return TrainConfig.from_dict(data, source=str(path))


def dump_toml(config: TrainConfig) -> str:
    return tomli_w.dumps(config.to_dict())


CHOICES: dict[str, tuple[str, ...]] = {
    "schedule": ("alternating", "one-step"),
    "optimizer": ("adam", "rmsprop"),
    "critic_norm": ("none", "layer", "batch"),
    "architecture": ("auto", "mlp", "dcgan", "resnet", "text"),
    "device": ("auto", "cpu", "cuda"),
    "precision": ("fp32", "bf16", "fp16", "auto"),
    "on_nan": ("stop", "rollback"),
    "lr_decay": ("constant", "linear", "cosine"),
}

# (minimum, inclusive?) for numeric options; checked when the value is not None.
LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "iters": (1, True),
    "n_critic": (1, True),
    "batch_size": (1, True),
    "generator_weight": (0, False),
    "penalty_every": (1, True),
    "lr": (0, False),
    "generator_lr": (0, False),
    "hidden": (1, True),
    "critic_layers": (1, True),
    "generator_layers": (1, True),
    "z_dim": (1, True),
    "image_size": (4, True),
    "seq_len": (2, True),
    "log_every": (1, True),
    "sample_every": (1, True),
    "checkpoint_every": (1, True),
    "keep": (1, True),
    "eval_samples": (16, True),
    "eval_sets": (1, True),
    "max_rollbacks": (0, True),
    "threads": (1, True),
}

MAX_SEED = 2**32 - 1
"""Seeds fit numpy's legacy seeding and leave torch room for derived streams."""

CLI_NAMES = {"penalty_weight": "--lambda", "clip_value": "--clip", "constraint_options": "--option"}


def option_name(name: str) -> str:
    return CLI_NAMES.get(name, "--" + name.replace("_", "-"))


def validate(config: TrainConfig) -> None:
    """Check every value once, at the edge; raise ConfigError naming the fix."""
    for name, choices in CHOICES.items():
        value = getattr(config, name)
        if value is not None and value not in choices:
            raise ConfigError(f"{option_name(name)} {value!r} is not one of: {', '.join(choices)}")
    for name, (low, inclusive) in LOWER_BOUNDS.items():
        value = getattr(config, name)
        if value is None:
            continue
        if not math.isfinite(value) or value < low or (not inclusive and value == low):
            relation = ">=" if inclusive else ">"
            raise ConfigError(f"{option_name(name)} must be {relation} {low:g}, got {value:g}")
    if not 0 <= config.seed <= MAX_SEED:
        raise ConfigError(f"--seed must be between 0 and {MAX_SEED}, got {config.seed}")
    if config.betas is not None:
        b1, b2 = config.betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ConfigError(f"--betas must both lie in [0, 1), got {b1:g},{b2:g}")
    if not (math.isfinite(config.ema_decay) and 0 <= config.ema_decay < 1):
        raise ConfigError(
            f"--ema-decay must lie in [0, 1) (0 turns it off), got {config.ema_decay:g}"
        )
    if config.channels is not None and config.channels not in (1, 3):
        raise ConfigError(f"--channels must be 1 or 3, got {config.channels}")
    from lipgan.constraints import registry

    registry.resolve_params(config.constraint, "", options=config.constraint_options)
    if config.schedule == "one-step" and config.critic_warmup:
        raise ConfigError(
            "--critic-warmup adds critic steps to the alternating schedule; drop it or use "
            "--schedule alternating"
        )
    if config.schedule == "one-step" and config.n_critic not in (None, 1):
        raise ConfigError(
            "--schedule one-step updates both networks together; set --n-critic 1 with it"
        )
