"""Frechet distance in closed form; the cached feature classifier on digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lipgan import data as datasets
from lipgan import quality
from lipgan.data.images import to_float
from lipgan.quality import FrechetScorer, frechet_distance


def test_frechet_identical_is_zero_and_shift_is_squared_distance():
    gen = np.random.default_rng(0)
    a = gen.normal(size=(5, 5))
    sigma = a @ a.T + np.eye(5)
    mu = gen.normal(size=5)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(14.25, rel=1e-8)


def test_frechet_one_dimensional_closed_form():
    # N(m1, s1^2), N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    value = frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]])
    )
    assert value == pytest.approx(9.0 + 1.0, rel=1e-10)


def test_classifier_cached_and_floor(tmp_path, monkeypatch):
    monkeypatch.setenv("LIPGAN_CACHE_DIR", str(tmp_path))
    d = datasets.load("digits", image_size=None, channels=None, seq_len=32, seed=0)
    rng_before = torch.get_rng_state()
    scorer = FrechetScorer.for_data(d)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training leaves the caller's RNG
    (info_file,) = (tmp_path / "frechet").glob("*.json")
    info = json.loads(info_file.read_text())
    assert info["test_accuracy"] == scorer.info["test_accuracy"]
    assert info["test_accuracy"] > 0.85 and info["test_images"] == 180
    # held-out real images as "fakes" score exactly the floor; noise scores far above it
    metrics = scorer.evaluate(to_float(d.heldout))
    assert metrics["quality/frechet"] == metrics["quality/frechet_floor"]
    noise = torch.rand(512, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert scorer.evaluate(noise)["quality/frechet"] > 5 * metrics["quality/frechet_floor"]
    assert np.isnan(scorer.evaluate(torch.full((8, 1, 8, 8), float("nan")))["quality/frechet"])

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(quality, "train_classifier", no_training)
    again = FrechetScorer.for_data(d)
    np.testing.assert_array_equal(again.features(d.heldout), scorer.features(d.heldout))
