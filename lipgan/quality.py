"""Sample-quality measures that need no download (docs/quality.md).

- Frechet distance between Gaussians fitted to classifier features of generated and
  real images. The classifier is a small CNN trained here, once per data set, on CPU,
  and cached (``LIPGAN_CACHE_DIR``, else the platform cache folder) with its test
  accuracy beside it; FID's Inception weights would need a download. Beside it, in the
  same features: its extrapolation to infinitely many samples (FD-infinity), the kernel
  distance (KID) and precision, recall, density and coverage; each with its real-vs-real
  floor at the same sample count.
- Memorisation: how close samples lie to their nearest training image, relative to how
  close unseen real images lie (pixel space; any image data, labelled or not).
- Jensen-Shannon divergence (in nats: 0 for equal distributions, ln 2 for disjoint
  ones) between character n-gram distributions, as in the paper's language model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipgan.runio import atomic_write_bytes, atomic_write_text

CLASSIFIER_VERSION = 2  # bump when FeatureNet or its training changes: old caches go stale
FEATURES = 64
REFERENCE_IMAGES = 10_000
FLOOR_IMAGES = 5_000
MEMORISATION_SAMPLES = 256  # samples checked against every training image at a log step
MEMORISATION_HELDOUT = 1_024  # held-out images checked once
SPLIT_SEED = 0  # fixed: every run on the same data is scored by the same classifier and sets
KID_SUBSETS = 100  # Binkowski et al. 2018's defaults: 100 subsets of at most 1000 samples
KID_SUBSET_SIZE = 1000
NEAREST_K = 5  # k of the k-NN manifolds (Naeem et al. 2020; PyTorch-StudioGAN uses 5)
FD_INF_FRACTIONS = (0.5, 0.625, 0.75, 0.875, 1.0)  # sample counts of the 1/N fit, of m
FD_INF_DRAWS = 10  # subsets per count: with one, digits' floor FD-infinity spreads +-15
SUBSET_SEED = 0  # the metrics' own subsets: fixed, and never the training RNG


def to_float(images: Tensor) -> Tensor:
    """uint8 in [0, 255] -> float in [-1, 1]."""
    return images.float() / 127.5 - 1.0


# --- Jensen-Shannon divergence of n-gram distributions ----------------------------------------


def ngram_counts(strings: Iterable[str], n: int) -> Counter[str]:
    """Counts of the character n-grams inside each string (none span two strings)."""
    counts: Counter[str] = Counter()
    for s in strings:
        counts.update(s[i : i + n] for i in range(len(s) - n + 1))
    return counts


def js_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence in nats of two count tables (normalised here).

    0 for identical distributions, ln 2 for disjoint ones; NaN when either is empty.
    """
    keys = sorted(set(p) | set(q))
    a = np.array([p.get(k, 0) for k in keys], dtype=np.float64)
    b = np.array([q.get(k, 0) for k in keys], dtype=np.float64)
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log(x[nz] / m[nz])).sum())

    return max(0.0, 0.5 * kl(a) + 0.5 * kl(b))


