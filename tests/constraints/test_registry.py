from __future__ import annotations

import pytest

from lipgan import constraints
from lipgan.constraints import registry
from lipgan.constraints.clipping import WeightClipping
from lipgan.constraints.gradient_penalty import GradientPenalty
from lipgan.errors import ConfigError


def test_the_five_paper_strategies_are_registered():
    assert {"none", "clip", "gp", "gp-one-sided", "fd"} <= set(constraints.names())


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ConfigError) as err:
        constraints.get("gradient-penalty")
    message = str(err.value)
    assert "unknown constraint 'gradient-penalty'" in message
    for name in ("clip", "fd", "gp", "gp-one-sided", "none"):
        assert name in message


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        constraints.register("gp", description="again")(GradientPenalty)


def test_hyperparameters_come_from_the_constructor_with_family_defaults():
    gp = constraints.get("gp")
    assert gp.params == {"weight": 10.0}
    assert gp.defaults_for("points") == {"weight": 0.1}
    assert gp.defaults_for("images") == {"weight": 10.0}
    clip = constraints.get("clip")
    assert clip.params == {"c": 0.01}
    assert clip.optimizer.name == "rmsprop" and clip.optimizer.lr == 5e-5


def test_lambda_and_clip_options_reach_the_right_parameters():
    params = constraints.resolve_params("gp", "points", penalty_weight=3.0)
    assert params == {"gp": {"weight": 3.0}}
    strategy = constraints.build("clip", constraints.resolve_params("clip", "images", None, 0.1))
    assert isinstance(strategy, WeightClipping) and strategy.c == 0.1


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ConfigError, match="--lambda has no effect"):
        constraints.resolve_params("clip", "points", penalty_weight=1.0)
    with pytest.raises(ConfigError, match="--clip has no effect"):
        constraints.resolve_params("gp", "points", clip_value=0.1)
    with pytest.raises(ConfigError, match="'gp.bogus' does not exist; valid: gp.weight"):
        constraints.resolve_params("gp", "points", options={"gp.bogus": 1.0})


def test_conflicting_and_malformed_combinations_are_refused():
    with pytest.raises(ConfigError, match="'gp' and 'fd' both constrain"):
        constraints.parse("gp+fd")
    with pytest.raises(ConfigError, match="'none' cannot be combined"):
        constraints.parse("none+gp")
    with pytest.raises(ConfigError, match="empty part"):
        constraints.parse("gp+")
    with pytest.raises(ConfigError, match="appears twice"):
        constraints.parse("clip+clip")


def test_a_chain_adds_penalties_and_runs_every_hook():
    chain = constraints.build(
        "clip+gp", constraints.resolve_params("clip+gp", "points", None, None)
    )
    assert isinstance(chain, constraints.Chain)
    assert [type(p) for p in chain.parts] == [WeightClipping, GradientPenalty]
    assert chain.needs_double_backward


@pytest.mark.parametrize("parts", [("clip", "gp"), ("clip", "r1"), ("sn", "dragan")])
def test_a_chain_trains_with_the_same_optimiser_in_either_order(parts):
    forward, backward = "+".join(parts), "+".join(reversed(parts))
    assert constraints.optimizer_for(forward) == constraints.optimizer_for(backward)


def test_a_chain_with_clipping_trains_with_rmsprop_whatever_the_order():
    # RMSprop wins: clipping is unstable with momentum, with or without a penalty beside it.
    for spec in ("clip+gp", "gp+clip", "clip+r1+r2", "r2+clip"):
        assert constraints.optimizer_for(spec) == constraints.RMSPROP
    assert constraints.optimizer_for("sn+gp") == constraints.ADAM


def test_between_two_recommendations_of_one_optimiser_the_smaller_lr_wins(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    slow = constraints.OptimizerDefaults("adam", 1e-5)
    constraints.register("test-slow-adam", description="test", optimizer=slow, group="t1")(
        lambda: constraints.Constraint()
    )
    assert constraints.optimizer_for("test-slow-adam+gp") == slow
    assert constraints.optimizer_for("gp+test-slow-adam") == slow


def test_whole_number_parameters_refuse_fractions():
    with pytest.raises(ConfigError, match="sn.power_iterations must be a whole number, got 1.5"):
        constraints.build("sn", {"sn": {"power_iterations": 1.5}})
    strategy = constraints.build("sn", {"sn": {"power_iterations": 2.0}})
    assert strategy.power_iterations == 2 and isinstance(strategy.power_iterations, int)


class BrokenEntryPoint:
    """An entry point whose import fails, as a missing module's does."""

    name, value = "broken", "lipgan_missing_mod"

    def load(self):
        raise ModuleNotFoundError("No module named 'lipgan_missing_mod'")


class FakeMetadata:
    def __init__(self, entries) -> None:
        self.entries, self.reads = entries, 0

    def entry_points(self, group: str):
        assert group == registry.ENTRY_POINT_GROUP
        self.reads += 1
        return self.entries


def test_a_plugin_that_fails_to_import_is_reported_on_every_lookup(monkeypatch):
    # Before: the first lookup raised, every later one listed the other strategies as if
    # the plugin did not exist.
    fake = FakeMetadata([BrokenEntryPoint()])
    monkeypatch.setattr(registry, "metadata", fake)
    monkeypatch.setattr(registry, "_plugin_failures", None)  # entry points not read yet
    expected = (
        "plugin 'broken' (lipgan_missing_mod) failed to load: No module named "
        "'lipgan_missing_mod'; fix or uninstall that package (pip uninstall ...)"
    )
    for lookup in (constraints.names, lambda: constraints.get("gp"), constraints.names,
                   lambda: constraints.build("gp")):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            lookup()
        assert str(err.value) == expected
    assert fake.reads == 1  # imported once, reported every time


def test_plugins_that_load_are_read_once(monkeypatch):
    fake = FakeMetadata([])
    monkeypatch.setattr(registry, "metadata", fake)
    monkeypatch.setattr(registry, "_plugin_failures", None)
    assert "gp" in constraints.names() and constraints.get("gp").name == "gp"
    assert fake.reads == 1
