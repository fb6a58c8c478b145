"""conv_transpose2d / nn.ConvTranspose2d: the adjoint of conv2d, gradient-checked and
compared with PyTorch; every backend agrees with NumPy."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols

GEOMS = [  # (C_in, C_out, k, stride, padding, output_padding, groups, dilation, H, W)
    (3, 2, 3, 1, 0, 0, 1, 1, 4, 5),
    (4, 6, 3, 2, 1, 1, 2, 1, 3, 4),
    (2, 3, (2, 3), (2, 1), (0, 1), (1, 0), 1, (1, 2), 3, 3),
]


def _args(g, seed=0):
    cin, cout, k, s, p, op, groups, d, h, w = g
    k = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((2, cin, h, w)), rng.standard_normal((cin, cout // groups) + k),
            rng.standard_normal(cout), dict(stride=s, padding=p, output_padding=op, groups=groups,
                                            dilation=d))


@pytest.mark.parametrize("g", GEOMS)
def test_gradcheck(g):
    xn, wn, bn, kw = _args(g)
    x, w, b = (gf.tensor(a, requires_grad=True) for a in (xn, wn, bn))
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), (x, w, b))


def test_is_the_adjoint_of_conv2d():
    rng = np.random.default_rng(1)
    X = gf.tensor(rng.standard_normal((2, 4, 3, 3)))
    Y = gf.tensor(rng.standard_normal((2, 3, 7, 7)))
    w = gf.tensor(rng.standard_normal((4, 3, 3, 3)))
    lhs = (F.conv2d(Y, w, stride=2) * X).sum().item()
    rhs = (Y * F.conv_transpose2d(X, w, stride=2)).sum().item()
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


@pytest.mark.parametrize("g", GEOMS)
def test_backends_agree(backend, dtype, g):
    xn, wn, bn, kw = _args(g)
    outs = []
    for be in ("numpy", backend):
        x, w, b = (gf.tensor(a.astype(dtype), requires_grad=True, backend=be) for a in (xn, wn, bn))
        y = F.conv_transpose2d(x, w, b, **kw)
        (y * y).sum().backward()
        outs.append([t.numpy() for t in (y, x.grad, w.grad, b.grad)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(b, a, **tols(dtype))


def test_errors_and_module():
    x = gf.randn(1, 3, 4, 4)
    with pytest.raises(ValueError, match="conv_transpose2d: input has 3 channels"):
        F.conv_transpose2d(x, gf.randn(2, 3, 3, 3))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, gf.randn(3, 2, 3, 3), stride=2, output_padding=2)
    m = nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1)
    assert m(x).shape == (1, 5, 8, 8) and m.weight.shape == (3, 5, 4, 4)


@requires_torch
@pytest.mark.parametrize("g", GEOMS)
def test_against_torch(g):
    import torch
    xn, wn, bn, kw = _args(g, seed=3)
    x, w, b = (gf.tensor(a, requires_grad=True) for a in (xn, wn, bn))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (xn, wn, bn))
    y = F.conv_transpose2d(x, w, b, **kw)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **kw)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    (y * y).sum().backward()
    (yt * yt).sum().backward()
    for a, at in ((x, xt), (w, wt), (b, bt)):
        np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_interpolate_nearest_and_upsample():
    x = gf.tensor(np.arange(12.0).reshape(1, 1, 3, 4), requires_grad=True)
    y = F.interpolate(x, scale_factor=2)
    np.testing.assert_array_equal(y.numpy()[0, 0], np.repeat(np.repeat(x.numpy()[0, 0], 2, 0), 2, 1))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 4.0)
    assert nn.Upsample(size=(6, 12))(x).shape == (1, 1, 6, 12)
    assert gradcheck(lambda a: F.interpolate(a, scale_factor=(1, 3)),
                     (gf.randn(2, 2, 2, 2, dtype=gf.float64, requires_grad=True),))
    with pytest.raises(NotImplementedError, match="interpolate: mode='bicubic' is not implemented"):
        F.interpolate(x, scale_factor=2, mode="bicubic")


@requires_torch
def test_interpolate_against_torch():
    import torch
    xn = np.random.default_rng(0).standard_normal((2, 3, 3, 5))
    np.testing.assert_array_equal(
        F.interpolate(gf.tensor(xn), scale_factor=3).numpy(),
        torch.nn.functional.interpolate(torch.tensor(xn), scale_factor=3, mode="nearest").numpy())
