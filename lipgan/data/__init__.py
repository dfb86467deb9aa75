"""Data sets, chosen by a spec string: ``8gaussians``, ``digits``, ``KIND:PATH`` ...

Every data source has a ``family`` ('points', 'images' or 'text'), a per-sample
``shape``, and these methods the engine calls:

- ``draw(rand, n)``: this process's n training samples (see ``BatchRandom``);
- ``evaluate(fake, seed, sets)``: quality metrics of generated samples, ``quality/...``
  (toy data average W1 over ``sets`` equal parts of ``fake``; others use one set);
- ``save_samples(fake, path, critic)``: a picture or text file of samples;
- ``meta()``: plain data that ``restore`` turns back into a source able to write
  samples (so ``lipgan sample`` needs neither the data files nor flags).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from torch import Tensor, nn

from lipgan.batch_random import BatchRandom
from lipgan.config import TrainConfig
from lipgan.data.toy import TOY_NAMES, ToyData
from lipgan.errors import DataError


class DataSource(Protocol):
    name: str
    family: str
    shape: tuple[int, ...]

    def draw(self, rand: BatchRandom, n: int) -> Tensor: ...

    def evaluate(self, fake: Tensor, seed: int, sets: int = 1) -> dict[str, float]: ...

    def save_samples(self, fake: Tensor, path: Path, critic: nn.Module | None = None) -> Path: ...

    def meta(self) -> dict[str, Any]: ...


# kind -> (loader taking the part after 'KIND:' and the load options, usage, one-line help)
Loader = Callable[[str, dict[str, Any]], DataSource]
KINDS: dict[str, tuple[Loader, str, str]] = {}


def _toy(name: str, options: dict[str, Any]) -> DataSource:
    if name not in TOY_NAMES:  # e.g. '8gaussians:x': toy data take no argument
        raise DataError(f"toy data take no ':' argument, got {name!r}; use e.g. --data 8gaussians")
    return ToyData(name)


for _name, _help in (
    ("8gaussians", "8 gaussians on a circle (2-D toy, paper)"),
    ("25gaussians", "5x5 grid of gaussians (2-D toy, paper; --iters 4000 recommended)"),
    ("swissroll", "swiss roll slice (2-D toy, paper)"),
):
    KINDS[_name] = (_toy, _name, _help)


def _register_files() -> None:
    from lipgan.data import image_files as files
    from lipgan.data import images, text

    KINDS["digits"] = (images.load_digits, "digits", "scikit-learn's 8x8 digits (1,797, labelled)")
    KINDS["folder"] = (files.load_folder, "folder:DIR", "png/jpg/bmp images under DIR (nested)")
    KINDS["mnist"] = (files.load_mnist, "mnist:DIR", "MNIST/Fashion-MNIST IDX files in DIR")
    KINDS["cifar10"] = (files.load_cifar10, "cifar10:DIR", "CIFAR-10 python-version batches")
    KINDS["array"] = (files.load_array, "array:FILE", ".npy/.npz images (N,H,W[,C]|N,C,H,W)")
    KINDS["text"] = (text.load_text, "text:FILE", "UTF-8 text, character level (paper's LM)")


_register_files()


def load(spec: str, **options: Any) -> DataSource:
    """The data source for ``spec``; unknown kinds and bad files raise DataError."""
    kind, sep, arg = spec.partition(":")
    if kind in TOY_NAMES and not sep:
        return ToyData(kind)
    if kind not in KINDS:
        raise DataError(f"unknown data {spec!r}; available: {', '.join(KINDS)} (see `lipgan data`)")
    loader = KINDS[kind][0]
    return loader(arg if sep else kind, options)


def load_for(config: TrainConfig) -> DataSource:
    """The data source a config trains on: its ``data`` spec and data options."""
    return load(
        config.data,
        image_size=config.image_size,
        channels=config.channels,
        seq_len=config.seq_len,
        seed=config.seed,
    )


def restore(meta: dict[str, Any]) -> DataSource:
    """A source rebuilt from ``meta()`` that can write samples (not necessarily draw)."""
    if meta.get("kind") == "toy":
        return ToyData(meta["name"])
    if meta.get("kind") == "images":
        from lipgan.data.images import ImageSamples

        return ImageSamples(meta)
    if meta.get("kind") == "text":
        from lipgan.data.text import TextSamples

        return TextSamples.from_meta(meta)
    raise DataError(f"cannot restore data of kind {meta.get('kind')!r}; upgrade lipgan")
