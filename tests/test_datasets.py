"""gradflow.datasets: the bundled real digits, the IDX parser and search path on
generated files, the safe CIFAR-10 reader, and the real Fashion-MNIST files when
installed (skipped otherwise)."""
from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from gradflow import datasets as ds
from gradflow.data import DataLoader
from gradflow.datasets import CIFAR10, MNIST, DatasetError, FashionMNIST, read_cifar_batch, read_idx


def test_digits_are_real_mnist():
    images, labels = ds.load_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    # real handwriting: borders blank, ink in the middle, plenty of grey levels
    assert images[:, :2, :].max() == 0 or images[:, :2, :].mean() < 1
    assert 25 < images.mean() < 45
    assert len(np.unique(images)) > 200
    d = ds.digits()
    x, y = d[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert isinstance(y, int)
    # each class mean image is distinct (a "1" has far less ink than an "8")
    ink = [images[labels == c].mean() for c in range(10)]
    assert ink[1] < min(ink[0], ink[8])
    assert os.path.getsize(ds.DIGITS_PATH) < 2_000_000


def _write_idx(path, arr, gz):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    arr = np.asarray(arr)
    head = bytes([0, 0, codes[arr.dtype.type], arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    body = head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(body)


def _make_mnist(folder, n_train=12, n_test=5, gz=True):
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labs = rng.integers(0, 10, n).astype(np.uint8)
        suffix = ".gz" if gz else ""
        _write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte{suffix}"), imgs, gz)
        _write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte{suffix}"), labs, gz)
        out[split] = (imgs, labs)
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_idx_roundtrip(tmp_path, gz):
    for arr in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.arange(5, dtype=np.int32) - 2,
                np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2)):
        p = tmp_path / ("a.idx.gz" if gz else "a.idx")
        _write_idx(p, arr, gz)
        got = read_idx(p)
        np.testing.assert_array_equal(got, arr)
        assert got.dtype == arr.dtype


def test_idx_malformed(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"")
    with pytest.raises(DatasetError, match="not an IDX"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")  # says 5 bytes, holds 3
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(p)
    p.write_bytes(b"\x1f\x8b\x08 broken gzip")
    with pytest.raises(DatasetError):
        read_idx(p)


def test_mnist_from_root_and_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADFLOW_DATA", raising=False)
    ref = _make_mnist(tmp_path / "flat")
    m = MNIST(root=tmp_path / "flat", train=True)
    assert len(m) == 12 and m.data.dtype == np.uint8 and m.targets.dtype == np.int64
    np.testing.assert_array_equal(m.data, ref["train"][0])
    x, y = m[3]
    assert x.shape == (1, 28, 28) and y == ref["train"][1][3]
    assert len(MNIST(root=tmp_path / "flat", train=False)) == 5
    # torchvision layout root/MNIST/raw, uncompressed files
    _make_mnist(tmp_path / "tv" / "MNIST" / "raw", gz=False)
    assert len(MNIST(root=tmp_path / "tv")) == 12
    # $GRADFLOW_DATA
    monkeypatch.setenv("GRADFLOW_DATA", str(tmp_path / "flat"))
    assert len(MNIST()) == 12
    batch = next(iter(DataLoader(m, batch_size=4)))
    assert batch[0].shape == (4, 1, 28, 28) and batch[1].dtype == np.int64


def test_mnist_missing_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GRADFLOW_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetError) as ei:
        MNIST(root=tmp_path / "nowhere")
    msg = str(ei.value)
    assert "train-images-idx3-ubyte" in msg and str(tmp_path / "nowhere") in msg
    assert str(tmp_path / "env") in msg and str(tmp_path / "cache") in msg and "download=True" in msg
    with pytest.raises(DatasetError) as ei:
        FashionMNIST(root=tmp_path / "nowhere")
    assert "/usr/share/datasets/fashion-mnist" in str(ei.value)


def test_mnist_mismatched_counts(tmp_path):
    _make_mnist(tmp_path)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), True)
    with pytest.raises(DatasetError, match="12 images but 3 labels"):
        MNIST(root=tmp_path)


def test_download_verifies_sha256(tmp_path, monkeypatch):
    from gradflow.datasets import _files
    src = tmp_path / "mirror"
    _make_mnist(src)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GRADFLOW_DATA", raising=False)

    class Local(MNIST):
        mirrors = ("file://" + str(src) + "/",)
        files = {s: _files.sha256_of(src / (s + ".gz")) for s in MNIST.files}

    m = Local(download=True, train=False)
    assert len(m) == 5
    assert (tmp_path / "cache" / "gradflow" / "MNIST" / "t10k-images-idx3-ubyte.gz").exists()

    class Bad(Local):
        name = "Bad"
        files = {s: "0" * 64 for s in MNIST.files}

    with pytest.raises(DatasetError, match="sha256 mismatch"):
        Bad(download=True)
    assert not any(p.suffix == ".part" for p in (tmp_path / "cache" / "gradflow" / "Bad").iterdir())


def _write_cifar(folder, n=4, labels_key="labels"):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    made = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump({b"batch_label": b"x", labels_key.encode(): labels, b"data": data,
                         b"filenames": [b"f"] * n}, f, protocol=2)
        made[name] = (data, labels)
    return made


def test_cifar10_from_generated_batches(tmp_path):
    made = _write_cifar(tmp_path / "cifar-10-batches-py")
    tr = CIFAR10(root=tmp_path, train=True)
    te = CIFAR10(root=tmp_path, train=False)
    assert len(tr) == 20 and len(te) == 4
    assert tr.data.shape == (20, 3, 32, 32) and tr.data.dtype == np.uint8
    np.testing.assert_array_equal(te.data.reshape(4, -1), made["test_batch"][0])
    assert te.targets.tolist() == made["test_batch"][1]
    x, y = tr[0]
    assert x.shape == (3, 32, 32) and x.dtype == np.float32
    # red plane first (CIFAR stores R, G, B planes of 1024 bytes)
    np.testing.assert_array_equal(te.data[0, 0].ravel(), made["test_batch"][0][0, :1024])


def test_cifar10_refuses_code_and_malformed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    p = tmp_path / "evil"
    p.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(DatasetError, match="refusing"):
        read_cifar_batch(p)
    assert not (tmp_path / "pwned").exists()
    p.write_bytes(pickle.dumps({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]}, protocol=2))
    with pytest.raises(DatasetError, match="3072"):
        read_cifar_batch(p)
    p.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(DatasetError, match="dict"):
        read_cifar_batch(p)
    p.write_bytes(b"\x80\x02}q\x00(X")  # truncated pickle
    with pytest.raises(DatasetError):
        read_cifar_batch(p)
    p.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [12]}, protocol=2))
    with pytest.raises(DatasetError, match="0..9"):
        read_cifar_batch(p)
    with pytest.raises(DatasetError, match="not found"):
        CIFAR10(root=tmp_path / "none")


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason=f"{FASHION} not installed "
                    "(apt install dataset-fashion-mnist)")
def test_real_fashion_mnist_files():
    tr = FashionMNIST(train=True, root="/nonexistent")
    te = FashionMNIST(train=False, root="/nonexistent")
    assert tr.data.shape == (60000, 28, 28) and te.data.shape == (10000, 28, 28)
    assert np.bincount(tr.targets).tolist() == [6000] * 10
    assert np.bincount(te.targets).tolist() == [1000] * 10
