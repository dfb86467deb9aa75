"""Search spaces: each range draws inside its bounds on its scale, every strategy's declared
space holds its defaults, and draw k gives every strategy the same shared values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lipgan import constraints as registry
from lipgan import engine
from lipgan.config import TrainConfig
from lipgan.errors import ConfigError
from lipgan.tune import space as spaces
from lipgan.tune.space import Choice, IntRange, LogUniform, Uniform

FAMILIES = ("points", "images", "text")
N = 4000


def draws(r, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([r.sample(rng) for _ in range(n)], dtype=float)


def test_log_uniform_draws_are_uniform_in_log_space_and_not_in_linear_space():
    r = LogUniform(1e-5, 1e-2)
    x = draws(r)
    assert x.min() >= 1e-5 and x.max() <= 1e-2
    logs = (np.log(x) - math.log(1e-5)) / (math.log(1e-2) - math.log(1e-5))
    assert stats.kstest(logs, "uniform").pvalue > 0.01
    # the same test rejects the linear scale: it can fail
    assert stats.kstest((x - 1e-5) / (1e-2 - 1e-5), "uniform").pvalue < 1e-6


def test_uniform_draws_are_uniform_and_not_log_uniform():
    x = draws(Uniform(0.0, 0.99))
    assert x.min() >= 0.0 and x.max() <= 0.99
    assert stats.kstest(x / 0.99, "uniform").pvalue > 0.01
    y = draws(Uniform(1.0, 100.0))
    logs = np.log(y) / math.log(100.0)
    assert stats.kstest(logs, "uniform").pvalue < 1e-6


@pytest.mark.parametrize("r", [IntRange(1, 3), IntRange(2, 9), Choice((0.0, 0.99, 0.999, 0.9999))])
def test_discrete_draws_hit_every_value_equally_often(r):
    x = draws(r)
    values = list(range(r.low, r.high + 1)) if isinstance(r, IntRange) else list(r.options)
    counts = np.array([(x == v).sum() for v in values])
    assert counts.sum() == N  # nothing outside
    assert stats.chisquare(counts).pvalue > 0.01


def test_log_int_range_favours_small_values_and_stays_inside():
    x = draws(IntRange(1, 1000, log=True))
    assert x.min() >= 1 and x.max() <= 1000 and np.all(x == np.round(x))
    assert np.median(x) < 100  # log-uniform median ~ sqrt(1000) = 32; linear would be ~500


def parts_of(name: str, family: str):
    return {i.name: (i.factory, i.defaults_for(family)) for i in registry.parse(name)}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", registry.names())
def test_every_strategy_space_names_real_parameters_and_holds_its_defaults(name, family):
    space = spaces.study_space(parts_of(name, family), family)  # unknown names raise
    resolved = engine.resolve(TrainConfig(constraint=name, data="8gaussians"), family)
    for key, r in space.ranges().items():
        if key in spaces.ADAM_ONLY:
            if resolved.betas is None:
                continue
            value = resolved.betas[spaces.ADAM_ONLY.index(key)]
        elif "." in key:
            value = resolved.constraint_options[key]
        else:
            value = getattr(resolved, key)
        assert r.contains(value), f"{name} on {family}: default {key}={value} outside {r}"


def test_penalty_weights_follow_compare_gan_and_reach_a_decade_lower_on_points():
    gp = registry.get("gp")
    assert spaces.declared(gp.factory).for_family("images")["weight"] == LogUniform(0.1, 100.0)
    assert spaces.declared(gp.factory).for_family("points")["weight"] == LogUniform(0.01, 100.0)
    assert spaces.declared(registry.get("clip").factory).ranges["c"] == LogUniform(1e-3, 1.0)
    assert spaces.SHARED["lr"] == LogUniform(1e-5, 1e-2)  # critic lr up to 1e-2 for sn & co.
    sn_ranges = spaces.declared(registry.get("sn").factory).ranges
    assert sn_ranges["group_size"] == Choice((1, 0, 2))  # 1, the default: its ReLUs


def test_draw_k_gives_every_strategy_the_same_shared_values():
    gp = spaces.study_space(parts_of("gp", "points"), "points")
    sn = spaces.study_space(parts_of("sn", "points"), "points")
    for k in range(10):
        a, b = gp.draw(7, k), sn.draw(7, k)
        assert {n: a[n] for n in spaces.SHARED} == {n: b[n] for n in spaces.SHARED}
        assert "gp.weight" in a and "sn.power_iterations" in b and "hidden" in b
    assert gp.draw(7, 1) == gp.draw(7, 1)  # the same seed, the same trial
    assert gp.draw(7, 1) != gp.draw(8, 1) and gp.draw(7, 1) != gp.draw(7, 2)


def test_a_chain_tunes_each_part():
    space = spaces.study_space(parts_of("sn+gp", "images"), "images")
    assert {"gp.weight", "sn.power_iterations", "hidden"} <= set(space.strategy)


def test_a_space_file_replaces_ranges_and_bad_ones_are_refused(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        "[shared]\nn_critic = {choice = [1, 5]}\n[gp]\nweight = {log_uniform = [1, 10]}\n"
    )
    space = spaces.study_space(parts_of("gp", "points"), "points", spaces.load_space_file(path))
    assert space.shared["n_critic"] == Choice((1, 5))
    assert space.strategy["gp.weight"] == LogUniform(1.0, 10.0)
    assert space.shared["lr"] == spaces.SHARED["lr"]  # untouched knobs keep theirs
    bad = {
        "[sn]\npower_iterations = {int = [1, 2]}\n": "names no part",
        "[gp]\nwidth = {int = [1, 2]}\n": "neither one of its parameters",
        "[shared]\nlr = {log_uniform = [0, 1]}\n": "low > 0",
        "[shared]\nlr = {normal = [0, 1]}\n": "write one of",
        "[shared]\nmomentum = {uniform = [0, 1]}\n": "no knob",
    }
    for text, needle in bad.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=needle):
            spaces.study_space(parts_of("gp", "points"), "points", spaces.load_space_file(path))
