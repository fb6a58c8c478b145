"""More of PyTorch's official tutorials (tests/pytorch_scripts/, written as the tutorials
write them, only the imports changed) run on gradflow on small offline data and learn:
"What is torch.nn really?" on the bundled MNIST digits, the CIFAR-10 "Training a
Classifier" on synthetic CIFAR-10 batch files, the character-level RNN name classifier on
made-up names, and the rest of "Learning PyTorch with Examples"."""
from __future__ import annotations

import colorsys
import gc
import gzip
import math
import os
import pickle
import random
import re
import runpy
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow import datasets
from gradflow.utils.threads import blas_threads

HERE = os.path.join(os.path.dirname(__file__), "pytorch_scripts")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small GEMMs: one OpenBLAS thread is faster, and immune to a busy machine."""
    with blas_threads(1):
        yield


def _run(script):
    old = sys.argv
    sys.argv = [script]
    try:
        return runpy.run_path(os.path.join(HERE, script), run_name="__main__")
    finally:
        sys.argv = old


def _seed(s=0):
    gf.manual_seed(s)
    random.seed(s)


# -- "What is torch.nn really?" ------------------------------------------------------------------
def _mnist_pickle(folder, n_train, n_valid, seed=0):
    """The tutorial's mnist.pkl.gz layout: ((x_train, y_train), (x_valid, y_valid), test),
    x float32 (N, 784) in [0, 1], y int64 -- from the bundled real digits."""
    images, labels = datasets.load_digits()
    perm = np.random.default_rng(seed).permutation(len(labels))
    x = (images.reshape(len(labels), 784) / 255).astype(np.float32)
    tr, va = perm[:n_train], perm[n_train:n_train + n_valid]
    os.makedirs(folder / "mnist", exist_ok=True)
    with gzip.open(folder / "mnist" / "mnist.pkl.gz", "wb") as f:
        pickle.dump(((x[tr], labels[tr]), (x[va], labels[va]), (x[:0], labels[:0])), f)


def test_what_is_torch_nn_really(tmp_path, monkeypatch, capsys):
    _mnist_pickle(tmp_path / "data", n_train=4000, n_valid=1000)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NN_TUTORIAL_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NN_TUTORIAL_EPOCHS", "2")
    _seed(0)
    g = _run("nn_tutorial.py")
    out = capsys.readouterr().out
    assert "(4000, 784)" in out and "tensor(0) tensor(9)" in out
    # from scratch: hand-written log_softmax + nll(range(...) indexing), manual SGD updates
    (l0, a0), (l1, a1) = g["SCRATCH_BEFORE"], g["SCRATCH_AFTER"]
    assert 1.5 < l0 < 3.5 and l1 < 0.4 * l0 and a1 > 0.8
    # F.cross_entropy of the same logits is the same number as the hand-written nll
    assert g["FUNCTIONAL"] == pytest.approx(l1, rel=1e-4)
    for before, after in [("MODULE_BEFORE", "MODULE_AFTER"), ("LINEAR_BEFORE", "LINEAR_AFTER")]:
        assert g[after] < 0.4 * g[before]
    for name in ("OPTIM_AFTER", "DATASET_AFTER", "DATALOADER_AFTER"):
        assert g[name] < 1.0, name
    assert g["VALIDATION"][-1] < 0.7  # validation loss of the logistic model after 2 epochs
    # fit() prints "epoch val_loss" lines: the logistic model, Mnist_CNN, the Sequential with
    # Lambda + AvgPool2d, the WrappedDataLoader + AdaptiveAvgPool2d one, and that one again
    fits = [float(v) for v in re.findall(r"^\d+ (\d+\.\d+)$", out, re.M)]
    assert len(fits) == 5 * 2 and all(math.isfinite(v) for v in fits)
    assert fits[1] < 0.7                      # logistic regression, 2 epochs
    assert fits[-1] < fits[-4] and fits[-1] < 1.4  # the CNN keeps learning on "dev"
    # the final CNN classifies the held-out digits well above chance
    model, xv, yv = g["model"], g["x_valid"], g["y_valid"]
    model.eval()
    with gf.no_grad():
        acc = g["accuracy"](model(xv.view(-1, 1, 28, 28)), yv).item()
    assert acc > 0.5


# -- "Training a Classifier" (CIFAR-10) -------------------------------------------------------------
def _synthetic_cifar(folder, n_per_batch=400, n_test=500, seed=0):
    """cifar-10-batches-py/ with learnable 32x32 images: a class-coloured disc (even
    classes) or square (odd) at a random place on a noisy grey background."""
    rng = np.random.default_rng(seed)
    palette = np.array([colorsys.hsv_to_rgb(c / 10, 0.9, 0.9) for c in range(10)], np.float32)
    yy, xx = np.mgrid[0:32, 0:32]

    def batch(n):
        labels = rng.integers(0, 10, n)
        img = rng.uniform(0.2, 0.6, (n, 1, 32, 32)) + rng.normal(0, 0.08, (n, 3, 32, 32))
        for k, c in enumerate(labels):
            cy, cx, r = rng.integers(8, 24), rng.integers(8, 24), rng.integers(5, 9)
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if c % 2 == 0 else \
                ((abs(yy - cy) <= r) & (abs(xx - cx) <= r))
            img[k][:, blob] = palette[c][:, None] + rng.normal(0, 0.05, (3, int(blob.sum())))
        data = (np.clip(img, 0, 1) * 255).astype(np.uint8).reshape(n, 3072)
        return {b"batch_label": b"synthetic", b"labels": labels.tolist(), b"data": data}

    d = folder / "cifar-10-batches-py"
    os.makedirs(d, exist_ok=True)
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        with open(d / name, "wb") as f:
            pickle.dump(batch(n), f, protocol=2)


def test_cifar10_training_a_classifier(tmp_path, monkeypatch, capsys):
    _synthetic_cifar(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIFAR_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("CIFAR_EPOCHS", "3")
    _seed(0)
    g = _run("cifar10_tutorial.py")
    out = capsys.readouterr().out
    running = [float(v) for v in re.findall(r"^\[\d, +\d+\] loss: (\d+\.\d+)$", out, re.M)]
    assert len(running) == 15 and running[0] > 2.0 and running[-1] < 0.5 * running[0]
    assert "Finished Training" in out and "GroundTruth:" in out and "Predicted:" in out
    # the reloaded net (a fresh Net() + load_state_dict) is the trained one: far above chance
    assert g["total"] == 500 and g["correct"] / g["total"] > 0.6
    assert sum(g["total_pred"].values()) == 500 and sum(g["correct_pred"].values()) == g["correct"]
    assert set(g["total_pred"]) == set(g["classes"])
    sd = gf.load(tmp_path / "cifar_net.pth")
    assert sd["conv1.weight"].shape == (6, 3, 5, 5) and sd["fc1.weight"].shape == (120, 400)
    net = g["Net"]()
    net.load_state_dict(sd)
    with gf.no_grad():
        np.testing.assert_array_equal(net(g["images"]).numpy(), g["net"](g["images"]).numpy())
    assert out.rstrip().endswith("cpu") or out.rstrip().endswith("cuda:0")


# -- "Classifying Names with a Character-Level RNN" --------------------------------------------------
def _synthetic_names(folder, n=40, seed=0):
    """data/names/<Language>.txt: made-up names from three syllable inventories."""
    rng = random.Random(seed)
    langs = {
        "Italian": (["ro", "ma", "ri", "no", "lo", "be", "ce", "ga", "bi", "ne", "ve", "lu"],
                    ["i", "o", "a", "ini", "elli"]),
        "Russian": (["vol", "kov", "zhin", "grad", "mir", "dov", "bor", "rev", "tsk", "lav"],
                    ["ov", "sky", "in", "ev", "enko"]),
        "Japanese": (["ka", "shi", "to", "mo", "na", "ya", "ko", "su", "sa", "tsu", "hi", "ku"],
                     ["shi", "ko", "ta", "moto", "ra"]),
    }
    os.makedirs(folder, exist_ok=True)
    for lang, (syll, ends) in langs.items():
        names = set()
        while len(names) < n:
            names.add(("".join(rng.choice(syll) for _ in range(rng.randint(1, 2)))
                       + rng.choice(ends)).capitalize())
        names = sorted(names)
        if lang == "Russian":
            names.append("Ślusàrski")  # unicodeToAscii -> Slusarski
        with open(os.path.join(folder, f"{lang}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(names) + "\n")


# the tutorial's readLines leaves its files to the garbage collector, as written
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_char_rnn_name_classification(tmp_path, monkeypatch, capsys):
    _synthetic_names(tmp_path / "data" / "names")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAR_RNN_ITERS", "2000")
    _seed(0)
    g = _run("char_rnn_classification.py")
    gc.collect()  # close those files here, under this test's filters
    out = capsys.readouterr().out
    assert "Slusarski" in g["category_lines"]["Russian"]
    # lineToTensor: one-hot rows written through tensor[li][0][i] = 1 (views of one tensor)
    t = g["lineToTensor"]("Jones")
    assert t.shape == (5, 1, 57) and t.sum().item() == 5
    assert t[0][0][g["letterToIndex"]("J")].item() == 1 and t[4, 0].argmax().item() == g["letterToIndex"]("s")
    losses = g["all_losses"]
    assert len(losses) == 100 and np.mean(losses[:5]) > 1.0 and np.mean(losses[-10:]) < 0.35
    # the confusion matrix was filled through confusion[i][j] += 1 and row-normalised
    conf = g["confusion"].numpy()
    np.testing.assert_allclose(conf.sum(1), 1.0, rtol=1e-6)
    assert np.diag(conf).min() > 0.8
    top = dict(re.findall(r"^> (\w+)\n\(-?\d+\.\d+\) (\w+)$", out, re.M))
    assert top["Dovesky"] == "Russian" and top["Satoshi"] == "Japanese"


# -- "Learning PyTorch with Examples" ---------------------------------------------------------------
def _printed_losses(out):
    return [float(v) for v in re.findall(r"^\d+ (\S+)$", out, re.M)]


def test_polynomial_hand_gradients_equal_autograd_module(capsys):
    _seed(0)
    g1 = _run("polynomial_tensor.py")
    out1 = capsys.readouterr().out
    _seed(0)
    g2 = _run("polynomial_module.py")
    out2 = capsys.readouterr().out
    l1, l2 = _printed_losses(out1), _printed_losses(out2)
    assert len(l1) == 20 and l1[-1] < 0.2 * l1[0] and l1[-1] < 50
    # the same randn draws; hand-written gradients vs autograd + optim.SGD: the same fit
    np.testing.assert_allclose(l1, l2, rtol=1e-3)
    m = g2["model"]
    for name in "abcd":
        assert getattr(m, name).item() == pytest.approx(g1[name].item(), rel=1e-3, abs=1e-5)
    assert 0.6 < g1["b"].item() < 1.0 and -0.12 < g1["d"].item() < -0.06
    assert out2.strip().splitlines()[-1].startswith("Result: y = ")


def test_legendre_custom_autograd_function(capsys):
    g = _run("polynomial_custom_function.py")
    out = capsys.readouterr().out
    losses = _printed_losses(out)
    # the tutorial's published numbers (deterministic: the weights start from torch.full)
    assert losses[0] == pytest.approx(209.958, rel=1e-3) and losses[-1] == pytest.approx(8.94, rel=0.02)
    assert g["b"].item() == pytest.approx(-2.2085, rel=1e-3) and g["d"].item() == pytest.approx(0.2555, rel=1e-3)
    assert abs(g["a"].item()) < 1e-5 and abs(g["c"].item()) < 1e-5
    # the hand-written backward is P3'(x) = 1.5 (5 x^2 - 1)
    x = gf.tensor([-1.0, 0.3, 2.0], requires_grad=True)
    y = g["LegendrePolynomial3"].apply(x)
    np.testing.assert_allclose(y.numpy(), 0.5 * (5 * x.numpy() ** 3 - 3 * x.numpy()), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * (5 * x.numpy() ** 2 - 1), rtol=1e-6)


def test_polynomial_rmsprop(capsys):
    _seed(0)
    g = _run("polynomial_optim.py")
    losses = _printed_losses(capsys.readouterr().out)
    assert losses[-1] < 0.01 * losses[0] and losses[-1] < 12
    w = g["linear_layer"].weight.detach().numpy().ravel()
    assert 0.75 < w[0] < 0.95 and -0.11 < w[2] < -0.08  # sin x ~ 0.857 x - 0.093 x^3


def test_dynamic_net_control_flow_and_weight_sharing(monkeypatch, capsys):
    monkeypatch.setenv("DYNAMIC_NET_ITERS", "4000")
    _seed(0)
    g = _run("dynamic_net.py")
    out = capsys.readouterr().out
    losses = _printed_losses(out)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses) and losses[1] < 0.6 * losses[0]
    assert "x^4 ? +" in out
    # e is shared by the x^4 and x^5 terms: its gradient sums both uses
    model = g["model"]
    x = gf.tensor([0.5, -1.0, 2.0])
    random.seed(3)
    while True:  # find a draw that uses both x^4 and x^5
        state = random.getstate()
        if random.randint(4, 6) == 6:
            break
    random.setstate(state)
    model.zero_grad()
    model(x).sum().backward()
    xn = x.numpy()
    assert model.e.grad.item() == pytest.approx(float((xn ** 4 + xn ** 5).sum()), rel=1e-5)
