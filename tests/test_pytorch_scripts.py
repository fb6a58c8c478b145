"""Our own PyTorch-style programs (tests/pytorch_scripts/) run on gradflow and, where
torch is importable, on torch with only their imports switched (PROGRAM_FRAMEWORK);
both start from the same NumPy-drawn weights, so their printed results must agree."""
from __future__ import annotations

import gzip
import importlib.util
import os
import runpy
import struct
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow import datasets
from gradflow.utils.threads import blas_threads

HERE = os.path.join(os.path.dirname(__file__), "pytorch_scripts")
HAVE_TORCH = importlib.util.find_spec("torch") is not None
FRAMEWORKS = ["gradflow", "torch"] if HAVE_TORCH else ["gradflow"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small GEMMs: one OpenBLAS thread is faster, and immune to a busy machine."""
    with blas_threads(1):
        yield


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.tobytes())


def _idx_copy(folder, n_train, n_test, seed=0):
    """Real digits as MNIST-layout IDX files: n_train train and n_test disjoint test ones
    (used by test_examples.py and test_train.py)."""
    images, labels = datasets.load_digits()
    perm = np.random.default_rng(seed).permutation(len(labels))
    os.makedirs(folder, exist_ok=True)
    for split, idx in (("train", perm[:n_train]), ("t10k", perm[n_train:n_train + n_test])):
        _write_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"), images[idx])
        _write_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz"), labels[idx])


def _run(monkeypatch, framework, script, argv=(), **env):
    """Run a program in this process on ``framework``; returns its module globals."""
    monkeypatch.setenv("PROGRAM_FRAMEWORK", framework)
    for k, v in env.items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.setattr(sys, "argv", [script] + [str(a) for a in argv])
    sys.modules.pop("common", None)  # re-read PROGRAM_FRAMEWORK
    return runpy.run_path(os.path.join(HERE, script), run_name="__main__")


def _both(monkeypatch, script, argv=(), **env):
    return {fw: _run(monkeypatch, fw, script, argv, **env)["RESULTS"] for fw in FRAMEWORKS}


def _close(a, b, rtol=2e-3, atol=1e-4, what=""):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol, err_msg=what)


def test_fit_cubic_five_ways(monkeypatch, capsys):
    res = _both(monkeypatch, "fit_cubic.py")
    ours = res["gradflow"]
    # hand-written gradients and autograd take the same steps
    _close(ours["by_hand"]["coefs"], ours["autograd"]["coefs"], rtol=1e-5, atol=1e-6)
    for name in ("by_hand", "module_sgd", "sequential_rmsprop"):
        b, d = ours[name]["coefs"][1], ours[name]["coefs"][3]
        assert 0.6 < b < 1.0 and -0.12 < d < -0.05, name  # sin x ~ 0.86 x - 0.09 x^3
        assert ours[name]["loss"] < 15, name
    assert ours["custom_function"]["loss"] < 80
    assert "random_depth: loss" in capsys.readouterr().out
    if HAVE_TORCH:
        for name, r in res["torch"].items():
            if name == "sequential_rmsprop":  # RMSprop's last steps oscillate: rounding grows
                _close(ours[name]["coefs"], r["coefs"], rtol=0, atol=1e-2, what=name)
                continue
            _close(ours[name]["coefs"], r["coefs"], what=name)
            _close(ours[name]["loss"], r["loss"], what=name)


def test_image_classifier(tmp_path, monkeypatch, capsys):
    images, labels = datasets.load_digits()
    pick = np.random.default_rng(0).permutation(len(labels))[:400]
    np.savez(tmp_path / "digits.npz", images=images[pick], labels=labels[pick])
    res = {}
    for fw in FRAMEWORKS:
        g = _run(monkeypatch, fw, "image_classifier.py",
                 ["--data", tmp_path / "digits.npz", "--dropout", "0", "--log-interval", "5",
                  "--save-model", tmp_path / f"{fw}.pt"])
        res[fw] = g["RESULTS"]
    out = capsys.readouterr().out
    assert "Train Epoch: 1 [0/320]" in out and "Test set: Average loss" in out
    ours = res["gradflow"]
    (l1, (t1, a1, _)), (l2, (t2, a2, per_class)) = ours["history"]
    assert np.mean(l2) < np.mean(l1) and t2 < t1 and a2 > 0.4  # chance is 0.1
    assert sum(v[1] for v in per_class.values()) == 80
    x = gf.stack([ours["test_set"][i][0] for i in range(5)])
    with gf.no_grad():
        ours["model"].eval()
        np.testing.assert_array_equal(ours["reloaded"](x).numpy(), ours["model"](x).numpy())
    if HAVE_TORCH:
        for (lo, ev), (lt, et) in zip(ours["history"], res["torch"]["history"]):
            _close(lo, lt, what="training losses")
            _close(ev[:2], et[:2], what="test loss and accuracy")
        _close(ours["pooled"][0], res["torch"]["pooled"][0], what="pooled-net losses")


def test_image_classifier_with_dropout_learns(tmp_path, monkeypatch):
    images, labels = datasets.load_digits()
    pick = np.random.default_rng(1).permutation(len(labels))[:300]
    np.savez(tmp_path / "digits.npz", images=images[pick], labels=labels[pick])
    gf.manual_seed(0)
    res = _run(monkeypatch, "gradflow", "image_classifier.py",
               ["--data", tmp_path / "digits.npz", "--epochs", "2"])["RESULTS"]
    assert res["history"][-1][1][0] < res["history"][0][1][0]


def test_sequence_models_fast(tmp_path, monkeypatch):
    """gradflow alone: L-BFGS on the LSTM and the Transformer LM saved and reloaded."""
    res = _run(monkeypatch, "gradflow", "sequence_models.py", SEQUENCE_PARTS="lbfgs,transformer",
               SEQUENCE_SAVE_DIR=tmp_path)["RESULTS"]
    assert res["lbfgs"]["losses"][-1] < 0.05 * res["lbfgs"]["losses"][0]
    lm = res["lm_transformer"]
    assert lm["valid"][-1] < lm["valid"][0] and lm["reloaded"] == pytest.approx(lm["valid"][-1])


@pytest.mark.slow
def test_sequence_models(tmp_path, monkeypatch, capsys):
    res = _both(monkeypatch, "sequence_models.py", SEQUENCE_SAVE_DIR=tmp_path)
    ours = res["gradflow"]
    words = ours["words"]
    assert np.mean(words["losses"][-30:]) < 0.5 * np.mean(words["losses"][:30])
    assert min(np.diag(words["confusion"])) > 0.7
    lb = ours["lbfgs"]
    assert lb["losses"][-1] < 0.05 * lb["losses"][0] and lb["test_loss"] < 0.02
    for kind in ("lstm", "transformer"):
        lm = ours[f"lm_{kind}"]
        assert lm["train_shape"][1] == 4  # batchified by narrow + view(bsz, -1).t()
        assert lm["reloaded"] == pytest.approx(lm["valid"][-1], rel=1e-6)
    assert ours["lm_transformer"]["valid"][-1] < ours["lm_transformer"]["valid"][0]
    assert "lbfgs step 2" in capsys.readouterr().out
    if HAVE_TORCH:
        theirs = res["torch"]
        _close(words["losses"], theirs["words"]["losses"], what="word classifier")
        _close(lb["losses"], theirs["lbfgs"]["losses"], rtol=1e-2, atol=1e-5, what="L-BFGS")
        _close(lb["future"], theirs["lbfgs"]["future"], rtol=1e-2, atol=1e-3, what="forecast")
        for kind in ("lstm", "transformer"):
            _close(ours[f"lm_{kind}"]["valid"], theirs[f"lm_{kind}"]["valid"], what=kind)


def test_image_generators_and_reload(tmp_path, monkeypatch, capsys):
    res = {}
    for fw in FRAMEWORKS:
        first = _run(monkeypatch, fw, "image_generators.py", ["--out", tmp_path / fw])
        second = _run(monkeypatch, fw, "image_generators.py", ["--out", tmp_path / fw,
                                                               "--reload"])
        res[fw] = (first["RESULTS"], second["RESULTS"])
    (ours, again) = res["gradflow"]
    psnr = ours["sr"]["psnr"]
    assert psnr[-1] > psnr[0] + 3 and psnr[-1] > ours["sr"]["bilinear_psnr"] - 3
    assert again["sr"]["reloaded_psnr"] == pytest.approx(psnr[-1], rel=1e-6)
    samples = np.array(ours["gan"]["samples"])
    assert samples.shape == (4, 1, 16, 16) and np.abs(samples).max() <= 1.0
    assert np.isfinite(ours["gan"]["losses"]).all()
    if HAVE_TORCH:
        theirs = res["torch"][0]
        _close(psnr, theirs["sr"]["psnr"], rtol=1e-3, what="PSNR")
        _close(ours["gan"]["losses"], theirs["gan"]["losses"], what="GAN losses")
        _close(samples, theirs["gan"]["samples"], rtol=1e-3, atol=1e-3, what="GAN samples")
    assert "reloaded: PSNR" in capsys.readouterr().out


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
