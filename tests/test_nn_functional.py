"""gradflow.nn.functional beyond the op table: fused primitives are single graph
nodes, conv/pool semantics, the smaller helpers (one_hot, adaptive pooling,
dropout2d, kl_div, huber), and that the NumPy kernels are vectorised."""
from __future__ import annotations


import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck
from conftest import requires_torch


def _t(shape, seed=0, dtype="float64", rg=True):
    return gf.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=dtype, requires_grad=rg)


def test_fused_primitives_are_single_nodes():
    x = _t((2, 3, 6, 6))
    w = _t((4, 3, 3, 3), 1)
    b = _t((4,), 2)
    y = F.conv2d(x, w, b, stride=1, padding=1)
    assert y.grad_fn.name == "Conv2d" and len(y.grad_fn.parents) == 7
    assert F.max_pool2d(y, 2).grad_fn.name == "MaxPool2d"
    assert F.avg_pool2d(y, 2).grad_fn.name == "AvgPool2d"
    logits = _t((5, 4))
    loss = F.cross_entropy(logits, gf.tensor([0, 1, 2, 3, 0]))
    assert loss.grad_fn.name == "SoftmaxCrossEntropy"
    assert loss.grad_fn.parents[0] is logits  # straight from the leaf: one node
    assert F.linear(x.reshape(2, -1), _t((3, 108))).grad_fn.name == "Linear"
    assert F.log_softmax(logits, 1).grad_fn.name == "LogSoftmax"


def test_conv_groups_equal_separate_convs():
    x = _t((2, 4, 5, 5), rg=False)
    w = _t((6, 2, 3, 3), 1, rg=False)
    y = F.conv2d(x, w, groups=2).numpy()
    y0 = F.conv2d(x[:, :2], w[:3]).numpy()
    y1 = F.conv2d(x[:, 2:], w[3:]).numpy()
    np.testing.assert_allclose(y, np.concatenate([y0, y1], axis=1), rtol=1e-12)


def test_conv_matches_direct_sum():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((2, 3, 3, 2))
    s, p, d = (2, 1), (1, 0), (1, 2)
    y = F.conv2d(gf.tensor(x), gf.tensor(w), stride=s, padding=p, dilation=d).numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (6 + 2 * p[0] - d[0] * 2 - 1) // s[0] + 1
    ow = (5 + 2 * p[1] - d[1] * 1 - 1) // s[1] + 1
    ref = np.zeros((2, 2, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * s[0]:i * s[0] + d[0] * 2 + 1:d[0], j * s[1]:j * s[1] + d[1] + 1:d[1]]
            ref[:, :, i, j] = np.einsum("nchw,kchw->nk", patch, w)
    np.testing.assert_allclose(y, ref, rtol=1e-12)


def test_conv_padding_valid_and_unbatched():
    x = _t((3, 5, 5), rg=False)
    w = _t((2, 3, 3, 3), 1, rg=False)
    assert F.conv2d(x, w).shape == (2, 3, 3)
    assert F.conv2d(x, w, padding="valid").shape == (2, 3, 3)
    assert F.conv2d(x, w, padding="same").shape == (2, 5, 5)
    assert F.conv2d(x, w, padding=(0, 1)).shape == (2, 3, 5)


def test_pool_defaults_and_shapes():
    x = _t((1, 2, 7, 7), rg=False)
    assert F.max_pool2d(x, 2).shape == (1, 2, 3, 3)          # stride defaults to the kernel
    assert F.max_pool2d(x, 2, ceil_mode=True).shape == (1, 2, 4, 4)
    assert F.avg_pool2d(x, 3, 2, 1).shape == (1, 2, 4, 4)
    assert F.max_pool2d(x[0], 2).shape == (2, 3, 3)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    flat = x.numpy().reshape(1, 2, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(1, 2, -1), 2).reshape(y.shape),
                                  y.numpy())


def test_max_pool_nan_propagates():
    x = gf.tensor([[[[1.0, np.nan], [0.0, 2.0]]]])
    assert np.isnan(F.max_pool2d(x, 2).item())


def test_activations_functional_names():
    x = _t((3, 4), rg=False)
    np.testing.assert_allclose(F.relu(x, inplace=True).numpy(), np.maximum(x.numpy(), 0))
    np.testing.assert_allclose(F.sigmoid(x).numpy(), 1 / (1 + np.exp(-x.numpy())), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(x).numpy(), np.tanh(x.numpy()))
    np.testing.assert_allclose(F.leaky_relu(x).numpy(), np.where(x.numpy() > 0, x.numpy(), 0.01 * x.numpy()))
    sm = F.softmax(x, dim=1).numpy()
    np.testing.assert_allclose(sm.sum(1), 1.0)
    np.testing.assert_allclose(F.log_softmax(x, dim=1).numpy(), np.log(sm), rtol=1e-12)


