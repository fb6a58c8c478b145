"""Activations beyond ReLU (SELU, CELU, GLU, Softmin, Tanhshrink, Softshrink, Hardshrink,
Threshold, RReLU, LogSigmoid; functional and Module forms) and ``atan2``: values and
gradients against PyTorch on every backend in float32 and float64, module reprs, gradcheck
away from the kinks, RReLU's random slopes in training, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols
from torch_pairs import check_fwd_bwd, pair


def _away_from(arr, points, margin=0.05):
    """``arr`` with values within ``margin`` of a kink moved off it (for gradcheck)."""
    arr = np.array(arr, dtype=np.float64)
    for p in points:
        near = np.abs(arr - p) < margin
        arr[near] = p + np.where(arr[near] >= p, margin, -margin) * 2
    return arr


def _acts(torch):
    TF = torch.nn.functional
    return {
        "selu": (F.selu, TF.selu, [0.0]),
        # alpha with 1/alpha exact in float32: torch's celu backward rounds 1/alpha to float32
        "celu": (lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5), [0.0]),
        "glu": (lambda x: F.glu(x, 1), lambda x: TF.glu(x, 1), []),
        "glu-last": (F.glu, TF.glu, []),
        "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1), []),
        "tanhshrink": (F.tanhshrink, TF.tanhshrink, []),
        "softshrink": (lambda x: F.softshrink(x, 0.3), lambda x: TF.softshrink(x, 0.3),
                       [-0.3, 0.3]),
        "hardshrink": (F.hardshrink, TF.hardshrink, [-0.5, 0.5]),
        "threshold": (lambda x: F.threshold(x, 0.2, -1.5), lambda x: TF.threshold(x, 0.2, -1.5),
                      [0.2]),
        "rrelu-eval": (lambda x: F.rrelu(x, 0.1, 0.3), lambda x: TF.rrelu(x, 0.1, 0.3), [0.0]),
        "softmin-module": (nn.Softmin(dim=0), torch.nn.Softmin(dim=0), []),
        "selu-module": (nn.SELU(), torch.nn.SELU(), [0.0]),
        "celu-module": (nn.CELU(), torch.nn.CELU(), [0.0]),
        "glu-module": (nn.GLU(0), torch.nn.GLU(0), []),
        "tanhshrink-module": (nn.Tanhshrink(), torch.nn.Tanhshrink(), []),
        "softshrink-module": (nn.Softshrink(), torch.nn.Softshrink(), [-0.5, 0.5]),
        "hardshrink-module": (nn.Hardshrink(0.2), torch.nn.Hardshrink(0.2), [-0.2, 0.2]),
        "threshold-module": (nn.Threshold(0.1, 20.0), torch.nn.Threshold(0.1, 20.0), [0.1]),
        "rrelu-module-eval": (nn.RReLU().eval(), torch.nn.RReLU().eval(), [0.0]),
        "logsigmoid-module": (nn.LogSigmoid(), torch.nn.LogSigmoid(), []),
    }


_ACT_NAMES = ["selu", "celu", "glu", "glu-last", "softmin", "tanhshrink", "softshrink",
              "hardshrink", "threshold", "rrelu-eval", "softmin-module", "selu-module",
              "celu-module", "glu-module", "tanhshrink-module", "softshrink-module",
              "hardshrink-module", "threshold-module", "rrelu-module-eval", "logsigmoid-module"]


@requires_torch
@pytest.mark.parametrize("name", _ACT_NAMES)
def test_activations_match_torch(backend, dtype, name):
    import torch
    fn, fn_t, kinks = _acts(torch)[name]
    a = _away_from(np.random.default_rng(4).standard_normal((4, 6)) * 2, kinks)
    check_fwd_bwd(fn, fn_t, a, dtype)


@requires_torch
def test_activation_module_reprs_match_torch():
    import torch
    pairs = [(nn.SELU(), torch.nn.SELU()), (nn.CELU(0.5), torch.nn.CELU(0.5)),
             (nn.GLU(), torch.nn.GLU()), (nn.Softmin(1), torch.nn.Softmin(1)),
             (nn.Tanhshrink(), torch.nn.Tanhshrink()), (nn.Softshrink(), torch.nn.Softshrink()),
             (nn.Hardshrink(), torch.nn.Hardshrink()),
             (nn.Threshold(0.1, 20), torch.nn.Threshold(0.1, 20)),
             (nn.RReLU(), torch.nn.RReLU())]
    for g, t in pairs:
        assert repr(g) == repr(t)


@pytest.mark.parametrize("name", ["selu", "celu", "glu", "softmin", "tanhshrink", "softshrink",
                                  "hardshrink", "threshold", "rrelu-eval"])
def test_activations_gradcheck(name):
    fns = {"selu": (F.selu, [0.0]), "celu": (lambda x: F.celu(x, 1.3), [0.0]),
           "glu": (lambda x: F.glu(x, 0), []), "softmin": (lambda x: F.softmin(x, 1), []),
           "tanhshrink": (F.tanhshrink, []), "softshrink": (F.softshrink, [-0.5, 0.5]),
           "hardshrink": (F.hardshrink, [-0.5, 0.5]),
           "threshold": (lambda x: F.threshold(x, 0.1, 2.0), [0.1]),
           "rrelu-eval": (F.rrelu, [0.0])}
    fn, kinks = fns[name]
    a = _away_from(np.random.default_rng(5).standard_normal((4, 5)) * 1.5, kinks)
    assert gradcheck(fn, (gf.tensor(a, requires_grad=True),))


@requires_torch
def test_rrelu_training_draws_slopes_in_range_and_backprops_them(backend, dtype):
    import torch
    m = nn.RReLU(0.1, 0.3)
    assert m.training
    a = -np.linspace(0.5, 3.0, 400).astype(dtype)
    x = gf.tensor(np.concatenate([a, -a]), requires_grad=True)
    y = m(x)
    slopes = y.numpy()[:400] / a
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6
    assert slopes.std() > 0.03  # random per element, not one fixed slope
    np.testing.assert_array_equal(y.numpy()[400:], -a)  # positive part untouched
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[:400], slopes, rtol=1e-4)  # grad = drawn slope
    np.testing.assert_array_equal(x.grad.numpy()[400:], 1.0)
    gf.manual_seed(7)
    y1 = F.rrelu(gf.tensor(a), 0.1, 0.3, training=True)
    gf.manual_seed(7)
    y2 = F.rrelu(gf.tensor(a), 0.1, 0.3, training=True)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())  # the global seed reproduces it
    ye = m.eval()(gf.tensor(a))  # eval: the mean slope, as torch
    np.testing.assert_allclose(ye.numpy(), torch.nn.RReLU(0.1, 0.3).eval()(torch.tensor(a)).numpy(),
                               **tols(dtype))


@requires_torch
def test_atan2_matches_torch(backend, dtype):
    import torch
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    for x_arr in (a, -a):
        x, xt = pair(x_arr, dtype)
        y, yt = pair(b, dtype)
        out, out_t = gf.atan2(x, y), torch.atan2(xt, yt)
        np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), **tols(dtype))
        np.testing.assert_allclose(x.atan2(y).numpy(), out.numpy())
        out.sum().backward()
        out_t.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tols(dtype))
        np.testing.assert_allclose(y.grad.numpy(), yt.grad.numpy(), **tols(dtype))
    assert gradcheck(gf.atan2, (gf.tensor(a, requires_grad=True), gf.tensor(b, requires_grad=True)))
    assert gradcheck(lambda t: t.atan(), (gf.tensor(a, requires_grad=True),))
    s = gf.softmin(gf.tensor(a.astype(dtype)), dim=1)
    np.testing.assert_allclose(s.numpy(), torch.softmax(-torch.tensor(a.astype(dtype)), 1).numpy(),
                               **tols(dtype))


def test_activation_errors():
    with pytest.raises(ValueError, match=r"glu: halving dimension must be even, but dimension 1 "
                                         r"of shape \(2, 5\) is size 5"):
        F.glu(gf.randn(2, 5), 1)
    with pytest.raises(IndexError, match="glu: dim 2 out of range"):
        F.glu(gf.randn(2, 4), 2)
    with pytest.raises(ValueError, match="softshrink: lambd must be >= 0, got -1"):
        F.softshrink(gf.randn(3), -1)
    with pytest.raises(ValueError, match="hardshrink: lambd must be >= 0"):
        nn.Hardshrink(-0.1)(gf.randn(3))
    with pytest.raises(ValueError, match="celu: alpha cannot be 0"):
        F.celu(gf.randn(3), 0.0)
    with pytest.raises(ValueError, match="rrelu: lower bound 0.5 must be <= upper bound 0.1"):
        F.rrelu(gf.randn(3), 0.5, 0.1, training=True)
    with pytest.raises(TypeError, match="selu: needs a floating-point input, got dtype int64"):
        F.selu(gf.arange(3))
