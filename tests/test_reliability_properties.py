"""Reliability: property-based tests (hypothesis) over random shapes, geometries and values.

* broadcasting arithmetic: values and gradients equal a NumPy reference;
* conv2d / max_pool2d / avg_pool2d over random geometries (stride, padding,
  dilation, groups, ceil_mode): forward equals a naive loop reference and
  ``gradcheck`` (float64 central differences) holds;
* reductions over random axes (int, negative, tuple, None; keepdim);
* every available non-reference backend agrees with the NumPy backend.

Bounded for CI: tiny shapes, fixed example counts, ``derandomize=True`` (the same
examples every run) and no example database; the whole file runs in well under a minute.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck
from gradflow.backends import registered_backends, unavailable_reason

BOUNDED = dict(deadline=None, derandomize=True, database=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _settings(n):
    return settings(max_examples=n, **BOUNDED)


def _rng(seed):
    return np.random.default_rng(seed)


def unbroadcast(g, shape):
    """NumPy reference: sum a broadcast gradient back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
seeds = st.integers(0, 2**32 - 1)
float_dtypes = st.sampled_from([np.float32, np.float64])


# ---------------------------------------------------------------------------
# broadcasting arithmetic
# ---------------------------------------------------------------------------
def _operands(op, sa, sb, dt, seed):
    r = _rng(seed)
    a = np.asarray(r.standard_normal(sa))
    b = np.asarray(r.standard_normal(sb))
    if op == "div":
        b = np.sign(b + 1e-3) * (np.abs(b) + 0.5)        # away from zero
    if op == "pow":
        a = np.abs(a) + 0.5                               # positive base
        b = np.clip(b, -2, 2)
    return np.asarray(a, dt), np.asarray(b, dt)          # 0-d arrays, not NumPy scalars


def _reference(op, a, b, u):
    A, B = np.broadcast_arrays(a, b)
    if op == "add":
        return A + B, u, u
    if op == "sub":
        return A - B, u, -u
    if op == "mul":
        return A * B, u * B, u * A
    if op == "div":
        return A / B, u / B, -u * A / (B * B)
    if op == "pow":
        y = A ** B
        return y, u * B * A ** (B - 1), u * y * np.log(A)
    if op == "maximum":
        return np.maximum(A, B), u * (A > B), u * (A < B)
    if op == "minimum":
        return np.minimum(A, B), u * (A < B), u * (A > B)
    raise AssertionError(op)


_GF = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "maximum": gf.maximum,
       "minimum": gf.minimum}


@_settings(60)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=st.sampled_from(sorted(_GF)), dt=float_dtypes, seed=seeds)
def test_broadcast_arithmetic_grads_match_numpy(shapes, op, dt, seed):
    (sa, sb), out_shape = shapes.input_shapes, shapes.result_shape
    a, b = _operands(op, sa, sb, dt, seed)
    u = _rng(seed + 1).standard_normal(out_shape).astype(dt)
    ta = gf.tensor(a, requires_grad=True)
    tb = gf.tensor(b, requires_grad=True)
    y = _GF[op](ta, tb)
    y.backward(gf.tensor(u))
    ry, rga, rgb = _reference(op, a.astype(np.float64), b.astype(np.float64), u.astype(np.float64))
    assert y.shape == out_shape and y.dtype == dt
    assert ta.grad.shape == sa and tb.grad.shape == sb
    assert ta.grad.dtype == dt and tb.grad.dtype == dt
    tol = TOL[dt] if op != "pow" else dict(rtol=1e-4 if dt == np.float32 else 1e-10, atol=1e-5)
    np.testing.assert_allclose(y.numpy(), ry, **tol)
    np.testing.assert_allclose(ta.grad.numpy(), unbroadcast(rga, sa), **tol)
    np.testing.assert_allclose(tb.grad.numpy(), unbroadcast(rgb, sb), **tol)


@_settings(30)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
       op=st.sampled_from(["add", "sub", "mul", "div"]), scalar=st.floats(-3, 3).filter(
           lambda v: abs(v) > 0.1), reflected=st.booleans(), seed=seeds)
