"""gradflow.vis gradient tools on models whose answers can be derived by hand:
Gram matrices, style/content loss, saliency, FGSM, activation maximisation,
plus the plotting functions (headless, PNG written)."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
import gradflow.nn as nn
from gradflow.autograd import gradcheck
from gradflow.vis import (activation_maximization, content_loss, feature_maps, fgsm,
                          gram_matrix, plot_feature_maps, plot_filters, saliency, style_loss)
from gradflow.vis.saliency import plot_saliency


# -- Gram matrix / style ---------------------------------------------------------------------
def test_gram_matrix_hand_computation():
    # two channels over a 1x2 image: F = [[1, 2], [3, 4]]
    f = gradflow.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])             # (1, 2, 1, 2)
    raw = np.array([[1 * 1 + 2 * 2, 1 * 3 + 2 * 4],
                    [3 * 1 + 4 * 2, 3 * 3 + 4 * 4]], dtype=np.float32)  # [[5, 11], [11, 25]]
    np.testing.assert_allclose(gram_matrix(f, normalize=False).numpy()[0], raw)
    # normalised by C*H*W = 2*1*2 = 4
    np.testing.assert_allclose(gram_matrix(f).numpy()[0], raw / 4)
    np.testing.assert_allclose(gram_matrix(f[0]).numpy(), raw / 4)    # unbatched (C, H, W)


def test_gram_matrix_batch_matches_numpy_and_is_symmetric():
    x = gradflow.randn(3, 4, 5, 6)
    g = gram_matrix(x).numpy()
    a = x.numpy().reshape(3, 4, 30)
    np.testing.assert_allclose(g, np.einsum("nci,ndi->ncd", a, a) / 120, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, g.transpose(0, 2, 1))
    with pytest.raises(ValueError, match="gram_matrix"):
        gram_matrix(gradflow.randn(4, 5))


def test_style_and_content_loss_values_and_gradients():
    f = gradflow.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    target = gradflow.zeros(1, 2, 2)
    # mean of (G - 0)^2 over the 4 entries of [[1.25, 2.75], [2.75, 6.25]]
    expected = (1.25 ** 2 + 2 * 2.75 ** 2 + 6.25 ** 2) / 4
    assert style_loss(f, target).item() == pytest.approx(expected, rel=1e-6)
    assert style_loss([f, f], [target, target], weights=[1.0, 0.5]).item() == \
        pytest.approx(1.5 * expected, rel=1e-6)
    assert content_loss(f, gradflow.zeros(1, 2, 1, 2)).item() == pytest.approx(7.5)
    x = gradflow.randn(2, 3, 4, 4, dtype="float64", requires_grad=True)
    a = gram_matrix(gradflow.randn(1, 3, 4, 4, dtype="float64"))
    assert gradcheck(lambda t: style_loss(t, a), (x,))
    assert gradcheck(lambda t: gram_matrix(t), (x,))
    with pytest.raises(ValueError, match="style_loss"):
        style_loss([f], [target, target])


# -- saliency ----------------------------------------------------------------------------------
def test_saliency_of_linear_model_is_abs_weight():
    model = nn.Linear(6, 3)
    x = gradflow.randn(4, 6)
    w = model.weight.detach().numpy()
    for t in range(3):
        np.testing.assert_allclose(saliency(model, x, target=t).numpy(),
                                   np.tile(np.abs(w[t]), (4, 1)), rtol=1e-6)
    # one target per sample
    s = saliency(model, x, target=[0, 1, 2, 0]).numpy()
    np.testing.assert_allclose(s, np.abs(w[[0, 1, 2, 0]]), rtol=1e-6)
    # default: the predicted class
    pred = model(x).numpy().argmax(1)
    np.testing.assert_allclose(saliency(model, x).numpy(), np.abs(w[pred]), rtol=1e-6)
    # the model is left as it was: no parameter grads, requires_grad restored
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_saliency_image_shape_and_channel_max():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
    x = gradflow.randn(2, 2, 3, 3)
    w = model[1].weight.detach().numpy().reshape(4, 2, 3, 3)
    s = saliency(model, x, target=1)
    assert s.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(s.numpy()[0], np.abs(w[1]), rtol=1e-6)
    np.testing.assert_allclose(saliency(model, x, 1, reduce="max").numpy()[1],
                               np.abs(w[1]).max(axis=0), rtol=1e-6)


def test_saliency_of_a_square_is_twice_abs_x():
    class Square(nn.Module):          # score_0 = sum x^2, score_1 = sum x
        def forward(self, x):
            return gradflow.stack([(x * x).sum(1), x.sum(1)], dim=1)

    x = gradflow.randn(3, 5)
    np.testing.assert_allclose(saliency(Square(), x, 0).numpy(), 2 * np.abs(x.numpy()), rtol=1e-6)
    np.testing.assert_allclose(saliency(Square(), x, 1).numpy(), np.ones((3, 5)))


# -- FGSM --------------------------------------------------------------------------------------
def test_fgsm_linear_model_matches_hand_gradient():
    model = nn.Linear(5, 3)
    x = gradflow.randn(4, 5)
    y = np.array([0, 1, 2, 1])
    eps = 0.1
    w = model.weight.detach().numpy().astype(np.float64)
    logits = model(x).detach().numpy().astype(np.float64)
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # d CE / d x = (softmax - onehot) @ W
    g = (p - np.eye(3)[y]) @ w
    x_adv = fgsm(model, x, gradflow.tensor(y), eps)
    np.testing.assert_allclose(x_adv.numpy(), x.numpy() + eps * np.sign(g), rtol=1e-6, atol=1e-7)
    # every pixel moved by exactly eps; the loss went up for every sample
    np.testing.assert_allclose(np.abs(x_adv.numpy() - x.numpy()), eps, rtol=1e-5)
    ce = gradflow.nn.functional.cross_entropy
    assert ce(model(x_adv), gradflow.tensor(y)).item() > ce(model(x), gradflow.tensor(y)).item()
    # targeted: step towards class 2 lowers its loss; clip keeps the range
    xt = fgsm(model, x, 2, eps, targeted=True, clip=(-0.5, 0.5))
    assert xt.numpy().min() >= -0.5 and xt.numpy().max() <= 0.5
    np.testing.assert_allclose(fgsm(model, x, y, eps).numpy(), x_adv.numpy())   # numpy labels
    xt = fgsm(model, x, [2, 2, 2, 2], eps, targeted=True)
    t2 = gradflow.tensor([2, 2, 2, 2])
    assert ce(model(xt), t2).item() < ce(model(x), t2).item()
    assert all(q.grad is None for q in model.parameters())


# -- activation maximisation -------------------------------------------------------------------
def test_activation_maximization_linear_converges_to_w_over_2l2():
    model = nn.Linear(5, 2)
    w = model.weight.detach().numpy()[1]
    # J = w.x + b - l2 |x|^2 is maximised at x* = w / (2 l2); lr 0.1, l2 0.5: x <- x + 0.1 (w - x)
    img, hist = activation_maximization(model, 1, steps=200, lr=0.1, l2=0.5, input_shape=(5,),
                                        return_history=True)
    np.testing.assert_allclose(img.numpy()[0], w / (2 * 0.5), rtol=1e-4, atol=1e-5)
    assert len(hist) == 201
    assert hist[-1] > hist[0]
    assert all(b >= a - 1e-6 for a, b in zip(hist, hist[1:]))      # w.x rises monotonically here


def test_activation_maximization_conv_channel_rises(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
    img, hist = activation_maximization(model, ("3", 5), steps=40, lr=0.1, l2=1e-3,
                                        input_shape=(1, 12, 12), normalize=True,
                                        return_history=True, path=tmp_path / "am.png")
    assert img.shape == (1, 1, 12, 12)
    assert hist[-1] > hist[0] + 0.1 and hist[-1] > 2 * max(hist[0], 1e-3)
    assert (tmp_path / "am.png").stat().st_size > 1000
    # one spatial unit of a layer given as a module
    _, h2 = activation_maximization(model, (model[0], 2, 6, 6), steps=20, lr=1.0,
                                    input_shape=(1, 12, 12), return_history=True)
    assert h2[-1] > h2[0]
    with pytest.raises(ValueError, match="input_shape"):
        activation_maximization(model, ("3", 1))


# -- plots -------------------------------------------------------------------------------------
def _png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


def test_plot_filters_and_feature_maps(tmp_path):
    rgb = nn.Conv2d(3, 8, 5)
    plot_filters(rgb, path=tmp_path / "rgb.png")
    _png(tmp_path / "rgb.png")
    deep = nn.Conv2d(6, 4, 3)
    plot_filters(deep, path=tmp_path / "deep.png")
    _png(tmp_path / "deep.png")
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    x = gradflow.randn(2, 1, 10, 10)
    fm = feature_maps(model, x, "1")
    np.testing.assert_allclose(fm.numpy(), np.maximum(model[0](x).detach().numpy(), 0), rtol=1e-6)
    assert feature_maps(model, x, -1).shape == (2, 6, 5, 5)           # leaf index
    assert feature_maps(model, x, model[0]).shape == (2, 6, 10, 10)   # module
    with pytest.raises(KeyError, match="no layer named"):
        feature_maps(model, x, "nope")
    plot_feature_maps(model, x, "1", path=tmp_path / "fm.png")
    _png(tmp_path / "fm.png")
    plot_saliency(x, saliency(nn.Sequential(nn.Flatten(), nn.Linear(100, 3)), x, 0),
                  path=tmp_path / "sal.png")
    _png(tmp_path / "sal.png")
