"""PyTorch surface, round 4: the tensor memory-layout API (stride, is_contiguous,
storage_offset, memory_format constants), F.unfold / F.fold and nn.Unfold / nn.Fold,
the missing activations (SELU, CELU, GLU, Softmin, Tanhshrink, Softshrink, Hardshrink,
Threshold, RReLU) and atan2, and the mixed-precision / memory-saving shims
(autocast, GradScaler, utils.checkpoint). Values and gradients are compared with
PyTorch on every backend in float32 and float64; gradcheck checks the new ops against
finite differences; bad input must raise errors naming the op."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck

from conftest import requires_torch, tols


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _pair(arr, dtype, requires_grad=True):
    """The same values as a gradflow and a torch tensor."""
    import torch
    a = np.asarray(arr, dtype=dtype)
    return (gf.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _check_fwd_bwd(fn_gf, fn_t, arr, dtype, seed=1):
    """fn(x) and d<u, fn(x)>/dx agree with torch."""
    import torch
    x, xt = _pair(arr, dtype)
    y, yt = fn_gf(x), fn_t(xt)
    np.testing.assert_allclose(_np(y), _np(yt), **tols(dtype))
    u = np.random.default_rng(seed).standard_normal(yt.shape).astype(dtype)
    y.backward(gf.tensor(u))
    yt.backward(torch.tensor(u))
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tols(dtype))
    return y


def _away_from(arr, points, margin=0.05):
    """``arr`` with values within ``margin`` of a kink moved off it (for gradcheck)."""
    arr = np.array(arr, dtype=np.float64)
    for p in points:
        near = np.abs(arr - p) < margin
        arr[near] = p + np.where(arr[near] >= p, margin, -margin) * 2
    return arr


# =============================================================================================
# 1. memory layout
# =============================================================================================
@requires_torch
def test_stride_contiguity_and_offset_match_torch(backend):
    import torch
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    x, xt = gf.tensor(a), torch.tensor(a)
    views = [lambda t: t, lambda t: t.transpose(0, 2), lambda t: t[1:, :, 2:],
             lambda t: t.permute(1, 0, 2), lambda t: t[:, 1], lambda t: t.expand(2, 3, 4, 5)]
    for v in views:
        g, t = v(x), v(xt)
        assert g.stride() == t.stride()
        assert g.is_contiguous() == t.is_contiguous()
        assert g.storage_offset() == t.storage_offset()
        for d in range(-g.ndim, g.ndim):
            assert g.stride(d) == t.stride(d)
    assert x[2:].storage_offset() == 40 and x.storage_offset() == 0
    with pytest.raises(IndexError, match=r"stride: dimension 3 out of range.*\(3, 4, 5\)"):
        x.stride(3)


def test_contiguous_copies_only_views(backend):
    x = gf.randn(4, 6, requires_grad=True)
    assert x.contiguous() is x
    v = x.t()
    assert not v.is_contiguous() and v.stride() == (1, 6)
    c = v.contiguous()
    assert c.is_contiguous() and c.stride() == (4, 1)
    np.testing.assert_array_equal(c.numpy(), x.numpy().T)
    (c * gf.arange(24.0).reshape(6, 4)).sum().backward()  # differentiable copy
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(24.0).reshape(6, 4).T)


@requires_torch
def test_memory_format_hints_are_accepted_no_ops(backend):
    import torch
    assert repr(gf.channels_last) == repr(torch.channels_last) == "torch.channels_last"
    assert {repr(f) for f in (gf.contiguous_format, gf.preserve_format, gf.channels_last_3d)} == \
        {repr(f) for f in (torch.contiguous_format, torch.preserve_format, torch.channels_last_3d)}
    assert pickle.loads(pickle.dumps(gf.channels_last)) is gf.channels_last
    x = gf.randn(2, 3, 4, 5)
    for y in (x.to(memory_format=gf.channels_last), x.contiguous(memory_format=gf.channels_last),
              x.clone(memory_format=gf.preserve_format),
              x.to(gf.float64, memory_format=gf.contiguous_format)):
        np.testing.assert_array_equal(y.numpy(), x.numpy().astype(y.dtype))
        assert y.shape == (2, 3, 4, 5) and y.stride() == (60, 20, 5, 1)  # still NCHW
    # contiguity is reported truthfully: gradflow's arrays stay NCHW ...
    assert x.is_contiguous(memory_format=gf.contiguous_format)
    assert not x.contiguous(memory_format=gf.channels_last).is_contiguous(
        memory_format=gf.channels_last)
    # ... while a real NHWC-strided view is recognised, as torch recognises it
    nhwc = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    tn = torch.tensor(x.numpy()).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert nhwc.stride() == tn.stride()
    assert nhwc.is_contiguous(memory_format=gf.channels_last) == \
        tn.is_contiguous(memory_format=torch.channels_last) is True
    assert nhwc.is_contiguous() == tn.is_contiguous() is False
    model = nn.Conv2d(3, 2, 3).to(memory_format=gf.channels_last)
    assert model(x).shape == (2, 2, 2, 3)
    with pytest.raises(TypeError, match="contiguous: memory_format must be one of"):
        x.contiguous(memory_format="nhwc")
    with pytest.raises(TypeError, match="to: memory_format"):
        x.to(memory_format=3)


# =============================================================================================
# 2. unfold / fold
# =============================================================================================
_GEOMS = [  # (input shape, kernel, dilation, padding, stride)
    ((2, 3, 6, 7), 3, 1, 0, 1),
    ((2, 2, 7, 6), (2, 3), (1, 2), (1, 0), (2, 1)),
    ((1, 3, 5, 5), 2, 1, 1, 2),
    ((3, 5, 6), (3, 2), 1, (0, 1), (1, 2)),  # unbatched (C, H, W)
]


@requires_torch
@pytest.mark.parametrize("geom", _GEOMS, ids=["k3", "rect-dil-pad", "pad-stride", "unbatched"])
def test_unfold_fold_match_torch(backend, dtype, geom):
    import torch
    import torch.nn.functional as TF
    shape, k, d, p, s = geom
    a = np.random.default_rng(0).standard_normal(shape)
    y = _check_fwd_bwd(lambda x: F.unfold(x, k, d, p, s),
                       lambda x: TF.unfold(x, k, dilation=d, padding=p, stride=s), a, dtype)
    out_hw = shape[-2:]
    cols = np.random.default_rng(1).standard_normal(y.shape)
    _check_fwd_bwd(lambda c: F.fold(c, out_hw, k, d, p, s),
                   lambda c: TF.fold(c, out_hw, k, dilation=d, padding=p, stride=s), cols, dtype)
    # the modules are the functions
    mod = nn.Unfold(k, d, p, s)
    tmod = torch.nn.Unfold(k, d, p, s)
    assert repr(mod) == repr(tmod)
    np.testing.assert_allclose(mod(gf.tensor(a.astype(dtype))).numpy(),
                               tmod(torch.tensor(a.astype(dtype))).numpy(), **tols(dtype))
    fmod, tfmod = nn.Fold(out_hw, k, d, p, s), torch.nn.Fold(out_hw, k, d, p, s)
    assert repr(fmod) == repr(tfmod)
    np.testing.assert_allclose(fmod(gf.tensor(cols.astype(dtype))).numpy(),
                               tfmod(torch.tensor(cols.astype(dtype))).numpy(), **tols(dtype))


def test_unfold_matmul_is_conv2d_and_fold_is_adjoint(backend):
    rng = np.random.default_rng(2)
    x = gf.tensor(rng.standard_normal((2, 3, 7, 6)))
    w = gf.tensor(rng.standard_normal((4, 3, 3, 3)))
    cols = F.unfold(x, 3, padding=1, stride=2)  # (2, 27, 4*3)
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 4, 3)
    np.testing.assert_allclose(y.numpy(), F.conv2d(x, w, padding=1, stride=2).numpy(),
                               rtol=1e-10, atol=1e-10)
    c = gf.tensor(rng.standard_normal(cols.shape))
    lhs = float((cols * c).sum())  # <unfold(x), c> == <x, fold(c)>
    rhs = float((x * F.fold(c, (7, 6), 3, padding=1, stride=2)).sum())
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))
    # the output owns its memory even where it could alias the input (1x1 kernel)
    u = F.unfold(x, 1)
    u.data.mul_(0.0)
    assert float(x.abs().sum()) > 0


def test_unfold_fold_gradcheck():
    rng = np.random.default_rng(3)
    x = gf.tensor(rng.standard_normal((2, 2, 5, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.unfold(t, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), (x,))
    c = gf.tensor(rng.standard_normal((1, 8, 12)), requires_grad=True)
    assert gradcheck(lambda t: F.fold(t, (4, 5), 2, padding=(1, 0), stride=(2, 1)), (c,))


def test_unfold_fold_errors():
    x = gf.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match=r"unfold: expected a 3-D .* or 4-D .* got shape \(2, 3\)"):
        F.unfold(gf.randn(2, 3), 2)
    with pytest.raises(ValueError, match=r"unfold: no sliding blocks fit: spatial size \(5, 5\)"):
        F.unfold(x, 7)
    with pytest.raises(ValueError, match=r"unfold: kernel_size must be an int or a pair of ints "
                                         r">= 1, got 0"):
        F.unfold(x, 0)
    with pytest.raises(ValueError, match=r"unfold: padding must be .* >= 0, got -1"):
        F.unfold(x, 2, padding=-1)
    with pytest.raises(ValueError, match=r"fold: .*4 \* 4 = 16 sliding blocks, but the input "
                                         r"\(shape \(2, 12, 10\)\) has 10"):
        F.fold(gf.randn(2, 12, 10), (5, 5), 2)
    with pytest.raises(ValueError, match=r"fold: input dimension 1 \(10, .* divisible by .* = 4"):
        F.fold(gf.randn(2, 10, 16), (5, 5), 2)
    with pytest.raises(ValueError, match=r"fold: expected a 2-D .* or 3-D .* got shape"):
        F.fold(x, (5, 5), 2)
    with pytest.raises(TypeError, match="unfold: input must be a Tensor"):
        F.unfold(np.zeros((1, 1, 3, 3)), 2)


# =============================================================================================
# 3. activations and atan2
# =============================================================================================
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
    _check_fwd_bwd(fn, fn_t, a, dtype)


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
        x, xt = _pair(x_arr, dtype)
        y, yt = _pair(b, dtype)
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


# =============================================================================================
# 4. autocast, GradScaler, checkpoint
# =============================================================================================
def test_autocast_is_a_no_op_context_and_decorator(backend):
    x = gf.randn(3, 4)
    w = gf.randn(4, 2, requires_grad=True)
    ref = (x @ w).numpy()
    for ctx in (gf.autocast("cpu"), gf.autocast("cuda", dtype=gf.float16),
                gf.amp.autocast("cpu", enabled=False), gf.cuda.amp.autocast(),
                gf.cpu.amp.autocast()):
        with ctx as c:
            y = x @ w
            assert not gf.is_autocast_enabled()
        assert c is ctx and y.dtype == gf.float32
        np.testing.assert_array_equal(y.numpy(), ref)

    @gf.autocast(device_type="cpu")
    def f(a):
        """doc"""
        return a @ w

    np.testing.assert_array_equal(f(x).numpy(), ref)
    assert f.__doc__ == "doc"
    f(x).sum().backward()
    assert w.grad.shape == (4, 2)
    with pytest.raises(RuntimeError, match="autocast: unsupported device_type 'gpu0'"):
        gf.autocast("gpu0")
    with pytest.raises(ValueError, match="expected `device_type` of type `str`"):
        gf.autocast(gf.device("cpu"))


def _scaler_run(lib, make_scaler, grads_fn, steps):
    """A few scaler-driven SGD steps; returns the per-step scales and the final weight."""
    w = lib.nn.Parameter(lib.tensor([1.0, -2.0, 3.0]))
    opt = lib.optim.SGD([w], lr=0.1)
    scaler = make_scaler(lib)
    scales, rets = [], []
    for i in range(steps):
        opt.zero_grad()
        loss = (w * w).sum() * grads_fn(i)
        scaler.scale(loss).backward()
        rets.append(scaler.step(opt))
        scaler.update()
        scales.append(scaler.get_scale())
    return scales, w.detach().numpy().copy(), scaler


@requires_torch
def test_grad_scaler_enabled_on_cpu_matches_torch():
    import torch
    inf = float("inf")
    factors = [1.0, inf, 1.0, 1.0, 1.0, float("nan"), 1.0, 1.0]

    def make(lib):
        return lib.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)

    s_gf, w_gf, sc = _scaler_run(gf, make, lambda i: factors[i], len(factors))
    s_t, w_t, sc_t = _scaler_run(torch, make, lambda i: factors[i], len(factors))
    assert s_gf == s_t  # backoff on inf/NaN, growth every 2 clean steps
    assert s_gf[1] == 512.0 and s_gf[3] == 1024.0
    np.testing.assert_allclose(w_gf, w_t, rtol=1e-6)  # inf/NaN steps skipped
    assert np.isfinite(w_gf).all()
    assert sc.state_dict() == sc_t.state_dict()
    assert sc.is_enabled() and sc_t.is_enabled()
    # scale() multiplies, unscale_() divides the gradients in place
    w = nn.Parameter(gf.tensor([2.0]))
    opt = gf.optim.SGD([w], lr=0.1)
    s2 = gf.amp.GradScaler("cpu", init_scale=8.0)
    loss = (w * 3.0).sum()
    scaled = s2.scale(loss)
    assert float(scaled) == 48.0 and s2.scale([loss, loss])[1].item() == 48.0
    scaled.backward()
    assert w.grad.item() == 24.0
    s2.unscale_(opt)
    assert w.grad.item() == 3.0
    with pytest.raises(RuntimeError, match="unscale_\\(\\) has already been called"):
        s2.unscale_(opt)
    s2.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s2.step(opt)
    assert abs(w.item() - 1.7) < 1e-6
    s2.update()
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        s2.step(opt, closure=lambda: loss)
    # state_dict round trip
    s3 = gf.amp.GradScaler("cpu")
    s3.load_state_dict(sc.state_dict())
    assert s3.get_scale() == sc.get_scale() and s3.state_dict() == sc.state_dict()
    with pytest.raises(RuntimeError, match="source state dict is empty"):
        s3.load_state_dict({})


@requires_torch
def test_grad_scaler_without_cuda_is_disabled_as_torch():
    import torch
    if gf.cuda.is_available():
        pytest.skip("CUDA is available: the cuda scaler is enabled here")
    with pytest.warns(UserWarning, match="CUDA is not available.  Disabling."):
        s = gf.cuda.amp.GradScaler()
    with pytest.warns(UserWarning, match="Disabling"):
        s2 = gf.amp.GradScaler()  # device="cuda" by default
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = torch.amp.GradScaler("cuda")
    assert s.is_enabled() is s2.is_enabled() is st.is_enabled() is False
    assert s.get_scale() == st.get_scale() == 1.0
    assert s.state_dict() == st.state_dict() == {}
    loss = gf.tensor(2.5, requires_grad=True) * 2
    assert s.scale(loss) is loss  # unchanged, as torch
    w = nn.Parameter(gf.tensor([1.0]))
    opt = gf.optim.SGD([w], lr=0.5)
    (w * 4.0).sum().backward()
    s.unscale_(opt)  # no-op
    assert w.grad.item() == 4.0
    s.step(opt)  # a plain optimizer.step()
    s.update()
    assert w.item() == -1.0
    s.load_state_dict({})  # ignored when disabled, as torch
    sd = gf.amp.GradScaler(enabled=False)  # explicit: no warning
    assert not sd.is_enabled()


def test_checkpoint_calls_function_with_same_values_and_grads(backend):
    import gradflow.utils.checkpoint as cp
    from gradflow.utils.checkpoint import checkpoint, checkpoint_sequential
    assert cp.checkpoint is gf.utils.checkpoint.checkpoint
    lin = nn.Linear(4, 3)
    x = gf.randn(2, 4, requires_grad=True)

    def block(t, scale=1.0):
        return lin(t).tanh() * scale

    y_ref = block(x, scale=2.0)
    y_ref.sum().backward()
    gx, gw = x.grad.numpy().copy(), lin.weight.grad.numpy().copy()
    x.grad = None
    lin.zero_grad()
    for reentrant in (False, True):
        y = checkpoint(block, x, use_reentrant=reentrant, scale=2.0)
        np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), gx)
        np.testing.assert_array_equal(lin.weight.grad.numpy(), gw)
        x.grad = None
        lin.zero_grad()
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    np.testing.assert_array_equal(checkpoint_sequential(seq, 2, x, use_reentrant=False).numpy(),
                                  seq(x).numpy())
    with pytest.raises(TypeError, match="checkpoint: function must be callable"):
        checkpoint(3, x)
