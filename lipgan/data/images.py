"""Image data: ``ImageData``, its shaping and split, and scikit-learn's digits.

Every loader ends in one ``ImageData``: uint8 images (N, C, H, W) kept as one tensor
(4x smaller than floats; moved to the device once), served as floats in [-1, 1].
A fixed split is held out for evaluation: the format's own test set where it has one
(MNIST ``t10k``, CIFAR-10 ``test_batch``), else a fixed random 10%. ``evaluate`` reports
the memorisation ratio and, where the data is labelled, a Frechet distance in the feature
space of a small classifier trained on that data (``lipgan.quality``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lipgan.batch_random import BatchRandom
from lipgan.errors import DataError
from lipgan.quality import to_float

HOLDOUT_FRACTION = 0.1
SPLIT_SEED = 0  # fixed: a run's seed never changes which images are held out
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
GRID_MIN_PIXELS = 32  # tiny images are upscaled in sample grids to at least this size
GRID_MAX = 100  # a grid shows the first 100 samples (10x10); `lipgan sample --out x.npy` has all


class ImageData:
    """Images (N, C, H, W) with a held-out split and optional labels."""

    family = "images"

    def __init__(
        self,
        name: str,
        train: Tensor,
        heldout: Tensor,
        train_labels: Tensor | None = None,
        heldout_labels: Tensor | None = None,
    ) -> None:
        if train.dtype != torch.uint8 or train.dim() != 4:
            raise ValueError("ImageData wants uint8 images (N, C, H, W)")
        self.name = name
        self.train = train
        self.heldout = heldout
        self.train_labels = train_labels
        self.heldout_labels = heldout_labels
        self.shape = tuple(int(s) for s in train.shape[1:])
        self._on_device: dict[torch.device, Tensor] = {}
        self._scorer: Any = None
        self._memorisation: Any = None

    def __len__(self) -> int:
        return len(self.train)

    def draw(self, rand: BatchRandom, n: int) -> Tensor:
        """This process's n training images, picked with ``rand.integers``."""
        if rand.device not in self._on_device:
            self._on_device[rand.device] = self.train.to(rand.device)
        images = self._on_device[rand.device]
        return to_float(images[rand.integers(n, len(images))])

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None and self.heldout_labels is not None

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]:
        """The memorisation ratio; the Frechet distance and its floor where labelled."""
        from lipgan.quality import FrechetScorer, MemorisationCheck

        if self._memorisation is None:
            self._memorisation = MemorisationCheck(self.train, self.heldout)
        metrics = self._memorisation.evaluate(fake)
        if self.labelled:
            if self._scorer is None:
                assert self.train_labels is not None and self.heldout_labels is not None
                self._scorer = FrechetScorer.for_data(
                    self.name, self.train, self.train_labels, self.heldout, self.heldout_labels
                )
            metrics.update(self._scorer.evaluate(fake))
        return metrics

    def save_samples(self, fake: Tensor, path: Path, critic: nn.Module | None = None) -> Path:
        return save_grid(fake, path)

    def meta(self) -> dict[str, Any]:
        return {"kind": "images", "name": self.name, "family": "images", "shape": list(self.shape)}


class ImageSamples:
    """What ``restore`` rebuilds from meta: it writes grids, it has no data to draw."""

    family = "images"

    def __init__(self, meta: dict[str, Any]) -> None:
        self.name = str(meta.get("name", "images"))
        self.shape = tuple(int(s) for s in meta["shape"])

    def draw(self, rand: BatchRandom, n: int) -> Tensor:
        raise DataError(f"{self.name}: a restored source has no images; load the data again")

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]:
        return {}

    def save_samples(self, fake: Tensor, path: Path, critic: nn.Module | None = None) -> Path:
        return save_grid(fake, path)

    def meta(self) -> dict[str, Any]:
        return {"kind": "images", "name": self.name, "family": "images", "shape": list(self.shape)}


def save_grid(fake: Tensor, path: Path) -> Path:
    """The first 100 samples in a near-square PNG grid; tiny images upscaled to stay visible."""
    from lipgan.plots import save_image_grid

    images = fake[:GRID_MAX].detach().float().cpu().numpy()
    path = Path(path).with_suffix(".png")
    scale = max(1, math.ceil(GRID_MIN_PIXELS / images.shape[-1]))
    save_image_grid(path, images, nrow=math.ceil(math.sqrt(len(images))), scale=scale)
    return path


# --- shared shaping: channels, size, split ---------------------------------------------------


def fit_images(images: np.ndarray, image_size: int | None, channels: int | None) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 with the requested channels, centre-cropped square and
    resized to ``image_size`` (area filter down, bilinear up); no option: unchanged."""
    x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"]))
    if channels is not None and channels != x.shape[1]:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1)
        else:  # RGB -> luminance (ITU-R 601, as PIL's "L")
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).byte()
    h, w = x.shape[2:]
    if image_size is not None and (h, w) != (image_size, image_size):
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        x = x[:, :, top : top + side, left : left + side]
        chunks = []
        for chunk in x.split(4096):
            mode = "area" if image_size < side else "bilinear"
            kwargs = {} if mode == "area" else {"align_corners": False}
            resized = F.interpolate(
                chunk.float(), size=(image_size, image_size), mode=mode, **kwargs
            )
            chunks.append(resized.round().clamp(0, 255).byte())
        x = torch.cat(chunks)
    return x.contiguous()


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) indices, each in file order: a fixed random 10% (at least one
    image) is held out. Random, not the file's tail, so that held-out images are drawn like
    training ones (digits are stored writer by writer, folders class by class); a fixed seed,
    so the same files always give the same split."""
    if n < 2:
        raise ValueError(n)
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    cut = max(1, int(round(n * HOLDOUT_FRACTION)))
    return np.sort(order[cut:]), np.sort(order[:cut])


def build(
    name: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    options: dict[str, Any],
    heldout: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> ImageData:
    """An ImageData from uint8 (N, C, H, W), holding out ``heldout`` or the last 10%."""
    if heldout is None:
        if len(images) < 2:
            raise DataError(f"{name} holds {len(images)} image; at least 2 are needed")
        keep, held = split(len(images))
        heldout = (images[held], None if labels is None else labels[held])
        images, labels = images[keep], None if labels is None else labels[keep]
    size, channels = options.get("image_size"), options.get("channels")
    return ImageData(
        name,
        fit_images(images, size, channels),
        fit_images(heldout[0], size, channels),
        _labels(labels),
        _labels(heldout[1]),
    )


def _labels(array: np.ndarray | None) -> Tensor | None:
    return None if array is None else torch.as_tensor(array, dtype=torch.long)


def _check_square(name: str, images: np.ndarray, options: dict[str, Any]) -> None:
    h, w = images.shape[2:]
    if h != w and options.get("image_size") is None:
        raise DataError(f"{name} holds {h}x{w} images; pass --image-size N to crop them square")


# --- digits (embedded) ----------------------------------------------------------------------


def load_digits(arg: str, options: dict[str, Any]) -> ImageData:
    """scikit-learn's bundled 8x8 digits (1,797 labelled images, 0..16 grey levels)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None]
    return build("digits", images, bunch.target.astype(np.int64), options)
