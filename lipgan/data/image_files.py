"""Image files on disk: folders of png/jpg/bmp, MNIST IDX, CIFAR-10 pickles, .npy/.npz.

Each loader reads its format, checks it with one-line ``DataError``s and hands uint8
(N, C, H, W) arrays to ``images.build``, which fits and splits them.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lipgan.data.images import IMAGE_SUFFIXES, ImageData, _check_square, build
from lipgan.errors import DataError

# --- image folders --------------------------------------------------------------------------


def load_folder(arg: str, options: dict[str, Any]) -> ImageData:
    """Every png/jpg/bmp under a folder (nested), centre-cropped and resized."""
    from PIL import Image, UnidentifiedImageError

    root = Path(arg).expanduser()
    if not arg:
        raise DataError("folder: needs a path, e.g. --data folder:path/to/images")
    if not root.exists():
        raise DataError(f"image folder {root} does not exist; check the path")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; use --data array:FILE for .npy/.npz files")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"image folder {root} holds no .png/.jpg/.bmp files; check the path")
    opened = []
    for file in files:
        try:
            with Image.open(file) as img:
                img.load()
                opened.append(img.copy())
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"image {file} cannot be read ({exc}); remove or replace it") from None
    if len(opened) < 2:
        raise DataError(f"image folder {root} holds 1 image; at least 2 are needed")
    channels = options.get("channels")
    if channels is None:
        grey = all(img.mode in ("1", "L", "LA", "I", "I;16", "F") for img in opened)
        channels = 1 if grey else 3
    size = options.get("image_size")
    if size is None:
        sizes = {img.size for img in opened}
        only = next(iter(sizes))
        size = only[0] if len(sizes) == 1 and only[0] == only[1] else 32
    arrays = [_square(img, size, channels) for img in opened]
    images = np.stack(arrays)
    return build(f"folder:{root}", images, None, {"image_size": None, "channels": None})


def _square(img: Any, size: int, channels: int) -> np.ndarray:
    """One PIL image -> uint8 (C, size, size): converted, shorter side resized, centre crop."""
    from PIL import Image

    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    if new != (w, h):
        img = img.resize(new, Image.Resampling.BICUBIC)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    img = img.crop((left, top, left + size, top + size))
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


# --- MNIST / Fashion-MNIST IDX --------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (raw or gzipped) of unsigned bytes, as in MNIST; DataError on damage."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"IDX file {path} cannot be read ({exc}); download it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); check the file")
    if raw[2] != 0x08:
        raise DataError(f"IDX file {path} holds type 0x{raw[2]:02x}; only unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"IDX file {path} is truncated in its header; download it again")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise DataError(
            f"IDX file {path} holds {len(raw)} bytes but its header says {expected}; "
            "it is truncated or corrupt, download it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _idx_pair(root: Path, prefix: str) -> tuple[Path, Path] | None:
    def find(kind: str) -> Path | None:
        hits = sorted(p for p in root.iterdir() if p.name.startswith(prefix) and kind in p.name)
        return hits[0] if hits else None

    images, labels = find("idx3-ubyte"), find("idx1-ubyte")
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        missing = f"{prefix}-images-idx3-ubyte" if images is None else f"{prefix}-labels-idx1-ubyte"
        raise DataError(f"MNIST folder {root} lacks {missing}[.gz]; it needs images and labels")
    return images, labels


def _read_idx_set(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path} holds a {images.ndim}-D array; MNIST images are 3-D")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {labels.shape} labels for {len(images)} images in "
            f"{images_path.name}; they must match"
        )
    return images[:, None], labels.astype(np.int64)


def load_mnist(arg: str, options: dict[str, Any]) -> ImageData:
    """MNIST or Fashion-MNIST IDX files (train-*, t10k-*; .gz or raw) from a folder."""
    root = Path(arg).expanduser()
    if not arg:
        raise DataError("mnist: needs a folder, e.g. --data mnist:~/data/mnist")
    if not root.is_dir():
        raise DataError(f"MNIST folder {root} does not exist; check the path")
    train = _idx_pair(root, "train")
    if train is None:
        raise DataError(
            f"MNIST folder {root} has no train-images-idx3-ubyte[.gz]; put the four IDX files there"
        )
    images, labels = _read_idx_set(*train)
    test = _idx_pair(root, "t10k")
    heldout = _read_idx_set(*test) if test is not None else None
    if heldout is not None and heldout[0].shape[1:] != images.shape[1:]:
        raise DataError(f"{test[0]} holds {heldout[0].shape[2:]} images, train {images.shape[2:]}")
    return build(f"mnist:{root}", images, labels, options, heldout)


# --- CIFAR-10 python version ----------------------------------------------------------------

# Only what CIFAR-10's pickles need: numpy arrays of numbers, and bytes (protocol 2).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a class or function outside the allowed few."""


