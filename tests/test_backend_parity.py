"""Every backend against the NumPy reference backend.

Written generically: each test takes the ``backend`` fixture (every registered
backend, skipped where it cannot run) and compares with ``numpy`` under
``tols(dtype)``, so a new backend is covered without edits here.

* every op of the table in ``test_ops_gradcheck`` (forward values, output dtype and
  input gradients), in float32 and float64, with contiguous, transposed and sliced
  (strided) input arrays;
* the Backend methods themselves (elementwise ops, reductions, indexing, the fused
  conv / pool / softmax-cross-entropy kernels, optimizer updates) called directly.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.backends import get_backend
from conftest import tols
from test_ops_gradcheck import CASES, GL, gf_inputs, outputs

LAYOUTS = ["contiguous", "transposed", "sliced"]


def _layout_array(be, a, dtype, layout):
    """A backend array equal to ``a`` (cast to dtype) with the requested memory layout."""
    a = np.asarray(a, dtype=dtype)
    if layout == "transposed" and a.ndim >= 2:
        arr = be.transpose(be.asarray(np.ascontiguousarray(a.T)), tuple(range(a.ndim))[::-1])
    elif layout == "sliced" and a.ndim >= 1:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=dtype)
        big[..., ::2] = a
        arr = be.getitem(be.asarray(big), (Ellipsis, slice(None, None, 2)))
    else:
        arr = be.asarray(a)
    assert be.to_numpy(arr).shape == a.shape
    return arr


def _run(case, backend_name, dtype, layout, arrays, cots=None):
    be = get_backend(backend_name)

    def make(a, dt):
        return gf.Tensor._make(_layout_array(be, a, dt, layout), be)

    xs = gf_inputs(case, arrays, dtype=dtype, backend=backend_name, make=make)
    outs = outputs(case.fn(GL, *xs))
    if cots is None:
        rng = np.random.default_rng(5)
        cots = [rng.standard_normal(o.shape) for o in outs]
    total = None
    for o, c in zip(outs, cots):
        if o.requires_grad:
            term = (o * gf.tensor(c, dtype=o.dtype, backend=backend_name)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    grads = [None if not x.requires_grad or x.grad is None else x.grad for x in xs]
    return outs, grads, cots


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", [c for c in CASES if c.parity], ids=lambda c: c.id)
def test_op_parity(case, backend, dtype, layout):
    arrays = case.arrays()
    ref_outs, ref_grads, cots = _run(case, "numpy", dtype, "contiguous", arrays)
    outs, grads, _ = _run(case, backend, dtype, layout, arrays, cots)
    tol = tols(dtype)
    for o, r in zip(outs, ref_outs):
        assert o.backend.name == backend
        assert o.dtype == r.dtype, f"{case.id}: output dtype {o.dtype} vs reference {r.dtype}"
        assert o.shape == r.shape
        np.testing.assert_allclose(o.numpy(), r.numpy(), **tol, err_msg=f"{case.id} forward")
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert (g is None) == (r is None), f"{case.id}: gradient presence differs for input {i}"
        if g is None:
            continue
        assert g.backend.name == backend and g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g.numpy(), r.numpy(), **tol,
                                   err_msg=f"{case.id}: gradient of input {i}")


# ---------------------------------------------------------------------------
# the Backend interface called directly
# ---------------------------------------------------------------------------
def _pair(backend, dtype, layout="contiguous"):
    return get_backend(backend), get_backend("numpy")


def _same(be, ref, fn, arrays, dtype, layout="contiguous", exact_dtype=True):
    got = fn(be, *[_layout_array(be, a, dtype, layout) if np.asarray(a).dtype.kind == "f" else be.asarray(a)
                   for a in arrays])
    want = fn(ref, *[ref.asarray(np.asarray(a, dtype=dtype)) if np.asarray(a).dtype.kind == "f"
                     else ref.asarray(a) for a in arrays])
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        g, w = be.to_numpy(g), ref.to_numpy(w)
        if exact_dtype:
            assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, **tols(dtype))
        else:
            np.testing.assert_array_equal(g, w)
    return got


UNARY = ["neg", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "sign", "sin", "cos",
         "log1p", "expm1", "reciprocal", "square"]
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", UNARY)
def test_backend_unary(backend, dtype, op, layout):
    be, ref = _pair(backend, dtype)
    a = np.random.default_rng(0).uniform(0.2, 3.0, (4, 6)) * np.array([1, -1] * 3)
    if op in ("log", "sqrt", "log1p"):
        a = np.abs(a)
    out = _same(be, ref, lambda b, x: b.unary(op, x), [a], dtype, layout)
    assert be.to_numpy(out[0]).dtype == np.dtype(dtype)


@pytest.mark.parametrize("op", BINARY)
def test_backend_binary_broadcast_no_promotion(backend, dtype, op):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, (4,))
    out = _same(be, ref, lambda bk, x, y: bk.binary(op, x, y), [a, b], dtype, "transposed")
    kind = be.to_numpy(out[0]).dtype
    assert kind == (np.dtype(bool) if op in ("eq", "ne", "lt", "le", "gt", "ge") else np.dtype(dtype))
    # a Python scalar never promotes float32
    s = be.binary(op, be.asarray(a.astype(dtype)), 0.5)
    if op not in ("eq", "ne", "lt", "le", "gt", "ge"):
        assert be.to_numpy(s).dtype == np.dtype(dtype)


@pytest.mark.parametrize("op", ["sum", "max", "min", "mean", "prod"])
@pytest.mark.parametrize("axis,keep", [(None, False), (1, True), ((0, 2), False), (-1, False)])
def test_backend_reduce(backend, dtype, op, axis, keep):
    be, ref = _pair(backend, dtype)
    a = np.random.default_rng(2).uniform(0.5, 1.5, (2, 3, 4))
    _same(be, ref, lambda b, x: b.reduce(op, x, axis, keep), [a], dtype, "transposed")


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis,keep", [(None, False), (1, False), (0, True)])
def test_backend_arg_reduce(backend, dtype, op, axis, keep):
    be, ref = _pair(backend, dtype)
    a = np.random.default_rng(3).standard_normal((3, 5))
    _same(be, ref, lambda b, x: b.arg_reduce(op, x, axis, keep), [a], dtype, "sliced", exact_dtype=False)


def test_backend_where_clip_astype(backend, dtype):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    cond = rng.random((3, 4)) < 0.5
    _same(be, ref, lambda k, c, x, y: k.where(c, x, y), [cond, a, b], dtype, "transposed")
    _same(be, ref, lambda k, x: k.clip(x, -0.3, 0.4), [a], dtype, "sliced")
    _same(be, ref, lambda k, x: k.astype(x, np.int64), [a * 10], dtype, exact_dtype=True)


def test_backend_views_and_movement(backend, dtype):
    be, ref = _pair(backend, dtype)
    a = np.random.default_rng(5).standard_normal((3, 4))
    _same(be, ref, lambda k, x: k.reshape(x, (4, 3)), [a], dtype)
    _same(be, ref, lambda k, x: k.transpose(x, (1, 0)), [a], dtype, "sliced")
    _same(be, ref, lambda k, x: k.broadcast_to(x, (2, 3, 4)), [a], dtype, "transposed")
    _same(be, ref, lambda k, x: k.getitem(x, (slice(0, 2), 1)), [a], dtype, "transposed")
    _same(be, ref, lambda k, x: k.pad(x, ((1, 0), (2, 1)), 0.5), [a], dtype, "sliced")
    _same(be, ref, lambda k, x, y: k.concat([x, y], 1), [a, a[:, :2]], dtype, "transposed")
    _same(be, ref, lambda k, x, y: k.stack([x, y], 0), [a, a * 2], dtype, "sliced")
    _same(be, ref, lambda k, x: k.copy(x), [a], dtype, "transposed")


def test_backend_index_add_accumulates(backend, dtype):
    be, ref = _pair(backend, dtype)
    vals = np.arange(1.0, 9.0).reshape(4, 2)
    idx = np.array([0, 2, 0, 0])
    out = _same(be, ref, lambda k, v, i: k.index_add((3, 2), i, v, np.dtype(dtype)), [vals, idx], dtype)
    np.testing.assert_allclose(be.to_numpy(out[0]), [[1 + 5 + 7, 2 + 6 + 8], [0, 0], [3, 4]])
    # two fancy index arrays, repeated pairs
    i0, i1 = np.array([1, 1, 0]), np.array([2, 2, 0])
    out = _same(be, ref, lambda k, v, a, b: k.index_add((2, 3), (a, b), v, np.dtype(dtype)),
                [np.array([1.0, 2.0, 4.0]), i0, i1], dtype)
    np.testing.assert_allclose(be.to_numpy(out[0]), [[4, 0, 0], [0, 0, 3]])


def test_backend_setitem_copyto_inplace(backend, dtype):
    be = get_backend(backend)
    a = be.asarray(np.zeros((2, 3), dtype=dtype))
    be.setitem_(a, (0, slice(None)), be.asarray(np.ones(3, dtype=dtype)))
    be.copyto_(be.getitem(a, 1), be.asarray(np.array(2.0, dtype=dtype)))
    np.testing.assert_array_equal(be.to_numpy(a), [[1, 1, 1], [2, 2, 2]])
    assert be.to_numpy(a).dtype == np.dtype(dtype)


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 2)])
def test_backend_matmul(backend, dtype, shape):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(6)
    a = rng.standard_normal(shape[:-1])
    b = rng.standard_normal((shape[-2], shape[-1]))
    _same(be, ref, lambda k, x, y: k.matmul(x, y), [a, b], dtype, "transposed")
    _same(be, ref, lambda k, x, y: k.matmul(x, y), [a, b], dtype, "sliced")


CONV_GEOMS = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((2, 4, 8, 7), (6, 2, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    ((1, 3, 9, 9), (3, 1, 3, 3), (2, 2), (1, 1), (2, 2), 3),
    ((3, 2, 5, 5), (5, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("geom", CONV_GEOMS, ids=lambda g: f"x{g[0]}w{g[1]}s{g[2]}p{g[3]}d{g[4]}g{g[5]}")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_backend_conv_kernels(backend, dtype, geom, layout):
    be, ref = _pair(backend, dtype)
    xs, ws, s, p, d, g = geom
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    y = _same(be, ref, lambda k, x_, w_, b_: k.conv2d_forward(x_, w_, b_, s, p, d, g), [x, w, b],
              dtype, layout)[0]
    gy = rng.standard_normal(be.to_numpy(y).shape)
    for need in [(True, True, True), (True, False, False), (False, True, True)]:
        _same(be, ref, lambda k, x_, w_, gy_: k.conv2d_backward(x_, w_, gy_, s, p, d, g, *need),
              [x, w, gy], dtype, layout)
    cols = _same(be, ref, lambda k, x_: k.im2col(x_, ws[2:], s, p, d), [x], dtype, layout)[0]
    dc = rng.standard_normal(be.to_numpy(cols).shape)
    _same(be, ref, lambda k, c_: k.col2im(c_, xs, ws[2:], s, p, d), [dc], dtype, layout)


POOL_GEOMS = [  # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (1, 2), (1, 0), (1, 1), False),
    ((2, 2), (1, 1), (0, 0), (2, 2), False),
]


@pytest.mark.parametrize("geom", POOL_GEOMS, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_backend_pool_kernels(backend, dtype, geom, layout):
    be, ref = _pair(backend, dtype)
    k, s, p, d, ceil = geom
    rng = np.random.default_rng(8)
    x = rng.permutation(np.linspace(-3, 3, 2 * 3 * 7 * 6)).reshape(2, 3, 7, 6)
    y, idx = _same(be, ref, lambda b_, x_: b_.max_pool2d_forward(x_, k, s, p, d, ceil), [x], dtype,
                   layout, exact_dtype=False)
    gy = rng.standard_normal(be.to_numpy(y).shape)
    ref_idx = ref.max_pool2d_forward(ref.asarray(x.astype(dtype)), k, s, p, d, ceil)[1]
    got = be.max_pool2d_backward(be.asarray(gy.astype(dtype)), idx, x.shape, k, s, p, d, ceil)
    want = ref.max_pool2d_backward(ref.asarray(gy.astype(dtype)), ref_idx, x.shape, k, s, p, d, ceil)
    np.testing.assert_allclose(be.to_numpy(got), ref.to_numpy(want), **tols(dtype))
    if d == (1, 1):
        for incl in (True, False):
            ya = _same(be, ref, lambda b_, x_: b_.avg_pool2d_forward(x_, k, s, p, ceil, incl), [x], dtype,
                       layout)[0]
            gya = rng.standard_normal(be.to_numpy(ya).shape)
            _same(be, ref, lambda b_, g_: b_.avg_pool2d_backward(g_, x.shape, k, s, p, ceil, incl),
                  [gya], dtype, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_backend_softmax_kernels(backend, dtype, layout):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((5, 7)) * 3
    x[0, 0] = 1e4 if dtype == np.float64 else 1e3
    _same(be, ref, lambda k, a: k.log_softmax(a, 1), [x], dtype, layout)
    _same(be, ref, lambda k, a: k.softmax(a, 0), [x], dtype, layout)
    t = rng.integers(0, 7, 5)
    loss, logp = _same(be, ref, lambda k, a, tt: k.softmax_cross_entropy_forward(a, tt), [x, t], dtype,
                       layout)
    gl = rng.standard_normal(5)
    _same(be, ref, lambda k, lp, tt, g: k.softmax_cross_entropy_backward(k.copy(lp), tt, g),
          [be.to_numpy(logp), t, gl], dtype)
    _same(be, ref, lambda k, y, g: k.relu_backward(g, k.unary("relu", y)), [x, gl[:, None] * x], dtype)


@pytest.mark.parametrize("nesterov", [False, True])
def test_backend_sgd_step(backend, dtype, nesterov):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(10)
    p0, g0, b0 = rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(6)
    results = []
    for k in (be, ref):
        p, g, buf = (k.asarray(v.astype(dtype)) for v in (p0, g0, b0))
        k.sgd_step_(p, g, buf, 0.1, 0.9, 0.0, 1e-2, nesterov, False)
        k.sgd_step_(p, g, buf, 0.1, 0.9, 0.0, 1e-2, nesterov, False)
        results.append((k.to_numpy(p), k.to_numpy(buf)))
    for got, want in zip(*results):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **tols(dtype))


@pytest.mark.parametrize("decoupled", [False, True])
def test_backend_adam_step(backend, dtype, decoupled):
    be, ref = _pair(backend, dtype)
    rng = np.random.default_rng(11)
    p0, g0 = rng.standard_normal(6), rng.standard_normal(6)
    results = []
    for k in (be, ref):
        p, g = k.asarray(p0.astype(dtype)), k.asarray(g0.astype(dtype))
        m, v = k.zeros((6,), np.dtype(dtype)), k.zeros((6,), np.dtype(dtype))
        for step in (1, 2, 3):
            k.adam_step_(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, 1e-2, step, decoupled)
        results.append((k.to_numpy(p), k.to_numpy(m), k.to_numpy(v)))
    for got, want in zip(*results):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **tols(dtype))


def test_backend_creation_and_random(backend, dtype):
    be = get_backend(backend)
    assert be.to_numpy(be.zeros((2, 3), np.dtype(dtype))).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(be.to_numpy(be.full((2,), 3, np.dtype(dtype))), [3, 3])
    np.testing.assert_array_equal(be.to_numpy(be.arange(0, 5, 2, np.dtype(dtype))), [0, 2, 4])
    np.testing.assert_array_equal(be.to_numpy(be.eye(2, 3, np.dtype(dtype))), np.eye(2, 3))
    assert be.to_numpy(be.empty((4,), np.dtype(dtype))).shape == (4,)
    be.seed(3)
    r1 = be.to_numpy(be.randn((5,), np.dtype(dtype)))
    u1 = be.to_numpy(be.rand((1000,), np.dtype(dtype)))
    be.seed(3)
    np.testing.assert_array_equal(be.to_numpy(be.randn((5,), np.dtype(dtype))), r1)
    assert r1.dtype == u1.dtype == np.dtype(dtype)
    assert 0 <= u1.min() and u1.max() < 1
    ri = be.to_numpy(be.randint(0, 4, (100,), np.dtype("int64")))
    assert ri.min() >= 0 and ri.max() < 4 and ri.dtype == np.int64
    assert sorted(be.to_numpy(be.permutation(6)).tolist()) == list(range(6))
    be.synchronize()
    assert isinstance(be.memory_info(), dict)


def test_numpy_backend_kernels_use_xp_only():
    """DESIGN: the NumPy backend is written against ``self.xp`` so the CuPy backend
    inherits every default kernel; ``numpy`` itself appears only for host-side work
    (the seeded host RNG, ``to_numpy``, ``info``)."""
    import ast
    import inspect
    from gradflow.backends import numpy_backend
    tree = ast.parse(inspect.getsource(numpy_backend))
    allowed = {"__init__", "seed", "to_numpy", "info"}
    offenders = []
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            if fn.name in allowed:
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Name) and node.id == "numpy":
                    offenders.append(f"{fn.name}:{node.lineno}")
    assert not offenders, f"NumpyBackend methods using numpy instead of self.xp: {offenders}"