def test_python_scalar_operand_keeps_float32(shape, op, scalar, reflected, seed):
    a = _rng(seed).standard_normal(shape).astype(np.float32) + 3.0   # away from 0 for rdiv
    t = gf.tensor(a, requires_grad=True)
    f = _GF[op]
    y = f(scalar, t) if reflected else f(t, scalar)
    assert y.dtype == np.float32, "a Python scalar must not promote float32"
    y.sum().backward()
    ref = {"add": 1.0, "sub": -1.0 if reflected else 1.0, "mul": scalar,
           "div": -scalar / a.astype(np.float64) ** 2 if reflected else 1.0 / scalar}[op]
    np.testing.assert_allclose(t.grad.numpy(), np.broadcast_to(ref, shape), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# reductions over random axes
# ---------------------------------------------------------------------------
@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-nd, nd - 1))
    else:
        picked = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
        axis = tuple(a - nd if draw(st.booleans()) else a for a in picked)
    return shape, axis


def _axes(axis, nd):
    if axis is None:
        return tuple(range(nd))
    return tuple(sorted(a % nd for a in ((axis,) if isinstance(axis, int) else axis)))


@_settings(80)
@given(sa=shape_and_axes(), keepdim=st.booleans(),
       op=st.sampled_from(["sum", "mean", "amax", "amin", "prod", "var"]),
       dt=float_dtypes, seed=seeds)
def test_reductions_over_random_axes(sa, keepdim, op, dt, seed):
    shape, axis = sa
    axes = _axes(axis, len(shape))
    n = int(np.prod([shape[a] for a in axes]))
    # distinct values (no ties for max/min), bounded away from zero (prod)
    x = (_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.125 + 0.5)
    x = (x * _rng(seed + 2).choice([-1.0, 1.0], size=shape)).astype(dt)
    t = gf.tensor(x, requires_grad=True)
    if op == "var":
        if n < 2:
            return
        y = t.var(dim=axis, keepdim=keepdim)
    else:
        y = getattr(t, op)(axis, keepdim) if op in ("amax", "amin") else \
            getattr(t, op)(dim=axis, keepdim=keepdim)
    x64 = x.astype(np.float64)
    npf = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min, "prod": np.prod,
           "var": lambda v, axis, keepdims: np.var(v, axis=axis, keepdims=keepdims, ddof=1)}[op]
    ry = npf(x64, axis=axes, keepdims=keepdim)
    assert y.shape == np.shape(ry) and y.dtype == dt
    rtol = 1e-4 if dt == np.float32 else 1e-11
    np.testing.assert_allclose(y.numpy(), ry, rtol=rtol, atol=rtol)
    u = _rng(seed + 1).standard_normal(np.shape(ry))
    y.backward(gf.tensor(u.astype(dt)))
    ub = np.broadcast_to(u if keepdim else np.expand_dims(u, axes), shape)
    ref = {"sum": lambda: ub,
           "mean": lambda: ub / n,
           "amax": lambda: ub * (x64 == np.max(x64, axis=axes, keepdims=True)),
           "amin": lambda: ub * (x64 == np.min(x64, axis=axes, keepdims=True)),
           "prod": lambda: ub * np.prod(x64, axis=axes, keepdims=True) / x64,
           "var": lambda: ub * 2 * (x64 - x64.mean(axis=axes, keepdims=True)) / (n - 1)}[op]()
    np.testing.assert_allclose(t.grad.numpy(), ref, rtol=rtol * 10, atol=rtol)


# ---------------------------------------------------------------------------
# convolution and pooling geometries
# ---------------------------------------------------------------------------
def _ref_conv(x, w, b, s, p, d, g):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    ow = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // g
    for gi in range(g):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        ws = w[gi * og:(gi + 1) * og]
        for i in range(oh):
            for j in range(ow):
                patch = xs[:, :, i * s[0]:i * s[0] + d[0] * (kh - 1) + 1:d[0],
                           j * s[1]:j * s[1] + d[1] * (kw - 1) + 1:d[1]]
                out[:, gi * og:(gi + 1) * og, i, j] = np.einsum("nckl,ockl->no", patch, ws)
    return out if b is None else out + b[None, :, None, None]


@st.composite
def conv_geometry(draw):
    g = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    hw = []
    for i in range(2):
        lo = max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i])    # output size >= 1
        hw.append(draw(st.integers(lo, lo + 3)))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return dict(n=n, g=g, cin=cg * g, cout=og * g, k=k, s=s, p=p, d=d, hw=tuple(hw), bias=bias)