class SafeUnpickler(pickle.Unpickler):
    """Refuses every class but numpy arrays and dtypes: no code runs from the file."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobal(f"refused {module}.{name}")


def safe_unpickle(path: Path) -> Any:
    """A pickle of dicts/lists/bytes/str/numbers/numpy arrays; DataError on anything else."""
    try:
        with path.open("rb") as handle:
            obj = SafeUnpickler(handle, encoding="bytes").load()
    except RefusedGlobal as exc:
        raise DataError(
            f"CIFAR-10 file {path} was refused ({exc}); only plain data loads"
        ) from None
    except (pickle.UnpicklingError, OSError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError) as exc:  # fmt: skip
        raise DataError(f"CIFAR-10 file {path} is corrupt ({exc}); download it again") from None
    return obj


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_unpickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"CIFAR-10 file {path} is not a batch dict; check the folder")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataError(f"CIFAR-10 file {path} lacks 'data' or 'labels'; check the folder")
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(
            f"CIFAR-10 file {path} holds data {data.dtype} {data.shape}; expected uint8 (N, 3072)"
        )
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise DataError(f"CIFAR-10 file {path} has {labels.shape} labels for {len(data)} images")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(arg: str, options: dict[str, Any]) -> ImageData:
    """The CIFAR-10 "python version" folder: data_batch_1..5 and test_batch."""
    root = Path(arg).expanduser()
    if not arg:
        raise DataError("cifar10: needs a folder, e.g. --data cifar10:~/data/cifar-10-batches-py")
    if not root.is_dir():
        raise DataError(f"CIFAR-10 folder {root} does not exist; check the path")
    files = sorted(root.glob("data_batch_*"))
    if not files:
        raise DataError(
            f"CIFAR-10 folder {root} has no data_batch_* files; point at cifar-10-batches-py"
        )
    parts = [_cifar_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test = root / "test_batch"
    heldout = _cifar_batch(test) if test.exists() else None
    return build(f"cifar10:{root}", images, labels, options, heldout)


# --- .npy / .npz arrays ---------------------------------------------------------------------


def _layout(path: Path, array: np.ndarray) -> np.ndarray:
    """(N,H,W), (N,H,W,C) or (N,C,H,W) -> (N,C,H,W); channels-first when ambiguous."""
    if array.ndim == 3:
        return array[:, None]
    if array.ndim == 4:
        if array.shape[1] in (1, 3):
            return array
        if array.shape[3] in (1, 3):
            return array.transpose(0, 3, 1, 2)
    raise DataError(
        f"array {path} has shape {array.shape}; expected (N,H,W), (N,H,W,C) or (N,C,H,W) "
        "with C = 1 or 3"
    )


def _to_uint8(path: Path, array: np.ndarray) -> np.ndarray:
    """uint8 as is; floats in [0, 1] or [-1, 1]; other numbers in [0, 255]."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "iuf" or array.dtype.kind == "b":
        raise DataError(f"array {path} has dtype {array.dtype}; expected numbers")
    x = array.astype(np.float64)
    if not np.isfinite(x).all():
        raise DataError(f"array {path} contains NaN or infinite values; clean it first")
    low, high = float(x.min()), float(x.max())
    if array.dtype.kind == "f" and low >= 0 and high <= 1:
        x = x * 255
    elif array.dtype.kind == "f" and low >= -1 and high <= 1:
        x = (x + 1) * 127.5
    elif low < 0 or high > 255:
        raise DataError(
            f"array {path} has values in [{low:g}, {high:g}]; expected [0, 1], [-1, 1] or [0, 255]"
        )
    return np.round(x).astype(np.uint8)


def load_array(arg: str, options: dict[str, Any]) -> ImageData:
    """A .npy or .npz of images; an .npz may carry integer 'labels' (or 'y') beside them."""
    path = Path(arg).expanduser()
    if not arg:
        raise DataError("array: needs a file, e.g. --data array:images.npy")
    if not path.is_file():
        raise DataError(f"array file {path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise DataError(f"array file {path} is empty; save the images with numpy.save")
    with path.open("rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise DataError(f"array file {path} is not a .npy/.npz file; save it with numpy.save")
    labels = None
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                keys = list(loaded.keys())
                pick = [k for k in ("images", "x", "arr_0") if k in keys]
                if len(keys) == 1:
                    pick = keys
                if not pick:
                    raise DataError(
                        f"array file {path} holds {keys}; name the images 'images' or 'x'"
                    )
                array = loaded[pick[0]]
                for key in ("labels", "y"):
                    if key in keys and key != pick[0]:
                        labels = loaded[key]
                        break
        else:
            array = loaded
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, io.UnsupportedOperation) as exc:
        raise DataError(
            f"array file {path} cannot be read as .npy/.npz ({str(exc)[:120]}); "
            "save it with numpy.save or numpy.savez (no pickled objects)"
        ) from None
    if array.size == 0:
        raise DataError(f"array file {path} is empty (shape {array.shape}); it needs images")
    images = _to_uint8(path, _layout(path, array))
    if labels is not None:
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
            raise DataError(
                f"array file {path}: labels {labels.dtype} {labels.shape} do not match "
                f"{len(images)} images; drop them or store one integer per image"
            )
        labels = labels.astype(np.int64)
    _check_square(str(path), images, options)
    return build(f"array:{path}", images, labels, options)
