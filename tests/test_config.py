"""TrainConfig validation: every range and choice at its boundary, TOML round trips."""

from __future__ import annotations

import math
from pathlib import Path
from typing import get_args, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lipgan.config import (
    CHOICES,
    LOWER_BOUNDS,
    MAX_SEED,
    TrainConfig,
    dump_toml,
    fold_shorthands,
    load_toml,
    option_name,
    replace,
    validate,
)
from lipgan.errors import ConfigError


def with_value(name: str, value) -> TrainConfig:
    return replace(TrainConfig(), **{name: value})


def is_whole(name: str) -> bool:
    return int in get_args(get_type_hints(TrainConfig)[name]) or (
        get_type_hints(TrainConfig)[name] is int
    )


@pytest.mark.parametrize("name", sorted(LOWER_BOUNDS))
def test_every_lower_bound_holds_exactly_at_its_boundary(name: str) -> None:
    low, inclusive = LOWER_BOUNDS[name]
    step = 1 if is_whole(name) else 1e-9
    if inclusive:
        validate(with_value(name, low))  # the boundary itself is allowed
    else:
        with pytest.raises(ConfigError, match=f"^{option_name(name)} must be > "):
            validate(with_value(name, low))
    validate(with_value(name, low + step))
    with pytest.raises(ConfigError) as error:
        validate(with_value(name, low - step))
    relation = ">=" if inclusive else ">"
    assert str(error.value).startswith(f"{option_name(name)} must be {relation} {low:g}, got ")


@pytest.mark.parametrize("name", [n for n in sorted(LOWER_BOUNDS) if not is_whole(n)])
def test_non_finite_numbers_are_refused(name: str) -> None:
    for value in (math.nan, math.inf):
        with pytest.raises(ConfigError, match=f"^{option_name(name)} must be"):
            validate(with_value(name, value))


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_every_choice_is_accepted_and_anything_else_refused(name: str) -> None:
    for value in CHOICES[name]:
        validate(replace(TrainConfig(), **{name: value}))
    with pytest.raises(ConfigError) as error:
        validate(with_value(name, "nope"))
    assert str(error.value) == (
        f"{option_name(name)} 'nope' is not one of: {', '.join(CHOICES[name])}"
    )


def test_cli_names_of_renamed_fields() -> None:
    assert option_name("penalty_weight") == "--lambda"
    assert option_name("clip_value") == "--clip"
    assert option_name("batch_size") == "--batch-size"


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED])
def test_seeds_in_range_pass(seed: int) -> None:
    validate(with_value("seed", seed))


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**70])
def test_seeds_out_of_range_are_refused(seed: int) -> None:
    with pytest.raises(ConfigError, match=f"^--seed must be between 0 and {MAX_SEED}, got {seed}$"):
        validate(with_value("seed", seed))


@pytest.mark.parametrize(
    ("betas", "ok"),
    [((0.0, 0.9), True), ((0.5, 0.999), True), ((1.0, 0.9), False), ((0.5, -0.1), False)],
)
def test_betas_lie_in_zero_one(betas, ok: bool) -> None:
    config = with_value("betas", betas)
    if ok:
        validate(config)
    else:
        with pytest.raises(ConfigError, match=r"^--betas must both lie in \[0, 1\)"):
            validate(config)


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("iters", 1.5, "whole number"),
        ("iters", True, "whole number"),
        ("iters", "10", "whole number"),
        ("lr", "fast", "number"),
        ("lr", "1e-4", "number"),
        ("lr", False, "number"),
        ("compile", 1, "true/false"),
        ("constraint", 3, "string"),
        ("betas", [0.5], "pair of numbers"),
        ("constraint_options", {"gp.weight": "x"}, "table of numbers"),
    ],
)
def test_wrong_types_are_named(name: str, value, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"is not a valid {kind}$"):
        TrainConfig.from_dict({name: value}, source="run.toml")