# --- Frechet distance ------------------------------------------------------------------------


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased) of features (n, d)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Frechet (2-Wasserstein squared)
    distance between two Gaussians. A near-singular product gets a tiny ridge, as in FID."""
    from scipy.linalg import sqrtm

    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        return float("nan")
    diff = mu1 - mu2
    covmean = sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        ridge = np.eye(len(sigma1)) * 1e-6
        covmean = sqrtm((sigma1 + ridge) @ (sigma2 + ridge))
    covmean = np.real(covmean)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def frechet_infinity(
    features: np.ndarray, reference: tuple[np.ndarray, np.ndarray]
) -> float | None:
    """The Frechet distance extrapolated to infinitely many samples (Chong & Forsyth 2020).

    FD at N samples is biased upwards by about k/N, so FD is measured on random subsets
    of N = 50%, 62.5% ... 100% of ``features`` (FD_INF_DRAWS subsets each, averaged),
    fitted by a line in 1/N, and read at 1/N = 0. None when the smallest subset has too
    few samples for a full-rank covariance. The reference's own finite size is not
    extrapolated away: compare the value with its floor. May fall below 0 by noise.
    """
    counts = sorted({int(len(features) * f) for f in FD_INF_FRACTIONS})
    if counts[0] <= features.shape[1] + 1 or len(counts) < 3:
        return None
    if not np.isfinite(features).all():
        return float("nan")
    distance = _FixedReference(*reference)
    pick = np.random.default_rng(SUBSET_SEED)
    values = []
    for n in counts:
        draws = 1 if n == len(features) else FD_INF_DRAWS  # all of them: one subset
        subsets = [pick.choice(len(features), n, replace=False) for _ in range(draws)]
        values.append(np.mean([distance(features[s]) for s in subsets]))
    _, intercept = np.polyfit(1.0 / np.asarray(counts), values, 1)
    return float(intercept)


class _FixedReference:
    """``frechet_distance`` to one reference Gaussian, by one symmetric eigenvalue problem
    per call: Tr((S R)^(1/2)) is the sum of the square roots of the eigenvalues of
    R^(1/2) S R^(1/2), so R^(1/2) is taken once (about 10x cheaper than ``sqrtm``)."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray) -> None:
        values, vectors = np.linalg.eigh(sigma)
        self.mu = mu
        self.root = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        self.trace = float(np.trace(sigma))

    def __call__(self, features: np.ndarray) -> float:
        mu, sigma = gaussian_stats(features)
        eigenvalues = np.linalg.eigvalsh(self.root @ sigma @ self.root)
        diff = mu - self.mu
        cross = np.sqrt(np.clip(eigenvalues, 0, None)).sum()
        return float(max(diff @ diff + np.trace(sigma) + self.trace - 2 * cross, 0.0))


# --- kernel distance (KID) -------------------------------------------------------------------


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3, KID's kernel (d: the feature dimension)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimate of the squared MMD between samples x (m, d) and y (n, d)
    under ``polynomial_kernel``: the within-set means leave out the diagonal (k(x, x)),
    so it is 0 in expectation for one distribution and may come out below 0."""
    m, n = len(x), len(y)
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(within_x + within_y - 2 * polynomial_kernel(x, y).mean())


class KernelDistance:
    """KID of feature sets to fixed reference features (Binkowski et al. 2018).

    The mean of ``mmd2_unbiased`` over KID_SUBSETS random reference subsets of m samples
    (m: the scored set's size, at most KID_SUBSET_SIZE), each against the scored set;
    one subset, the whole reference, when it holds m samples or fewer. The subsets are
    fixed (SUBSET_SEED), so their within-reference term is computed once per m, and a
    call costs one (m, reference) kernel matrix.
    """

    def __init__(self, reference: np.ndarray) -> None:
        self.reference = reference
        self._subsets: dict[int, tuple[list[np.ndarray], float]] = {}

    def _reference_subsets(self, m: int) -> tuple[list[np.ndarray], float]:
        if m not in self._subsets:
            n = len(self.reference)
            if n <= m:
                subsets = [np.arange(n)]
            else:
                pick = np.random.default_rng(SUBSET_SEED)
                subsets = [pick.choice(n, m, replace=False) for _ in range(KID_SUBSETS)]
            within = []
            for subset in subsets:
                k = polynomial_kernel(self.reference[subset], self.reference[subset])
                within.append((k.sum() - np.trace(k)) / (len(subset) * (len(subset) - 1)))
            self._subsets[m] = (subsets, float(np.mean(within)))
        return self._subsets[m]

    def __call__(self, features: np.ndarray) -> float:
        m = min(len(features), KID_SUBSET_SIZE)
        x = features[:m]
        subsets, within_reference = self._reference_subsets(m)
        kxx = polynomial_kernel(x, x)
        within_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        cross = polynomial_kernel(x, self.reference).mean(axis=0)  # per reference sample
        between = float(np.mean([cross[subset].mean() for subset in subsets]))
        return float(within_x + within_reference - 2 * between)


# --- precision, recall, density, coverage ------------------------------------------------


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import cdist

    return cdist(x, y)


def nearest_radii(features: np.ndarray, k: int = NEAREST_K) -> np.ndarray:
    """Each sample's distance to its k-th nearest neighbour in its own set (itself aside)."""
    distances = _distances(features, features)
    return np.partition(distances, k, axis=1)[:, k]


class Manifold:
    """The k-NN manifold of real samples (balls to each one's k-th neighbour) and the
    precision, recall, density and coverage of a sample set against it (Naeem et al.
    2020, as the ``prdc`` package computes them; tests/quality checks the two agree).

    The real radii are computed once; a call costs one k-NN of the scored set and one
    distance matrix to the real samples.
    """

    def __init__(self, real: np.ndarray, k: int = NEAREST_K) -> None:
        self.real = real
        self.k = k
        self.radii = nearest_radii(real, k)

    def __call__(self, fake: np.ndarray) -> dict[str, float]:
        if not np.isfinite(fake).all():
            return {name: float("nan") for name in PRDC_NAMES}
        fake_radii = nearest_radii(fake, self.k)
        distances = _distances(self.real, fake)  # (real, fake)
        inside = distances < self.radii[:, None]  # fake j inside real i's ball
        return {
            "precision": float(inside.any(axis=0).mean()),
            "recall": float((distances < fake_radii[None, :]).any(axis=1).mean()),
            "density": float(inside.sum(axis=0).mean() / self.k),
            "coverage": float((distances.min(axis=1) < self.radii).mean()),
        }


PRDC_NAMES = ("precision", "recall", "density", "coverage")


# --- the feature classifier ---------------------------------------------------------------


class FeatureNet(nn.Module):
    """A small CNN classifier; ``features`` is its 64-d penultimate layer (pre-ReLU)."""

    def __init__(self, channels: int, size: int, classes: int) -> None:
        super().__init__()
        first = 2 if size >= 16 else 1
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, first, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(256, FEATURES),
        )  # fmt: skip
        self.head = nn.Linear(FEATURES, classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.relu(self.body(x)))


