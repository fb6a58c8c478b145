"""PyTorch-tutorial compatibility: scripts written the way PyTorch's own tutorials
write them (tests/pytorch_scripts/, only the imports changed) run on gradflow, on
small real data (the bundled MNIST digits written out as IDX files), and learn."""
from __future__ import annotations

import gzip
import os
import runpy
import struct
import sys

import numpy as np
import pytest

from gradflow.utils.threads import blas_threads

import gradflow as gf
from gradflow import datasets


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small GEMMs: one OpenBLAS thread is faster, and immune to a busy machine."""
    with blas_threads(1):
        yield

HERE = os.path.join(os.path.dirname(__file__), "pytorch_scripts")


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.tobytes())


def _idx_copy(folder, n_train, n_test, seed=0):
    """Real digits as MNIST-layout IDX files: n_train train and n_test disjoint test ones."""
    images, labels = datasets.load_digits()
    perm = np.random.default_rng(seed).permutation(len(labels))
    os.makedirs(folder, exist_ok=True)
    for split, idx in (("train", perm[:n_train]), ("t10k", perm[n_train:n_train + n_test])):
        _write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), images[idx])
        _write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), labels[idx])


def _run(script, argv=(), capsys=None):
    old = sys.argv
    sys.argv = [script] + list(argv)
    try:
        return runpy.run_path(os.path.join(HERE, script), run_name="__main__")
    finally:
        sys.argv = old


def test_classic_mnist_example(tmp_path, monkeypatch, capsys):
    _idx_copy(tmp_path / "data", n_train=640, n_test=300)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the script reads '../data' and saves mnist_cnn.pt here
    g = _run("mnist_classic.py", ["--epochs", "1", "--no-accel", "--log-interval", "5",
                                  "--save-model"])
    history = g["HISTORY"]
    (loss0, acc0), (loss1, acc1) = history
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [0/640 (0%)]" in out and "Test set: Average loss" in out
    assert loss1 < loss0 and acc1 > acc0 + 0.25 and acc1 > 0.4  # 10 Adadelta steps; chance is 0.1
    sd = gf.load(work / "mnist_cnn.pt")
    assert sd["fc1.weight"].shape == (128, 9216)


def test_polynomial_with_tensors_and_no_grad_updates(capsys):
    gf.manual_seed(0)
    g = _run("polynomial_tensors.py")
    losses = g["LOSSES"]
    assert len(losses) == 20 and losses[-1] < 0.2 * losses[0] and losses[-1] < 50
    # the fit approximates sin(x) ~ x - x^3/6 (the tutorial's result: b ~ 0.85, d ~ -0.09)
    assert 0.6 < g["b"].item() < 1.0 and -0.12 < g["d"].item() < -0.06
    assert "Result: y = " in capsys.readouterr().out


def test_data_attribute_updates():
    gf.manual_seed(0)
    g = _run("polynomial_data.py")
    assert g["LOSSES"][-1] < 0.1 * g["LOSSES"][0]
    assert g["POLY"][-1] < 0.2 * g["POLY"][0] and g["POLY"][-1] < 50
    assert not g["w1"].grad.numpy().any()  # zeroed through .grad.data.zero_()


def test_quickstart(tmp_path, monkeypatch, capsys):
    _idx_copy(tmp_path / "data" / "FashionMNIST" / "raw", n_train=1280, n_test=256)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUICKSTART_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("QUICKSTART_EPOCHS", "3")
    g = _run("quickstart.py")
    out = capsys.readouterr().out
    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out and "int64" in out
    assert "Using cpu device" in out or "Using cuda device" in out
    assert "Predicted:" in out and (tmp_path / "model.pth").exists()
    (l0, a0), *_, (l3, a3) = g["RESULTS"]
    assert l3 < l0 and a3 > a0


def test_device_and_accelerator_api():
    d = gf.device("cpu")
    assert str(d) == "cpu" and d == "cpu" and d.type == "cpu"
    assert isinstance(gf.cuda.is_available(), bool)
    assert gf.accelerator.is_available() == gf.cuda.is_available()
    if not gf.cuda.is_available():
        assert gf.accelerator.current_accelerator() is None
    x = gf.ones(2).to(d)
    assert x.device == gf.device("cpu")
    m = gf.nn.Linear(2, 2).to(d)
    assert m(x).shape == (2,)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "RMSprop"])
def test_optimizer_names_exist_like_torch(name):
    opt = getattr(gf.optim, name)(gf.nn.Linear(2, 1).parameters(), lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1


def test_dcgan_tutorial_shape():
    g = _run("dcgan.py")
    assert g["samples"].shape == (4, 1, 16, 16)
    s = g["samples"].numpy()
    assert np.all(np.abs(s) <= 1.0)  # Tanh output
    losses = np.array(g["losses"])
    assert np.all(np.isfinite(losses)) and losses.shape == (3, 2)
    # the discriminator is learning the real/fake split: its loss falls step by step
    assert losses[-1, 0] < losses[0, 0]
