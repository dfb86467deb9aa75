"""Frechet distance in closed form; the cached feature classifier on digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lipgan import data as datasets
from lipgan import quality
from lipgan.data.images import ImageData
from lipgan.quality import (
    FrechetScorer,
    MemorisationCheck,
    frechet_distance,
    scoring_split,
    to_float,
)


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
    scorer = d_scorer(d)
    assert torch.equal(torch.get_rng_state(), rng_before)  # training leaves the caller's RNG
    (info_file,) = (tmp_path / "frechet").glob("*.json")
    info = json.loads(info_file.read_text())
    assert info["test_accuracy"] == scorer.info["test_accuracy"]
    assert info["test_accuracy"] > 0.9 and info["test_images"] == 180
    assert info["train_images"] == 809  # the classifier sees half the training split
    classifier, floor, reference = scoring_split(len(d.train))
    assert (len(classifier), len(floor), len(reference)) == (809, 404, 404)
    assert len(set(torch.cat([classifier, floor, reference]).tolist())) == len(d.train)
    # the floor images as "fakes" score exactly the floor; noise scores far above it
    at_floor = scorer.evaluate(to_float(d.train[floor]))
    assert at_floor["quality/frechet"] == at_floor["quality/frechet_floor"]
    noise = torch.rand(512, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert scorer.evaluate(noise)["quality/frechet"] > 5 * at_floor["quality/frechet_floor"]
    # every feature metric scores the floor images at its floor (the same m, the same sets)
    floors = {k.removesuffix("_floor") for k in at_floor if k.endswith("_floor")}
    assert floors == {"quality/" + n for n in FEATURE_METRICS}
    for key in floors:
        assert at_floor[key] == at_floor[f"{key}_floor"], key
    noisy = scorer.evaluate(noise)
    assert noisy["quality/kid"] > 20 * abs(at_floor["quality/kid_floor"])
    assert noisy["quality/precision"] < 0.2 < 0.8 < at_floor["quality/precision_floor"]
    assert noisy["quality/coverage"] < 0.2 < 0.8 < at_floor["quality/coverage_floor"]
    assert np.isnan(scorer.evaluate(torch.full((8, 1, 8, 8), float("nan")))["quality/frechet"])

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(quality, "train_classifier", no_training)
    again = d_scorer(d)
    np.testing.assert_array_equal(again.features(d.heldout), scorer.features(d.heldout))
    check_heldout_at_floor(d, scorer)  # here: one classifier training for both tests


FEATURE_METRICS = ("frechet", "frechet_inf", "kid", "precision", "recall", "density", "coverage")


def d_scorer(d) -> FrechetScorer:
    return FrechetScorer.for_data(d.name, d.train, d.train_labels, d.heldout, d.heldout_labels)


def check_heldout_at_floor(d, scorer: FrechetScorer) -> None:
    """A perfect generator (unseen real images) scores the floor within noise; the old
    scheme put the floor far above where a generator could land (a held-out tail written
    by other people, against images the classifier was trained on)."""
    _, floor, _ = scoring_split(len(d.train))
    heldout = scorer.evaluate(d.heldout)  # m = 180 images, as are the floor's
    # the spread of the floor's own estimate at m = 180: disjoint sets of unseen images
    floors = [scorer.evaluate(d.train[floor[i : i + 180]])["quality/frechet"] for i in (0, 180)]
    assert heldout["quality/frechet_floor"] == floors[0]
    spread = abs(floors[1] - floors[0]) + 0.25 * floors[0]
    assert abs(heldout["quality/frechet"] - heldout["quality/frechet_floor"]) < spread
    assert heldout["quality/frechet"] < 2 * heldout["quality/frechet_floor"]


def test_memorisation_flags_copies_not_new_images():
    d = datasets.load("digits", image_size=None, channels=None, seq_len=32, seed=0)
    # held-out images split in two: the second half plays a generator of new images
    check = MemorisationCheck(d.train, d.heldout[:90])
    new = check.evaluate(to_float(d.heldout[90:]))["quality/memorisation"]
    assert 0.8 < new < 1.25
    copies = check.evaluate(to_float(d.train[:512]))["quality/memorisation"]
    assert copies == pytest.approx(0.0, abs=0.01)
    half = torch.cat([d.train[:45], d.heldout[90:135]])  # copies half of its samples
    assert check.evaluate(half)["quality/memorisation"] < 0.8 * new
    noise = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert check.evaluate(noise)["quality/memorisation"] > 2


def test_nearest_distances_exact():
    train = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)  # [-1, 1], [1, 1]
    fake = torch.tensor([[[[-1.0, 1.0]]], [[[0.0, 0.0]]], [[[3.0, 1.0]]]])
    torch.testing.assert_close(
        quality.nearest_distances(fake, train),
        torch.tensor([0.0, 2**0.5, 2.0], dtype=torch.float64),
        rtol=0,
        atol=1e-7,
    )


def test_unlabelled_images_get_the_memorisation_ratio_only():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8, generator=gen)
    data = ImageData("x", images[:30], images[30:])
    metrics = data.evaluate(to_float(images[:8]), seed=0)
    assert metrics == {"quality/memorisation": 0.0}
