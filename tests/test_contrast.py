"""Local contrast normalisation (gradflow/ops/contrast.py, nn.LocalContrastNorm2d): values
against a direct loop over the formula, what the two steps claim (zero local mean,
contrast and brightness invariance, one shift and scale shared by all channels),
gradients (gradcheck, and against torch autograd of the same formula), bad input."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck
from gradflow.ops.contrast import gaussian_window


def reference(x, size, sigma, divisive=True, floor="mean", eps=1e-4):
    """The formula written as explicit loops over pixels and window taps (float64)."""
    n, c, h, w = x.shape
    g = np.array(gaussian_window(size, sigma)) / c
    r = size // 2

    def local_avg(a):                          # (N, C, H, W) -> (N, H, W), border-renormalised
        out = np.zeros((n, h, w))
        for i in range(h):
            for j in range(w):
                tot, cover = np.zeros(n), 0.0
                for p in range(-r, r + 1):
                    for q in range(-r, r + 1):
                        if 0 <= i + p < h and 0 <= j + q < w:
                            tot += g[p + r, q + r] * a[:, :, i + p, j + q].sum(1)
                            cover += g[p + r, q + r] * c
                out[:, i, j] = tot / cover
        return out

    v = x - local_avg(x)[:, None]
    if not divisive:
        return v
    s = np.sqrt(local_avg(v * v) + eps * eps)[:, None]
    lo = s.mean(axis=(2, 3), keepdims=True) if floor == "mean" else floor
    return v / np.maximum(s, lo)


@pytest.mark.parametrize("shape,size,sigma", [((2, 3, 9, 7), 5, 1.5), ((1, 1, 6, 11), 3, 0.8),
                                              ((1, 2, 4, 4), 7, 3.0)])
@pytest.mark.parametrize("divisive", [False, True])
def test_matches_the_formula(shape, size, sigma, divisive):
    x = np.random.RandomState(1).rand(*shape)
    y = F.local_contrast_norm(gradflow.tensor(x), size, sigma, divisive=divisive)
    np.testing.assert_allclose(y.numpy(), reference(x, size, sigma, divisive), rtol=1e-9,
                               atol=1e-12)


def test_numeric_floor_and_float32():
    x = np.random.RandomState(2).rand(2, 2, 8, 8).astype(np.float32)
    y = F.local_contrast_norm(gradflow.tensor(x), 5, 2.0, floor=0.3)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), reference(x.astype(np.float64), 5, 2.0, floor=0.3),
                               rtol=1e-4, atol=1e-5)


def test_subtractive_step_removes_the_local_mean():
    # a digit-like pattern under a strong illumination ramp and offset
    rng = np.random.RandomState(3)
    h = w = 24
    ii, jj = np.mgrid[0:h, 0:w]
    pattern = (rng.rand(1, 1, h, w) > 0.7).astype(np.float64)
    x = 0.3 * pattern + 2.0 + 0.1 * ii + 0.05 * jj
    v = F.local_contrast_norm(gradflow.tensor(x), 7, 1.5, divisive=False).numpy()
    # the local mean of the output, with the same window, is ~0 -- far below the input's
    local_in = x - reference(x, 7, 1.5, divisive=False)
    local_out = v - reference(v, 7, 1.5, divisive=False)
    assert np.abs(local_in).min() > 2.0
    assert np.abs(local_out).max() < 0.05 * np.abs(local_in).min()
    # away from the borders it is small even against the pattern's own contrast (0.3)
    assert np.abs(local_out[..., 3:-3, 3:-3]).max() < 0.15 * 0.3
    # a pure linear ramp is removed exactly away from the borders (the window is symmetric)
    ramp = F.local_contrast_norm(gradflow.tensor((2.0 + 0.1 * ii + 0.05 * jj)[None, None]), 7,
                                 1.5, divisive=False).numpy()
    assert np.abs(ramp[..., 3:-3, 3:-3]).max() < 1e-12


def test_divisive_step_is_contrast_and_brightness_invariant():
    x = np.random.RandomState(4).rand(2, 3, 10, 10)
    y = F.local_contrast_norm(gradflow.tensor(x), 5, 1.5, eps=1e-9).numpy()
    y2 = F.local_contrast_norm(gradflow.tensor(7.0 * x - 3.0), 5, 1.5, eps=1e-9).numpy()
    np.testing.assert_allclose(y2, y, rtol=1e-6, atol=1e-8)
    # the subtractive step alone keeps the contrast: it scales with the input
    v = F.local_contrast_norm(gradflow.tensor(x), 5, 1.5, divisive=False).numpy()
    v2 = F.local_contrast_norm(gradflow.tensor(7.0 * x - 3.0), 5, 1.5, divisive=False).numpy()
    np.testing.assert_allclose(v2, 7.0 * v, rtol=1e-9, atol=1e-9)


def test_one_shift_and_scale_for_all_channels():
    # unlike LocalResponseNorm: a channel difference is only rescaled, never shifted
    x = np.random.RandomState(5).rand(1, 3, 8, 8)
    y = F.local_contrast_norm(gradflow.tensor(x), 5, 1.5).numpy()
    ratio = (y[:, 0] - y[:, 1]) / (x[:, 0] - x[:, 1])
    np.testing.assert_allclose(ratio, (y[:, 0] - y[:, 2]) / (x[:, 0] - x[:, 2]), rtol=1e-9)
    assert (ratio > 0).all()


def test_flat_image_gives_zero_not_nan():
    x = gradflow.tensor(np.full((1, 2, 5, 5), 0.7), requires_grad=True)
    y = F.local_contrast_norm(x, 3, 1.0)
    assert np.abs(y.numpy()).max() < 1e-9
    y.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("kw", [dict(), dict(divisive=False), dict(floor=0.05)])
def test_gradcheck(kw):
    x = gradflow.tensor(np.random.RandomState(6).rand(2, 2, 5, 6), dtype="float64",
                        requires_grad=True)
    assert gradcheck(lambda t: F.local_contrast_norm(t, 3, 1.0, **kw), (x,))


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.RandomState(7).rand(2, 3, 7, 6)
    u = np.random.RandomState(8).randn(*x.shape)
    size, sigma, eps = 5, 1.2, 1e-4
    xt = torch.tensor(x, requires_grad=True)
    g = torch.tensor(gaussian_window(size, sigma), dtype=torch.float64) / 3
    wt = g.expand(1, 3, size, size)
    conv = lambda a: torch.nn.functional.conv2d(a, wt, padding=size // 2)
    cover = conv(torch.ones(1, 3, 7, 6, dtype=torch.float64))
    v = xt - conv(xt) / cover
    s = (conv(v * v) / cover + eps * eps).sqrt()
    yt = v / torch.maximum(s, s.mean(dim=(2, 3), keepdim=True))
    (yt * torch.tensor(u)).sum().backward()
    xg = gradflow.tensor(x, requires_grad=True)
    y = F.local_contrast_norm(xg, size, sigma, eps=eps)
    (y * gradflow.tensor(u)).sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-8, atol=1e-10)


def test_module():
    layer = nn.LocalContrastNorm2d(5, 1.5)
    assert list(layer.parameters()) == []
    assert "LocalContrastNorm2d(5, sigma=1.5" in repr(layer)
    x = np.random.RandomState(9).rand(2, 1, 8, 8).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), layer)
    out = model(gradflow.tensor(x))
    assert out.shape == (2, 4, 8, 8)
    out.sum().backward()
    assert model[0].weight.grad is not None


@pytest.mark.parametrize("args,err,match", [
    (((2, 8, 8),), ValueError, r"\(N, C, H, W\).*\(2, 8, 8\)"),
    (((1, 1, 8, 8), 4), ValueError, "odd positive int.*4"),
    (((1, 1, 8, 8), 3, 0.0), ValueError, "sigma must be > 0"),
    (((1, 1, 8, 8), 3, 1.0, True, -1.0), ValueError, "floor must be"),
])
def test_bad_input(args, err, match):
    shape, rest = args[0], args[1:]
    with pytest.raises(err, match=match):
        F.local_contrast_norm(gradflow.tensor(np.zeros(shape)), *rest)


def test_bad_input_types():
    with pytest.raises(TypeError, match="floating-point"):
        F.local_contrast_norm(gradflow.tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)))
    with pytest.raises(TypeError, match="expected a Tensor"):
        F.local_contrast_norm(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="LocalContrastNorm2d: size"):
        nn.LocalContrastNorm2d(2)