def cache_dir() -> Path:
    """``LIPGAN_CACHE_DIR``, else the platform's user cache folder + /lipgan."""
    if os.environ.get("LIPGAN_CACHE_DIR"):
        return Path(os.environ["LIPGAN_CACHE_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "lipgan"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "lipgan" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "lipgan"


def data_key(images: Tensor, labels: Tensor) -> str:
    """Content hash of the training images, labels and classifier version."""
    digest = hashlib.sha256()
    digest.update(f"v{CLASSIFIER_VERSION}:{tuple(images.shape)}".encode())
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.numpy().astype(np.int64).tobytes())
    return digest.hexdigest()[:24]


@torch.no_grad()
def _batched(fn: Any, x: Tensor, batch: int = 1024) -> Tensor:
    return torch.cat([fn(chunk) for chunk in x.split(batch)])


def train_classifier(train: Tensor, labels: Tensor, classes: int, seed: int = 0) -> FeatureNet:
    """A few hundred Adam steps (about 3 epochs, 300 to 800 steps): seconds to a minute.

    Runs inside ``fork_rng`` so it never moves the caller's global random state.
    """
    n, c, h, _ = train.shape
    steps = min(800, max(300, 3 * n // 128))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # callers may be in no_grad
        torch.manual_seed(seed)
        net = FeatureNet(c, h, classes)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        order = torch.Generator().manual_seed(seed)
        for step in range(steps):
            idx = torch.randint(n, (128,), generator=order)
            loss = F.cross_entropy(net(to_float(train[idx])), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step == int(steps * 0.75):
                for group in opt.param_groups:
                    group["lr"] *= 0.2
    return net.eval()


def load_or_train(
    train: Tensor,
    train_labels: Tensor,
    heldout: Tensor,
    heldout_labels: Tensor,
    name: str = "",
) -> tuple[FeatureNet, dict[str, Any]]:
    """The cached classifier for this data (trained and cached on first use) and its info."""
    classes = int(max(train_labels.max(), heldout_labels.max())) + 1
    key = data_key(train, train_labels)
    folder = cache_dir() / "frechet"
    weights, info_path = folder / f"{key}.pt", folder / f"{key}.json"
    _, c, h, _ = train.shape
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten: no RNG use
        net = FeatureNet(c, h, classes)
    if weights.is_file() and info_path.is_file():
        try:
            net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            return net.eval(), json.loads(info_path.read_text(encoding="utf-8"))
        except (RuntimeError, OSError, ValueError, EOFError, KeyError):
            pass  # a damaged or stale cache entry: train again and overwrite it
    net = train_classifier(train, train_labels, classes)
    predicted = _batched(lambda x: net(to_float(x)).argmax(1), heldout)
    info = {
        "data": name,
        "classifier_version": CLASSIFIER_VERSION,
        "test_accuracy": round(float((predicted == heldout_labels).float().mean()), 4),
        "train_images": len(train),
        "test_images": len(heldout),
        "classes": classes,
        "features": FEATURES,
    }
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    atomic_write_bytes(weights, buffer.getvalue())
    atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")
    return net, info


def scoring_split(n: int) -> tuple[Tensor, Tensor, Tensor]:
    """(classifier, floor, reference) indices into a training split of n images.

    A fixed random half trains the feature classifier; the other half, which the
    classifier never sees, is cut in two: floor images (real images scored like samples)
    and the reference the samples are scored against. A perfect generator draws images
    like the training split, unseen by the classifier, so it scores what the floor images
    score. Each part is capped (FLOOR_IMAGES, REFERENCE_IMAGES) to keep scoring fast.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    unseen = min(n // 2, FLOOR_IMAGES + REFERENCE_IMAGES)
    held, classifier = order[:unseen], order[unseen:]
    floor_count = min(unseen // 2, FLOOR_IMAGES)
    return classifier, held[:floor_count], held[floor_count:]


class FrechetScorer:
    """Frechet distance, FD-infinity, KID and precision/recall/density/coverage of
    generated images to real ones the classifier never saw, in the classifier's
    features, each with its floor: what real images drawn like the training split score.

    Every score and its floor use the same number m = min(n, floor images) of images and
    the same reference, so a generator that matches the data scores the floor. The k-NN
    manifold is the first m reference images (its radii depend on the count, so real and
    generated sets are the same size).
    """

    def __init__(
        self, net: FeatureNet, info: dict[str, Any], reference: Tensor, floor: Tensor
    ) -> None:
        self.net = net
        self.info = info
        reference_features = self.features(reference)
        self.reference = gaussian_stats(reference_features)
        self.reference_features = reference_features
        self.kernel_distance = KernelDistance(reference_features)
        self.floor_features = self.features(floor)
        self._floors: dict[int, dict[str, float]] = {}
        self._manifolds: dict[int, Manifold] = {}
        # The scoring's matrices are small (64-d features): a multi-threaded BLAS on a
        # loaded machine ran FD-infinity 9x slower than one thread (1.8 s against 0.2 s).
        from threadpoolctl import ThreadpoolController

        self._blas = ThreadpoolController()

    @classmethod
    def for_data(
        cls, name: str, train: Tensor, train_labels: Tensor, heldout: Tensor, heldout_labels: Tensor
    ) -> FrechetScorer:
        """The scorer of a labelled image set (uint8 images); the classifier is cached."""
        if len(train) < 8:
            raise ValueError(f"{name}: Frechet scoring needs at least 8 training images")
        classifier, floor, reference = scoring_split(len(train))
        net, info = load_or_train(
            train[classifier], train_labels[classifier], heldout, heldout_labels, name
        )
        return cls(net, info, train[reference], train[floor])

    def features(self, images: Tensor) -> np.ndarray:
        """Features of uint8 or [-1, 1] float images, as float64 numpy."""
        x = to_float(images) if images.dtype == torch.uint8 else images.detach().float().cpu()
        return _batched(self.net.features, x).double().numpy()

    def evaluate(self, fake: Tensor) -> dict[str, float]:
        m = min(len(fake), len(self.floor_features))
        if m < 2:
            return {}
        if m not in self._floors:
            self._manifolds[m] = Manifold(self.reference_features[:m])
            self._floors[m] = self._scores(self.floor_features[:m], m)
        fake_features = self.features(fake[:m])
        if not np.isfinite(fake_features).all():
            scores = {key: float("nan") for key in self._floors[m]}
        else:
            scores = self._scores(fake_features, m)
        metrics = {}
        for key, value in scores.items():
            metrics[f"quality/{key}"] = value
            metrics[f"quality/{key}_floor"] = self._floors[m][key]
        return metrics

    def _scores(self, features: np.ndarray, m: int) -> dict[str, float]:
        with self._blas.limit(limits=1, user_api="blas"):
            return self._scores_one_thread(features, m)

    def _scores_one_thread(self, features: np.ndarray, m: int) -> dict[str, float]:
        scores = {"frechet": frechet_distance(*gaussian_stats(features), *self.reference)}
        infinity = frechet_infinity(features, self.reference)
        if infinity is not None:
            scores["frechet_inf"] = infinity
        scores["kid"] = self.kernel_distance(features) if m >= 2 else float("nan")
        if m > NEAREST_K:
            scores.update(self._manifolds[m](features))
        return scores


# --- memorisation ------------------------------------------------------------------------


def nearest_distances(
    images: Tensor, train: Tensor, train_sq: Tensor | None = None, chunk: int = 4096
) -> Tensor:
    """Each image's Euclidean pixel distance (in [-1, 1] units) to its nearest training
    image (uint8 ``train``; ``train_sq``: their squared norms, see ``squared_norms``), by
    chunks of the training set: no (n, N) matrix is kept. Runs on the images' device, in
    float32 as the matmul is the cost (exact copies come out within ~0.01 of 0)."""
    x = to_float(images) if images.dtype == torch.uint8 else images.detach().float()
    x = x.flatten(1)
    if train_sq is None:
        train_sq = squared_norms(train)
    best = torch.full((len(x),), float("inf"), device=x.device)
    x_sq, x_sum = (x * x).sum(1, keepdim=True), x.sum(1, keepdim=True)
    for part, part_sq in zip(train.split(chunk), train_sq.split(chunk), strict=True):
        # x . to_float(t) = x . t / 127.5 - sum(x): one conversion pass of the uint8 chunk
        dots = x @ part.to(x.device).flatten(1).float().T / 127.5 - x_sum
        squared = x_sq + part_sq.to(x.device) - 2 * dots
        best = torch.minimum(best, squared.min(1).values)
    return best.clamp_min(0).sqrt().double().cpu()


def squared_norms(images: Tensor, chunk: int = 4096) -> Tensor:
    """||to_float(x)||^2 of each uint8 image, float32."""
    return torch.cat([to_float(part).flatten(1).square().sum(1) for part in images.split(chunk)])


class MemorisationCheck:
    """Median distance of samples to their nearest training image, over the same median
    for held-out real images: about 1 for a generator that draws new images like the
    data, well below 1 for one that copies training images (0 for exact copies)."""

    def __init__(self, train: Tensor, heldout: Tensor) -> None:
        self.train = train
        self.train_sq = squared_norms(train)
        heldout_distances = nearest_distances(heldout[:MEMORISATION_HELDOUT], train, self.train_sq)
        self.heldout_median = float(heldout_distances.median())

    def evaluate(self, fake: Tensor) -> dict[str, float]:
        distances = nearest_distances(fake[:MEMORISATION_SAMPLES], self.train, self.train_sq)
        if not self.heldout_median > 0 or not torch.isfinite(distances).all():
            return {"quality/memorisation": float("nan")}
        return {"quality/memorisation": float(distances.median()) / self.heldout_median}
