"""The vis examples in fast mode, asserting their effect on a quickly trained
LeNet-5 (trained once per session on the bundled digits and shared through a
weights file that every example loads)."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import gradflow
from gradflow.vis import activation_maximization, fgsm

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"_example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def is_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    return head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 2000


@pytest.fixture(scope="session")
def lenet(tmp_path_factory):
    """LeNet-5 after 100 Adam steps of batch 32 on 4,500 digits (a few seconds)."""
    common = load_example("vis_common")
    cache = str(tmp_path_factory.mktemp("lenet") / "lenet.npz")
    model, test = common.trained_lenet(cache=cache, steps=100, batch_size=32, verbose=False)
    return model, test, cache, common


def run(name, tmp_path, cache, *extra):
    return load_example(name).main(["--fast", "--out", str(tmp_path), "--model-cache", cache,
                                    *extra])


def test_quick_lenet_is_trained(lenet):
    model, (x, y), _, common = lenet
    assert common.accuracy(model, x, y) > 0.8


def test_fgsm_eps_02_flips_most_predictions(lenet):
    model, (x, y), _, _ = lenet
    x, y = x[:200], y[:200]
    xt = gradflow.tensor(x)
    x_adv = fgsm(model, xt, gradflow.tensor(y), 0.2, clip=(0.0, 1.0))
    d = x_adv.numpy() - x
    assert np.abs(d).max() <= 0.2 + 1e-6 and x_adv.numpy().min() >= 0 and x_adv.numpy().max() <= 1
    with gradflow.no_grad():
        clean = model(xt).numpy().argmax(1)
        adv = model(x_adv).numpy().argmax(1)
        noise = model(gradflow.tensor(np.clip(
            x + 0.2 * np.sign(np.random.RandomState(0).randn(*x.shape)), 0, 1)
            .astype(np.float32))).numpy().argmax(1)
    ok = clean == y
    flip = (adv[ok] != y[ok]).mean()
    assert flip > 0.5, f"FGSM eps=0.2 flipped only {flip:.0%} of correct predictions"
    # random signs of the same size hurt far less: the gradient's direction matters
    assert (noise[ok] != y[ok]).mean() < flip / 2


def test_activation_maximization_on_lenet(lenet):
    model, _, _, _ = lenet
    for c in (1, 8):
        img, hist = activation_maximization(model, c, steps=30, lr=0.1, l2=1e-2,
                                            input_shape=(1, 28, 28), seed=c, return_history=True)
        assert hist[-1] > hist[0] + 2.0
        with gradflow.no_grad():
            p = model(img).softmax(dim=1).numpy()[0]
        assert p.argmax() == c and p[c] > 0.5


def test_example_fgsm(lenet, tmp_path):
    res = run("vis_fgsm", tmp_path, lenet[2])
    assert is_png(res["png"])
    assert res["clean_accuracy"] > 0.8 and res["flip_rate"] > 0.5
    assert res["max_perturbation"] <= 0.2 + 1e-6


def test_example_saliency(lenet, tmp_path):
    res = run("vis_saliency", tmp_path, lenet[2])
    assert is_png(res["png"])
    # the gradient predicts the finite-difference change of the score at the top pixel
    assert res["fd_hi"] == pytest.approx(res["grad_hi"], rel=0.15)
    assert res["fd_hi"] > 5 * res["fd_lo"]


def test_example_activation_max(lenet, tmp_path):
    res = run("vis_activation_max", tmp_path, lenet[2])
    assert is_png(res["png"]) and is_png(res["png_conv"])
    assert all(a > b + 1.0 for a, b in zip(res["after"], res["before"]))
    assert min(res["probs"]) > 0.5


def test_example_filters(lenet, tmp_path):
    res = run("vis_filters", tmp_path, lenet[2])
    assert all(is_png(p) for p in res["pngs"])
    assert res["shapes"] == {"1": (1, 6, 28, 28), "4": (1, 16, 10, 10)}


def test_example_summary(tmp_path):
    res = load_example("vis_summary").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    assert res["alexnet"].total_params == 60_965_224
    assert res["lenet"].total_params == 61_706


def test_example_receptive_field(tmp_path):
    res = load_example("vis_receptive_field").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    assert res["drawn"] == [("0", 5), ("2", 6), ("3", 14), ("5", 16)]


def test_example_style_transfer(tmp_path):
    res = load_example("style_transfer").main(["--fast", "--out", str(tmp_path)])
    assert is_png(res["png"])
    # the image took on the style: Gram-matrix loss down >10x from the content image's
    assert res["final_style_loss"] < 0.1 * res["initial_style_loss"]
    # ...while keeping the content's layout: its brightness pattern still correlates
    # with the content image's, not with the style image's
    def corr(a, b):
        return np.corrcoef(a.mean(0).ravel(), b.mean(0).ravel())[0, 1]
    c_content, c_style = corr(res["image"], res["content"]), corr(res["image"], res["style"])
    assert c_content > 0.25 and c_content > c_style + 0.2
    assert res["image"].min() >= 0 and res["image"].max() <= 1