def test_unknown_keys_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="^run.toml: unknown option 'itres'"):
        TrainConfig.from_dict({"iters": 3, "itres": 4}, source="run.toml")


def test_a_missing_or_malformed_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; check the path$"):
        load_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("iters = = 3\n")
    with pytest.raises(ConfigError, match="is not valid TOML") as error:
        load_toml(bad)
    assert "\n" not in str(error.value)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_toml(binary)


@settings(max_examples=30, deadline=None)
@given(
    iters=st.integers(1, 10**6),
    lr=st.floats(1e-8, 1.0),
    betas=st.tuples(st.floats(0, 0.99), st.floats(0, 0.99)),
    options=st.dictionaries(st.sampled_from(["gp.weight", "sn.power_iterations"]), st.floats(0, 9)),
    seed=st.integers(0, MAX_SEED),
)
def test_a_saved_config_loads_back_equal(iters, lr, betas, options, seed) -> None:
    config = replace(
        TrainConfig(constraint="sn+gp"),
        iters=iters,
        lr=lr,
        betas=betas,
        constraint_options=options,
        seed=seed,
    )
    validate(config)
    restored = TrainConfig.from_dict(__import__("tomllib").loads(dump_toml(config)))
    assert restored == config


@pytest.mark.parametrize(
    ("old", "options"),
    [
        ({"constraint": "gp", "penalty_weight": 0.1}, {"gp.weight": 0.1}),
        ({"constraint": "clip", "clip_value": 0.02}, {"clip.c": 0.02}),
        # --lambda applied to the parts with a weight; the options won over it, as then.
        (
            {"constraint": "sn+gp", "penalty_weight": 5.0,
             "constraint_options": {"sn.power_iterations": 2.0}},
            {"gp.weight": 5.0, "sn.power_iterations": 2.0},
        ),
        (
            {"constraint": "r1+r2", "penalty_weight": 3.0,
             "constraint_options": {"r2.weight": 1.0}},
            {"r1.weight": 3.0, "r2.weight": 1.0},
        ),
    ],
)  # fmt: skip
def test_a_config_of_the_old_form_is_migrated_when_read(tmp_path, old, options) -> None:
    import tomli_w

    path = tmp_path / "config.toml"
    path.write_text(tomli_w.dumps(old))
    assert load_toml(path).constraint_options == options


def test_a_bad_old_lambda_is_named_like_the_option() -> None:
    with pytest.raises(ConfigError, match="penalty_weight = 'x' is not a valid number"):
        TrainConfig.from_dict({"penalty_weight": "x"}, source="run.toml")
    with pytest.raises(ConfigError, match="--lambda has no effect"):
        TrainConfig.from_dict({"constraint": "clip", "penalty_weight": 1.0})


def test_lambda_and_clip_fold_into_the_parts_that_have_them() -> None:
    assert fold_shorthands("sn+gp", penalty_weight=4.0) == {"gp.weight": 4.0}
    assert fold_shorthands("r1+r2", penalty_weight=2.0) == {"r1.weight": 2.0, "r2.weight": 2.0}
    assert fold_shorthands("clip", clip_value=0.1) == {"clip.c": 0.1}
    with pytest.raises(ConfigError, match="--lambda must be >= 0"):
        fold_shorthands("gp", penalty_weight=-1.0)
    with pytest.raises(ConfigError, match="--clip has no effect"):
        fold_shorthands("gp", clip_value=0.1)


def test_validate_checks_the_strategy_string_and_its_options() -> None:
    with pytest.raises(ConfigError, match="unknown constraint 'gq'"):
        validate(TrainConfig(constraint="gq"))
    with pytest.raises(ConfigError, match="empty part"):
        validate(TrainConfig(constraint="sn+"))
    with pytest.raises(ConfigError, match="constraint option 'clip.c' does not exist"):
        validate(TrainConfig(constraint="gp", constraint_options={"clip.c": 0.1}))