def test_one_hot_and_flatten():
    oh = F.one_hot(gf.tensor([0, 2, 1]), 4)
    np.testing.assert_array_equal(oh.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert oh.dtype == gf.int64
    assert F.one_hot(gf.tensor([1, 3])).shape == (2, 4)
    assert F.flatten(gf.zeros(2, 3, 4), 1).shape == (2, 12)


def test_adaptive_avg_pool2d():
    x = _t((2, 3, 6, 4))
    y = F.adaptive_avg_pool2d(x, (3, 2))
    np.testing.assert_allclose(y.numpy(), x.numpy().reshape(2, 3, 3, 2, 2, 2).mean(axis=(3, 5)), rtol=1e-12)
    assert F.adaptive_avg_pool2d(x, 1).shape == (2, 3, 1, 1)
    assert gradcheck(lambda t: F.adaptive_avg_pool2d(t, (4, 3)), (_t((1, 2, 5, 5)),))  # uneven bins


def test_dropout2d_drops_whole_channels():
    x = gf.ones(4, 6, 3, 3)
    gf.manual_seed(1)
    y = F.dropout2d(x, 0.5).numpy()
    per_channel = y.reshape(4, 6, -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert F.dropout2d(x, 0.5, training=False) is x


def test_kl_div_and_huber():
    p = _t((3, 4)).log_softmax(1)
    q = gf.tensor(np.random.default_rng(1).dirichlet(np.ones(4), 3))
    kl = F.kl_div(p, q, reduction="batchmean")
    ref = (q.numpy() * (np.log(q.numpy()) - p.numpy())).sum() / 3
    assert abs(kl.item() - ref) < 1e-12
    assert gradcheck(lambda a: F.kl_div(a.log_softmax(1), q, reduction="sum"), (_t((3, 4), 5),))
    d = gf.tensor([0.5, 3.0], dtype="float64")
    h = F.huber_loss(d, gf.zeros(2, dtype="float64"), reduction="none", delta=2.0).numpy()
    np.testing.assert_allclose(h, [0.5 * 0.25, 2.0 * (3.0 - 1.0)])


@requires_torch
def test_extra_functionals_match_torch():
    import torch
    import torch.nn.functional as TF
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 5))
    for size in [(3, 2), (4, 4), (2, 5), (7, 1), (5, 3)]:
        for ours, theirs in ((F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d),
                             (F.adaptive_max_pool2d, TF.adaptive_max_pool2d)):
            xg, xt = gf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
            gy = rng.standard_normal((2, 3) + size)
            yg, yt = ours(xg, size), theirs(xt, size)
            np.testing.assert_allclose(yg.numpy(), yt.detach().numpy(), rtol=1e-12)
            yg.backward(gf.tensor(gy))
            yt.backward(torch.tensor(gy))
            np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    for delta in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(F.huber_loss(gf.tensor(a), gf.tensor(b), delta=delta).item(),
                                   TF.huber_loss(torch.tensor(a), torch.tensor(b), delta=delta).item(),
                                   rtol=1e-12)
    lp = np.log(rng.dirichlet(np.ones(3), 4))
    lq = np.log(rng.dirichlet(np.ones(3), 4))
    np.testing.assert_allclose(
        F.kl_div(gf.tensor(lp), gf.tensor(lq), reduction="sum", log_target=True).item(),
        TF.kl_div(torch.tensor(lp), torch.tensor(lq), reduction="sum", log_target=True).item(), rtol=1e-12)


