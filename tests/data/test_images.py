"""Image loaders on small files written here: values, shapes and one-line errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lipgan import data as datasets
from lipgan.constraints.base import BatchRandom
from lipgan.data.image_files import load_array, load_cifar10, load_folder, load_mnist
from lipgan.data.images import ImageData, split
from lipgan.errors import DataError

OPTIONS = {"image_size": None, "channels": None, "seq_len": 32, "seed": 0}


def rand(seed: int = 0) -> BatchRandom:
    return BatchRandom(torch.Generator().manual_seed(seed))


def test_digits_split_shape_and_values():
    from sklearn.datasets import load_digits

    d = datasets.load("digits", **OPTIONS)
    assert isinstance(d, ImageData)
    assert (d.family, d.shape) == ("images", (1, 8, 8))
    assert (len(d.train), len(d.heldout)) == (1617, 180)
    # a fixed random 10% is held out (the file is ordered by writer: its tail is not like the
    # rest), the same whatever the run seed; both parts keep the file order
    keep, held = split(1797)
    assert np.array_equal(np.sort(np.concatenate([keep, held])), np.arange(1797))
    assert held.min() < 180 and held.max() > 1617 and np.all(np.diff(held) > 0)
    assert np.array_equal(split(1797)[1], held)
    target = load_digits().target
    assert d.heldout_labels.tolist() == target[held].tolist()
    assert set(d.heldout_labels.tolist()) == set(range(10))
    # grey levels 0..16 map to [-1, 1]; draws are the stored images at rand's indices
    expected = torch.as_tensor(load_digits().images[keep], dtype=torch.float32) / 8 - 1
    idx = torch.randint(1617, (50,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(d.draw(rand(3), 50)[:, 0], expected[idx], atol=1.01 / 255, rtol=0)
    assert d.meta() == {"kind": "images", "name": "digits", "family": "images", "shape": [1, 8, 8]}


def _png(path: Path, size: tuple[int, int], colour, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_folder_nested_resized_grey(tmp_path):
    _png(tmp_path / "a" / "red.png", (20, 12), (255, 0, 0))
    _png(tmp_path / "a" / "b" / "grey.bmp", (8, 8), 200, mode="L")
    _png(tmp_path / "c.jpg", (8, 16), (0, 0, 255))
    (tmp_path / "notes.txt").write_text("not an image")
    d = load_folder(str(tmp_path), {"image_size": 4, "channels": 1})
    assert d.shape == (1, 4, 4)
    images = torch.cat([d.train, d.heldout])
    assert len(images) == 3
    # sorted paths: a/b/grey.bmp, a/red.png, c.jpg; luminance as PIL: 0.299 R + ...
    firsts = sorted(int(img[0, 0, 0]) for img in images)
    assert firsts == sorted([200, 76, 29])
    assert all(bool((img == img[0, 0, 0]).all()) for img in images)  # flat colours stay flat


def test_folder_rgb_default_and_errors(tmp_path):
    _png(tmp_path / "x.png", (10, 10), (10, 20, 30))
    _png(tmp_path / "y.png", (10, 10), (40, 50, 60))
    d = load_folder(str(tmp_path), {"image_size": None, "channels": None})
    assert d.shape == (3, 10, 10)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):
        load_folder(str(tmp_path), {})
    with pytest.raises(DataError, match="does not exist"):
        load_folder(str(tmp_path / "nowhere"), {})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty.*no \.png"):
        load_folder(str(empty), {})


def _idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _mnist(root: Path, n_train: int = 6, n_test: int = 4) -> tuple[np.ndarray, np.ndarray]:
    root.mkdir(exist_ok=True)
    gen = np.random.default_rng(0)
    train = gen.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    test = gen.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    _idx(root / "train-images-idx3-ubyte.gz", train, gz=True)
    _idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10, gz=True)
    _idx(root / "t10k-images-idx3-ubyte", test, gz=False)
    _idx(root / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz=False)
    return train, test


def test_mnist_gz_and_raw(tmp_path):
    train, test = _mnist(tmp_path / "m")
    d = datasets.load(f"mnist:{tmp_path / 'm'}", **OPTIONS)
    assert d.shape == (1, 28, 28)
    assert torch.equal(d.train[:, 0], torch.from_numpy(train))
    assert torch.equal(d.heldout[:, 0], torch.from_numpy(test))  # the t10k set is held out
    assert d.train_labels.tolist() == [0, 1, 2, 3, 4, 5]
    x = d.draw(rand(), 16)
    assert x.shape == (16, 1, 28, 28) and float(x.min()) >= -1 and float(x.max()) <= 1


def test_mnist_errors_name_the_file(tmp_path):
    root = tmp_path / "m"
    _mnist(root)
    bad = root / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-5])  # truncated
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*truncated"):
        load_mnist(str(root), {})
    bad.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is not an IDX"):
        load_mnist(str(root), {})
    _idx(root / "t10k-labels-idx1-ubyte", np.arange(3), gz=False)
    _idx(bad, np.zeros((4, 28, 28)), gz=False)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*must match"):
        load_mnist(str(root), {})
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz cannot be read"):
        load_mnist(str(root), {})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no train-images"):
        load_mnist(str(empty), {})
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(str(tmp_path / "nowhere"), {})


def _cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=2))


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_loads_and_refuses_code(tmp_path, capsys):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    gen = np.random.default_rng(1)
    data = gen.integers(0, 256, (5, 3072), dtype=np.uint8)
    _cifar_batch(root / "data_batch_1", data, [0, 1, 2, 3, 4])
    _cifar_batch(root / "test_batch", data[:3], [5, 6, 7])
    d = datasets.load(f"cifar10:{root}", **OPTIONS)
    assert d.shape == (3, 32, 32)
    assert torch.equal(d.train, torch.from_numpy(data.reshape(5, 3, 32, 32)))
    assert d.heldout_labels.tolist() == [5, 6, 7]
    (root / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="test_batch was refused.*print"):
        load_cifar10(str(root), {})
    assert "must never run" not in capsys.readouterr().out
    (root / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="test_batch is corrupt"):
        load_cifar10(str(root), {})
    _cifar_batch(root / "test_batch", data[:, :100], [0] * 5)
    with pytest.raises(DataError, match=r"test_batch holds data uint8 \(5, 100\)"):
        load_cifar10(str(root), {})
    with pytest.raises(DataError, match="no data_batch"):
        load_cifar10(str(tmp_path), {})


def test_arrays_layouts_and_ranges(tmp_path):
    gen = np.random.default_rng(2)
    u8 = gen.integers(0, 256, (10, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "a.npy", u8)
    d = load_array(str(tmp_path / "a.npy"), {})
    keep, held = split(10)
    assert d.shape == (1, 6, 6) and torch.equal(d.train[:, 0], torch.from_numpy(u8[keep]))
    nhwc = gen.random((10, 6, 6, 3))  # floats in [0, 1]
    np.save(tmp_path / "b.npy", nhwc)
    d = load_array(str(tmp_path / "b.npy"), {})
    assert d.shape == (3, 6, 6)
    expected = torch.from_numpy(np.round(nhwc * 255).astype(np.uint8).transpose(0, 3, 1, 2))
    assert torch.equal(d.train, expected[keep]) and torch.equal(d.heldout, expected[held])
    nchw = np.full((10, 3, 6, 6), -1.0)  # [-1, 1] floats
    np.savez(tmp_path / "c.npz", images=nchw, labels=np.arange(10))
    d = load_array(str(tmp_path / "c.npz"), {})
    assert d.labelled and int(d.train.max()) == 0 and d.heldout_labels.tolist() == held.tolist()


def test_arrays_resize_area_average(tmp_path):
    # 2x2 blocks of 0 and 200 -> area resize to half size gives exactly 100 everywhere
    block = np.tile(np.array([[0, 200], [200, 0]], dtype=np.uint8), (4, 4))
    np.save(tmp_path / "a.npy", np.stack([block] * 4))
    d = load_array(str(tmp_path / "a.npy"), {"image_size": 4, "channels": 3})
    assert d.shape == (3, 4, 4)
    assert bool((d.train == 100).all())


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("flat.npy", np.zeros((10, 5)), "flat.npy has shape"),
        ("empty.npy", np.zeros((0, 8, 8)), "empty.npy is empty"),
        ("nan.npy", np.full((4, 8, 8), np.nan), "nan.npy contains NaN"),
        ("big.npy", np.full((4, 8, 8), 1000.0), r"big.npy has values in \[1000"),
        ("oblong.npy", np.zeros((4, 8, 6)), "oblong.npy holds 8x6 images"),
        ("objects.npy", np.array([None, 1], dtype=object), "objects.npy cannot be read"),
    ],
)
def test_array_errors_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    np.save(path, content, allow_pickle=True)
    with pytest.raises(DataError, match=message):
        load_array(str(path), {})


def test_array_corrupt_and_missing(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="junk.npz cannot be read"):
        load_array(str(tmp_path / "junk.npz"), {})
    with pytest.raises(DataError, match="nothere.npy does not exist"):
        load_array(str(tmp_path / "nothere.npy"), {})


def test_restored_source_writes_upscaled_grid(tmp_path):
    d = datasets.load("digits", **OPTIONS)
    source = datasets.restore(d.meta())
    fake = d.draw(rand(), 4)
    written = source.save_samples(fake, tmp_path / "step_000001")
    assert written == tmp_path / "step_000001.png"
    grid = np.asarray(Image.open(written))
    # 2x2 grid of 8x8 digits upscaled x4 with 2-pixel padding: 2 * (32 + 2) + 2 = 70
    assert grid.shape == (70, 70)
    top_left = grid[2:34, 2:34]
    first = np.round((fake[0, 0].numpy() + 1) / 2 * 255).astype(np.uint8)
    np.testing.assert_array_equal(top_left, first.repeat(4, 0).repeat(4, 1))
    with pytest.raises(DataError, match="restored source"):
        source.draw(rand(), 1)


def test_array_not_numpy(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"abc")
    with pytest.raises(DataError, match="bad.npy is not a .npy/.npz file"):
        load_array(str(tmp_path / "bad.npy"), {})