def _conv_inputs(geo, seed, dt=np.float64):
    r = _rng(seed)
    x = r.standard_normal((geo["n"], geo["cin"]) + geo["hw"]).astype(dt)
    w = r.standard_normal((geo["cout"], geo["cin"] // geo["g"]) + geo["k"]).astype(dt)
    b = r.standard_normal(geo["cout"]).astype(dt) if geo["bias"] else None
    return x, w, b


@_settings(25)
@given(geo=conv_geometry(), seed=seeds)
def test_conv2d_random_geometry_forward_and_gradcheck(geo, seed):
    x, w, b = _conv_inputs(geo, seed)
    tx, tw = gf.tensor(x, requires_grad=True), gf.tensor(w, requires_grad=True)
    tb = None if b is None else gf.tensor(b, requires_grad=True)
    kw = dict(stride=geo["s"], padding=geo["p"], dilation=geo["d"], groups=geo["g"])
    y = F.conv2d(tx, tw, tb, **kw)
    np.testing.assert_allclose(y.numpy(), _ref_conv(x, w, b, geo["s"], geo["p"], geo["d"], geo["g"]),
                               rtol=1e-10, atol=1e-10)
    args = (tx, tw) if tb is None else (tx, tw, tb)
    mode = "full" if x.size + w.size <= 160 else "random"
    assert gradcheck(lambda *a: F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, **kw), args,
                     eps=1e-6, atol=1e-6, rtol=1e-4, mode=mode, n_directions=6)


def _pool_out(size, k, s, p, d, ceil):
    """PyTorch's pooling output length (independent of gradflow's helper)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


@st.composite
def pool_geometry(draw, dilation=True):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    hw = tuple(draw(st.integers(max(1, d[i] * (k[i] - 1) + 1 - 2 * p[i]),
                                d[i] * (k[i] - 1) + 5)) for i in range(2))
    return dict(n=draw(st.integers(1, 2)), c=draw(st.integers(1, 2)), k=k, s=s, p=p, d=d, hw=hw,
                ceil=draw(st.booleans()))


def _distinct(shape, seed):
    """Values with gaps >> gradcheck's eps, so max-pool's argmax never flips."""
    n = int(np.prod(shape))
    return (_rng(seed).permutation(n).reshape(shape) * 0.1 - n * 0.05).astype(np.float64)


def _ref_max_pool(x, k, s, p, d, ceil):
    n, c, h, w = x.shape
    oh, ow = (_pool_out(h, k[0], s[0], p[0], d[0], ceil), _pool_out(w, k[1], s[1], p[1], d[1], ceil))
    big = np.full((n, c, h + 2 * p[0] + s[0] * oh + d[0] * k[0],
                   w + 2 * p[1] + s[1] * ow + d[1] * k[1]), -np.inf)
    big[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = big[:, :, i * s[0]:i * s[0] + d[0] * (k[0] - 1) + 1:d[0],
                      j * s[1]:j * s[1] + d[1] * (k[1] - 1) + 1:d[1]]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out


def _ref_avg_pool(x, k, s, p, ceil, count_include_pad):
    n, c, h, w = x.shape
    oh, ow = (_pool_out(h, k[0], s[0], p[0], 1, ceil), _pool_out(w, k[1], s[1], p[1], 1, ceil))
    out = np.empty((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            div = size if count_include_pad else (h1 - h0) * (w1 - w0)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return out


@_settings(30)
@given(geo=pool_geometry(), seed=seeds)
def test_max_pool2d_random_geometry_forward_and_gradcheck(geo, seed):
    x = _distinct((geo["n"], geo["c"]) + geo["hw"], seed)
    kw = dict(kernel_size=geo["k"], stride=geo["s"], padding=geo["p"], dilation=geo["d"],
              ceil_mode=geo["ceil"])
    t = gf.tensor(x, requires_grad=True)
    y = F.max_pool2d(t, **kw)
    ref = _ref_max_pool(x, geo["k"], geo["s"], geo["p"], geo["d"], geo["ceil"])
    np.testing.assert_array_equal(y.numpy(), ref)
    if not np.isfinite(ref).all():   # a dilated window wholly in the padding is -inf: no
        return                        # finite differences there (agreement is tested below)
    assert gradcheck(lambda a: F.max_pool2d(a, **kw), (t,), eps=1e-6, atol=1e-6, rtol=1e-5)


@_settings(30)
@given(geo=pool_geometry(dilation=False), count_include_pad=st.booleans(), seed=seeds)
def test_avg_pool2d_random_geometry_forward_and_gradcheck(geo, count_include_pad, seed):
    x = _rng(seed).standard_normal((geo["n"], geo["c"]) + geo["hw"])
    kw = dict(kernel_size=geo["k"], stride=geo["s"], padding=geo["p"], ceil_mode=geo["ceil"],
              count_include_pad=count_include_pad)
    t = gf.tensor(x, requires_grad=True)
    y = F.avg_pool2d(t, **kw)
    np.testing.assert_allclose(y.numpy(), _ref_avg_pool(x, geo["k"], geo["s"], geo["p"], geo["ceil"],
                                                        count_include_pad), rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda a: F.avg_pool2d(a, **kw), (t,), eps=1e-6, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------
# every available backend agrees with the NumPy reference backend
# ---------------------------------------------------------------------------
def _other_backends():
    out = []
    for name in registered_backends():
        if name == "numpy":
            continue
        reason = unavailable_reason(name)
        marks = [pytest.mark.skip(reason=f"backend {name} unavailable: {reason}")] if reason else []
        out.append(pytest.param(name, marks=marks, id=name))
    return out


def _run_case(backend, case, arrays, dt):
    """Forward value and input gradients of ``case`` on ``backend`` as NumPy arrays."""
    ts = [gf.tensor(a, requires_grad=a.dtype.kind == "f", backend=backend) for a in arrays]
    y = case(*ts)
    u = _rng(7).standard_normal(y.shape).astype(dt)
    y.backward(gf.tensor(u, backend=backend))
    return [y.numpy()] + [t.grad.numpy() for t in ts if t.requires_grad]


_CASES = {
    "broadcast_mul_add": (lambda a, b: a * b + b, lambda r, dt: [r.standard_normal((3, 1, 4)),
                                                                 r.standard_normal((2, 4))]),
    "div_pow": (lambda a, b: (a / b) ** 2, lambda r, dt: [r.standard_normal((2, 3)),
                                                          r.standard_normal((3,)) + 3]),
    "unary_chain": (lambda a: (a.tanh() + a.sigmoid() + a.exp() + a.relu() + a.abs().sqrt()
                               + a.sin() + (a * a + 1).log()),
                    lambda r, dt: [r.standard_normal((4, 5))]),
    "reductions": (lambda a: a.sum(dim=1, keepdim=True) * a.mean(dim=(0, 2)).reshape(1, 1, -1)[..., :1]
                   + a.amax(2, True).sum() + a.var(dim=0).sum(),
                   lambda r, dt: [r.standard_normal((3, 4, 5))]),
    "matmul_batched": (lambda a, b: a @ b, lambda r, dt: [r.standard_normal((2, 3, 4)),
                                                          r.standard_normal((4, 5))]),
    "conv_grouped_strided": (
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=(1, 2), groups=2),
        lambda r, dt: [r.standard_normal((2, 4, 9, 9)), r.standard_normal((6, 2, 3, 3)),
                       r.standard_normal(6)]),
    "max_pool_ceil": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
                      lambda r, dt: [r.permutation(2 * 3 * 8 * 7).reshape(2, 3, 8, 7) * 0.01]),
    "avg_pool_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
                     lambda r, dt: [r.standard_normal((2, 3, 7, 8))]),
    "log_softmax": (lambda x: F.log_softmax(x, dim=1), lambda r, dt: [r.standard_normal((5, 7)) * 4]),
    "cross_entropy": (lambda x, t: F.cross_entropy(x, t),
                      lambda r, dt: [r.standard_normal((6, 5)) * 3, r.integers(0, 5, 6)]),
}


@pytest.mark.parametrize("other", _other_backends())
@_settings(40)
@given(name=st.sampled_from(sorted(_CASES)), dt=float_dtypes, seed=seeds)
def test_backends_agree_with_numpy(other, name, dt, seed):
    case, make = _CASES[name]
    arrays = [a.astype(dt) if a.dtype.kind == "f" else a.astype(np.int64)
              for a in make(_rng(seed), dt)]
    ref = _run_case("numpy", case, arrays, dt)
    got = _run_case(other, case, arrays, dt)
    tol = dict(rtol=1e-4, atol=1e-5) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for r, g in zip(ref, got):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, **tol)


@pytest.mark.parametrize("other", _other_backends())
@_settings(25)
@given(geo=conv_geometry(), dt=float_dtypes, seed=seeds)
def test_backends_agree_on_random_conv_geometry(other, geo, dt, seed):
    arrays = [a for a in _conv_inputs(geo, seed, dt) if a is not None]
    kw = dict(stride=geo["s"], padding=geo["p"], dilation=geo["d"], groups=geo["g"])

    def case(x, w, b=None):
        return F.max_pool2d(F.conv2d(x, w, b, **kw).relu(), 1)

    ref = _run_case("numpy", case, arrays, dt)
    got = _run_case(other, case, arrays, dt)
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, **tol)


@pytest.mark.parametrize("other", _other_backends())
@_settings(30)
@given(sa=shape_and_axes(), keepdim=st.booleans(), op=st.sampled_from(["sum", "mean", "amax", "var"]),
       dt=float_dtypes, seed=seeds)
def test_backends_agree_on_reductions_over_random_axes(other, sa, keepdim, op, dt, seed):
    shape, axis = sa
    if op == "var" and int(np.prod([shape[a] for a in _axes(axis, len(shape))])) < 2:
        return
    x = (_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.37 - 1.0).astype(dt)

    def case(t):
        if op == "amax":
            return t.amax(axis, keepdim)
        return getattr(t, op)(dim=axis, keepdim=keepdim)

    ref = _run_case("numpy", case, [x], dt)
    got = _run_case(other, case, [x], dt)
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for r, g in zip(ref, got):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, **tol)


@pytest.mark.parametrize("other", _other_backends())
@_settings(40)
@given(geo=pool_geometry(), kind=st.sampled_from(["max", "avg", "avg_nopad"]), dt=float_dtypes,
       seed=seeds)
def test_backends_agree_on_random_pool_geometry(other, geo, kind, dt, seed):
    x = _distinct((geo["n"], geo["c"]) + geo["hw"], seed).astype(dt)
    if kind == "max":
        kw = dict(kernel_size=geo["k"], stride=geo["s"], padding=geo["p"], dilation=geo["d"],
                  ceil_mode=geo["ceil"])

        def case(t):
            return F.max_pool2d(t, **kw)
    else:
        kw = dict(kernel_size=geo["k"], stride=geo["s"], padding=geo["p"], ceil_mode=geo["ceil"],
                  count_include_pad=kind == "avg")

        def case(t):
            return F.avg_pool2d(t, **kw)
    ref = _run_case("numpy", case, [x], dt)
    got = _run_case(other, case, [x], dt)
    tol = dict(rtol=1e-5, atol=1e-5) if dt == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for r, g in zip(ref, got):
        assert g.shape == r.shape and g.dtype == r.dtype
        np.testing.assert_allclose(g, r, **tol)


@pytest.mark.parametrize("other", _other_backends())
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_backends_agree_on_windows_wholly_in_padding(other, dt):
    """Dilation can put every tap of a window in the padding: the max is -inf (NumPy,
    PyTorch) and no gradient flows from it -- a fast kernel must not read x[0, 0] there."""
    x = np.array([[[[-0.05, 0.3], [0.7, 0.2]]]], dt)
    kw = dict(kernel_size=(2, 1), stride=1, padding=(1, 0), dilation=(3, 1))
    ref = _run_case("numpy", lambda t: F.max_pool2d(t, **kw), [x], dt)
    got = _run_case(other, lambda t: F.max_pool2d(t, **kw), [x], dt)
    assert np.isneginf(ref[0]).all()
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(g, r)


@_settings(20)
@given(dt=st.sampled_from([np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]),
       v=st.integers(0, 100))
def test_numpy_scalars_and_0d_arrays_keep_their_dtype(dt, v):
    """gradflow.tensor(NumPy scalar) keeps the scalar's dtype, like a 0-d array (and PyTorch):
    a reduction result fed back in must not silently change precision."""
    for x in (dt(v), np.asarray(v, dt)):
        t = gf.tensor(x)
        assert t.dtype == np.dtype(dt) and t.shape == ()