def test_batch_norm_normalises_and_updates_running_stats():
    x = _t((8, 3, 4, 4), rg=False) * 3 + 2
    rm, rv = gf.zeros(3, dtype="float64"), gf.ones(3, dtype="float64")
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.1).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    xn = x.numpy()
    np.testing.assert_allclose(rm.numpy(), 0.1 * xn.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.9 + 0.1 * xn.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    assert not rm.requires_grad


def _python_calls(fn):
    """How many Python-level function calls ``fn()`` makes (a loop over batch or
    pixels in Python would show up as calls that grow with the input)."""
    import sys
    count = [0]

    def prof(frame, event, arg):
        if event == "call":
            count[0] += 1
    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count[0]


def test_kernels_are_vectorised():
    """conv/pool/cross-entropy forward+backward make the same number of Python calls for
    batch 2 and batch 64 and for 8x8 and 32x32 images: no Python loop over batch or pixels."""
    def step(n, hw):
        x = gf.randn(n, 3, hw, hw, requires_grad=True)
        w = gf.randn(4, 3, 3, 3, requires_grad=True)
        t = gf.randint(0, 4, (n,))

        def run():
            y = F.avg_pool2d(F.max_pool2d(F.conv2d(x, w, padding=1).relu(), 2), 2)
            F.cross_entropy(y.mean((2, 3)), t).backward()
        return run
    step(2, 8)()  # warm caches and lazy imports
    calls = {(n, hw): _python_calls(step(n, hw)) for n in (2, 64) for hw in (8, 32)}
    assert len(set(calls.values())) == 1, calls


def test_gelu_forms_and_erf():
    import math
    x = gf.tensor([-1.0, 0.0, 2.0], dtype="float64")
    y = F.gelu(x, approximate="tanh").numpy()
    c = np.sqrt(2 / np.pi)
    xn = x.numpy()
    np.testing.assert_allclose(y, 0.5 * xn * (1 + np.tanh(c * (xn + 0.044715 * xn ** 3))), rtol=1e-12)
    exact = F.gelu(x).numpy()  # default: exact, as PyTorch
    np.testing.assert_allclose(exact, [v / 2 * (1 + math.erf(v / math.sqrt(2))) for v in xn], rtol=1e-14)
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'fast'"):
        F.gelu(x, approximate="fast")
    v = np.concatenate([np.linspace(-7, 7, 1401), [1e-300, -1e-12, 30.0]])
    ref = np.array([math.erf(a) for a in v])
    np.testing.assert_allclose(gf.tensor(v).erf().numpy(), ref, rtol=1e-13, atol=1e-15)
    e32 = gf.tensor(v.astype(np.float32)).erf()
    assert e32.dtype == gf.float32
    np.testing.assert_allclose(e32.numpy(), ref, atol=2e-7)
    assert gf.tensor([0, 1]).erf().dtype == gf.float32


def test_pad_errors_and_crop():
    x = gf.arange(10).float().reshape(2, 5)
    np.testing.assert_array_equal(F.pad(x, (-1, -2)).numpy(), x.numpy()[:, 1:3])
    with pytest.raises(ValueError, match=r"pad: mode must be one of 'constant', 'reflect'"):
        F.pad(x, (1, 1), mode="mirror")
    with pytest.raises(ValueError, match=r"pad: padding \(-3, -2\) would leave no elements of dim 1"):
        F.pad(x, (-3, -2))
    with pytest.raises(ValueError, match=r"pad: 3 \(left, right\) pairs given for a tensor of shape \(2, 5\)"):
        F.pad(x, (1, 1, 1, 1, 1, 1))


@pytest.mark.parametrize("fn", [
    lambda x, t: F.cross_entropy(x, t),
    lambda x, t: F.cross_entropy(x, t, weight=gf.ones(3)),
    lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
    lambda x, t: F.nll_loss(x.log_softmax(1), t),
])
def test_all_targets_ignored_gives_nan_and_zero_grad(fn):
    """PyTorch's result, without a 0/0 RuntimeWarning (warnings are errors here)."""
    x = gf.randn(2, 3, requires_grad=True)
    loss = fn(x, gf.tensor([-100, -100]))
    assert np.isnan(loss.item()) and loss.dtype == gf.float32
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    x.grad = None
    ok = fn(x, gf.tensor([-100, 1]))  # one valid target: finite
    assert np.isfinite(ok.item())


def test_tiny_cnn_trains_with_plain_tensors(backend):
    """End to end on every backend: conv -> relu -> pool -> linear -> cross_entropy,
    parameters updated through .data; the loss must fall and the fit must be good."""
    rng = np.random.default_rng(0)
    n = 64
    y = rng.integers(0, 2, n)
    imgs = rng.standard_normal((n, 1, 6, 6)) * 0.3
    imgs[y == 1, :, :3, :] += 1.0            # class 1: bright top half
    x = gf.tensor(imgs.astype(np.float32))
    t = gf.tensor(y)
    w = gf.tensor(rng.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.5, requires_grad=True)
    b = gf.zeros(4, requires_grad=True)
    v = gf.tensor(rng.standard_normal((2, 16)).astype(np.float32) * 0.3, requires_grad=True)
    losses = []
    for _ in range(60):
        h = F.max_pool2d(F.conv2d(x, w, b, padding=1).relu(), 3)
        loss = F.cross_entropy(F.linear(h.flatten(1), v), t)
        losses.append(loss.item())
        loss.backward()
        for p in (w, b, v):
            p.data.add_(p.grad * -0.5)
            p.grad = None
    acc = (F.linear(F.max_pool2d(F.conv2d(x, w, b, padding=1).relu(), 3).flatten(1), v)
           .argmax(1).eq(t).float().mean().item())
    assert losses[-1] < 0.5 * losses[0] and acc > 0.9, (losses[0], losses[-1], acc)
