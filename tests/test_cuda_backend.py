"""The CuPy (CUDA) backend: its kernels against the NumPy reference on odd
shapes, transfers, memory, a LeNet-5 step, and the no-GPU error path.

Everything that needs a GPU is marked ``requires_cuda`` and skips with the
reason (CuPy missing, no device...) elsewhere; the error-path tests run on
every machine."""
from __future__ import annotations

import numpy as np
import pytest

import gradflow
import gradflow.backends as B
from gradflow.backends import BackendUnavailable, unavailable_reason

from conftest import requires_cuda

CUDA_REASON = unavailable_reason("cupy")
F32 = dict(rtol=1e-4, atol=1e-5)
F64 = dict(rtol=1e-10, atol=1e-12)


def tol(dtype):
    return F32 if np.dtype(dtype) == np.float32 else F64


# ---------------------------------------------------------------------------
# no GPU: clear errors, and `gradflow info` says why
# ---------------------------------------------------------------------------
@pytest.mark.skipif(CUDA_REASON is None, reason="CUDA is available here; tests the no-GPU path")
def test_selecting_cupy_without_cuda_raises_clear_error():
    with pytest.raises(BackendUnavailable) as e:
        gradflow.set_backend("cupy")
    msg = str(e.value)
    assert "cupy" in msg and CUDA_REASON in msg and "numpy" in msg
    with pytest.raises(BackendUnavailable):
        gradflow.tensor([1.0]).to("cuda")
    assert "cupy" not in gradflow.available_backends()
    assert not gradflow.cuda.is_available()


def test_unavailable_cupy_error_names_the_reason(monkeypatch):
    """The same path, simulated, so it also runs on GPU machines."""
    from gradflow.backends.cupy_backend import CupyBackend
    monkeypatch.setattr(CupyBackend, "unavailable_reason",
                        classmethod(lambda cls: "simulated: no CUDA device"))
    monkeypatch.setattr(B, "_instances", {k: v for k, v in B._instances.items() if k != "cupy"})
    with pytest.raises(BackendUnavailable, match="'cupy' is not available.*simulated: no CUDA device"):
        B.get_backend("cupy")
    with pytest.raises(BackendUnavailable, match="simulated"):
        with gradflow.backend("cuda"):
            pass


def test_info_reports_cupy():
    from gradflow.info import collect
    cu = collect()["backends"]["cupy"]
    if CUDA_REASON is not None:
        assert cu == {"available": False, "reason": CUDA_REASON}
    else:
        assert cu["available"] and cu["device"] and cu["cupy"]
        assert cu["pool_used_bytes"] >= 0 and cu["pool_total_bytes"] >= cu["pool_used_bytes"]


def test_importing_the_module_never_needs_cupy():
    import gradflow.backends.cupy_backend as cb
    assert cb.CupyBackend.name == "cupy" and cb.CupyBackend.device_type == "cuda"


# ---------------------------------------------------------------------------
# kernel parity with the NumPy backend (backend methods, odd shapes)
# ---------------------------------------------------------------------------
@pytest.fixture
def np_be():
    return B.get_backend("numpy")


@pytest.fixture
def cu_be():
    return B.get_backend("cupy")


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _close(cu, got, want, dtype, **kw):
    np.testing.assert_allclose(cu.to_numpy(got), want, **(kw or tol(dtype)))


CONV_CASES = [
    # (N, C, H, W), (K, C/g, kh, kw), stride, padding, dilation, groups
    ((2, 3, 7, 9), (5, 3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((3, 1, 13, 11), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1), 1),
    ((1, 4, 10, 9), (6, 2, 3, 2), (2, 3), (1, 0), (1, 1), 2),
    ((2, 3, 11, 12), (4, 3, 3, 3), (2, 2), (2, 1), (2, 3), 1),
    ((2, 6, 5, 5), (6, 1, 3, 3), (1, 1), (1, 1), (1, 1), 6),     # depthwise
    ((1, 2, 4, 4), (3, 2, 1, 1), (1, 1), (0, 0), (1, 1), 1),     # 1x1
    ((2, 2, 6, 7), (3, 2, 4, 4), (3, 3), (3, 3), (1, 1), 1),     # padding > stride
]


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-g{c[5]}")
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_parity(np_be, cu_be, case, dtype, bias):
    xs, ws, s, p, d, g = case
    rng = np.random.default_rng(1)
    x, w = _rand(rng, xs, dtype), _rand(rng, ws, dtype)
    b = _rand(rng, (ws[0],), dtype) if bias else None
    y = np_be.conv2d_forward(x, w, b, s, p, d, g)
    cx, cw = cu_be.asarray(x), cu_be.asarray(w)
    cy = cu_be.conv2d_forward(cx, cw, None if b is None else cu_be.asarray(b), s, p, d, g)
    assert cy.dtype == dtype and cy.shape == y.shape
    _close(cu_be, cy, y, dtype)
    gy = _rand(rng, y.shape, dtype)
    ref = np_be.conv2d_backward(x, w, gy, s, p, d, g)
    got = cu_be.conv2d_backward(cx, cw, cu_be.asarray(gy), s, p, d, g)
    for r, c in zip(ref, got):
        assert c.dtype == dtype and c.shape == r.shape
        _close(cu_be, c, r, dtype)
    # only what is asked for
    dx, dw, db = cu_be.conv2d_backward(cx, cw, cu_be.asarray(gy), s, p, d, g,
                                       need_dx=False, need_dw=True, need_db=False)
    assert dx is None and db is None and dw is not None


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_64bit_index_fallback_kernels_match(np_be, cu_be, dtype, monkeypatch):
    """The int64-index ElementwiseKernel variants (used past 2**31 elements or past
    CUDA's grid limits) give the reference's results too."""
    import gradflow.backends.cupy_backend as cb
    monkeypatch.setattr(cb, "_GRID_MAX", 0)
    monkeypatch.setattr(cb, "_big", lambda *sizes: True)
    rng = np.random.default_rng(21)
    xs, ws, s, p, d, g = CONV_CASES[3]
    x, w = _rand(rng, xs, dtype), _rand(rng, ws, dtype)
    y = np_be.conv2d_forward(x, w, None, s, p, d, g)
    _close(cu_be, cu_be.conv2d_forward(cu_be.asarray(x), cu_be.asarray(w), None, s, p, d, g), y, dtype)
    gy = _rand(rng, y.shape, dtype)
    ref = np_be.conv2d_backward(x, w, gy, s, p, d, g)
    got = cu_be.conv2d_backward(cu_be.asarray(x), cu_be.asarray(w), cu_be.asarray(gy), s, p, d, g)
    for r, c in zip(ref, got):
        _close(cu_be, c, r, dtype)
    shape, k, st, pd, dl, ceil = POOL_CASES[2]
    xp_ = _rand(rng, shape, dtype)
    yp, idx = np_be.max_pool2d_forward(xp_, k, st, pd, dl, ceil)
    cy, cidx = cu_be.max_pool2d_forward(cu_be.asarray(xp_), k, st, pd, dl, ceil)
    _close(cu_be, cy, yp, dtype)
    gyp = _rand(rng, yp.shape, dtype)
    _close(cu_be, cu_be.max_pool2d_backward(cu_be.asarray(gyp), cidx, xp_.shape, k, st, pd, dl, ceil),
           np_be.max_pool2d_backward(gyp, idx, xp_.shape, k, st, pd, dl, ceil), dtype)
    _close(cu_be, cu_be.avg_pool2d_forward(cu_be.asarray(xp_), k, st, pd, ceil, False),
           np_be.avg_pool2d_forward(xp_, k, st, pd, ceil, False), dtype)


@requires_cuda
def test_conv2d_noncontiguous_inputs(np_be, cu_be):
    rng = np.random.default_rng(2)
    base = _rand(rng, (3, 5, 9, 8), np.float32)
    x = base.transpose(0, 1, 3, 2)                      # (3, 5, 8, 9), a strided view
    cx = cu_be.asarray(base).transpose(0, 1, 3, 2)
    assert not cx.flags.c_contiguous
    w = _rand(rng, (4, 5, 3, 3), np.float32)
    cw = cu_be.asarray(w)
    y = np_be.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    _close(cu_be, cu_be.conv2d_forward(cx, cw, None, (1, 1), (1, 1), (1, 1), 1), y, np.float32)
    gy = _rand(rng, y.shape[::-1], np.float32).transpose(3, 2, 1, 0)   # non-contiguous grad
    ref = np_be.conv2d_backward(x, w, gy, (1, 1), (1, 1), (1, 1), 1)
    got = cu_be.conv2d_backward(cx, cw, cu_be.asarray(np.ascontiguousarray(gy.transpose(3, 2, 1, 0))).transpose(3, 2, 1, 0),
                                (1, 1), (1, 1), (1, 1), 1)
    for r, c in zip(ref, got):
        _close(cu_be, c, r, np.float32)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_parity(np_be, cu_be, dtype):
    rng = np.random.default_rng(3)
    x = _rand(rng, (2, 3, 9, 7), dtype)
    geom = ((3, 2), (2, 1), (1, 1), (2, 1))
    cols = np_be.im2col(x, *geom)
    ccols = cu_be.im2col(cu_be.asarray(x), *geom)
    _close(cu_be, ccols, cols, dtype, rtol=0, atol=0)
    g = _rand(rng, cols.shape, dtype)
    _close(cu_be, cu_be.col2im(cu_be.asarray(g), x.shape, *geom), np_be.col2im(g, x.shape, *geom), dtype)


@requires_cuda
def test_col2im_is_deterministic():
    cu = B.get_backend("cupy")
    rng = np.random.default_rng(4)
    x = cu.asarray(_rand(rng, (4, 8, 16, 16), np.float32))
    w = cu.asarray(_rand(rng, (8, 8, 3, 3), np.float32))
    gy = cu.asarray(_rand(rng, (4, 8, 16, 16), np.float32))
    a = cu.conv2d_backward(x, w, gy, (1, 1), (1, 1), (1, 1), 1)[0]
    for _ in range(3):
        b = cu.conv2d_backward(x, w, gy, (1, 1), (1, 1), (1, 1), 1)[0]
        assert bool((a == b).all())


POOL_CASES = [
    # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 1, 7, 9), (3, 2), (2, 3), (1, 1), (1, 1), True),
    ((1, 3, 11, 10), (3, 3), (1, 2), (1, 0), (2, 2), False),
    ((3, 2, 5, 5), (2, 2), (1, 1), (0, 0), (1, 1), True),
]


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-k{c[1][0]}{c[1][1]}-c{int(c[5])}")
def test_max_pool_parity(np_be, cu_be, case, dtype):
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(5)
    x = _rand(rng, shape, dtype)
    x[0, 0, 1, 1] = x[0, 0, 1, 2]        # a tie: the first tap wins on both
    y, idx = np_be.max_pool2d_forward(x, k, s, p, d, ceil)
    cy, cidx = cu_be.max_pool2d_forward(cu_be.asarray(x), k, s, p, d, ceil)
    _close(cu_be, cy, y, dtype, rtol=0, atol=0)
    np.testing.assert_array_equal(cu_be.to_numpy(cidx), idx)
    gy = _rand(rng, y.shape, dtype)
    ref = np_be.max_pool2d_backward(gy, idx, x.shape, k, s, p, d, ceil)
    got = cu_be.max_pool2d_backward(cu_be.asarray(gy), cidx, x.shape, k, s, p, d, ceil)
    _close(cu_be, got, ref, dtype)


@requires_cuda
def test_max_pool_nan_and_inf_like_reference(np_be, cu_be):
    x = np.array([[[[1.0, np.nan, 3.0, -np.inf], [np.inf, 2.0, -np.inf, -np.inf]]]], np.float32)
    y, idx = np_be.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    cy, cidx = cu_be.max_pool2d_forward(cu_be.asarray(x), (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(cu_be.to_numpy(cy), y)
    np.testing.assert_array_equal(cu_be.to_numpy(cidx), idx)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES[:3] + POOL_CASES[4:], ids=str)
def test_avg_pool_parity(np_be, cu_be, case, dtype, include_pad):
    shape, k, s, p, _, ceil = case
    rng = np.random.default_rng(6)
    x = _rand(rng, shape, dtype)
    y = np_be.avg_pool2d_forward(x, k, s, p, ceil, include_pad)
    _close(cu_be, cu_be.avg_pool2d_forward(cu_be.asarray(x), k, s, p, ceil, include_pad), y, dtype)
    gy = _rand(rng, y.shape, dtype)
    ref = np_be.avg_pool2d_backward(gy, x.shape, k, s, p, ceil, include_pad)
    got = cu_be.avg_pool2d_backward(cu_be.asarray(gy), x.shape, k, s, p, ceil, include_pad)
    _close(cu_be, got, ref, dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,c", [(1, 1), (7, 10), (33, 37), (5, 1000), (300, 3)])
def test_softmax_cross_entropy_parity(np_be, cu_be, dtype, n, c):
    rng = np.random.default_rng(7)
    x = (_rand(rng, (n, c), dtype) * 5).astype(dtype)
    if n > 1:
        x[0, 0] = 1e4          # extreme logits stay finite
        x[-1, :] = -1e4
    t = rng.integers(0, c, size=n)
    loss, logp = np_be.softmax_cross_entropy_forward(x, t)
    closs, clogp = cu_be.softmax_cross_entropy_forward(cu_be.asarray(x), cu_be.asarray(t))
    assert closs.dtype == dtype and clogp.dtype == dtype
    _close(cu_be, closs, loss, dtype)
    _close(cu_be, clogp, logp, dtype)
    gl = _rand(rng, (n,), dtype)
    ref = np_be.softmax_cross_entropy_backward(logp.copy(), t, gl)
    got = cu_be.softmax_cross_entropy_backward(clogp, cu_be.asarray(t), cu_be.asarray(gl))
    _close(cu_be, got, ref, dtype)
    # a broadcast (stride-0) gradient, as the frontend's 'mean' passes it
    gb = np.broadcast_to(np.asarray(0.5, dtype), (n,))
    got = cu_be.softmax_cross_entropy_backward(clogp, cu_be.asarray(t),
                                               cu_be.xp.broadcast_to(cu_be.asarray(gb[:1])[0], (n,)))
    _close(cu_be, got, np_be.softmax_cross_entropy_backward(logp.copy(), t, gb), dtype)


@requires_cuda
def test_cross_entropy_nan_row_like_reference(np_be, cu_be):
    x = np.array([[np.nan, 1.0, 2.0], [-np.inf, -np.inf, -np.inf], [1.0, 2.0, 3.0]], np.float32)
    t = np.array([1, 0, 2])
    with np.errstate(all="ignore"):
        loss, logp = np_be.softmax_cross_entropy_forward(x, t)
    closs, clogp = cu_be.softmax_cross_entropy_forward(cu_be.asarray(x), cu_be.asarray(t))
    np.testing.assert_allclose(cu_be.to_numpy(closs), loss, rtol=1e-6)   # NaNs compare equal
    np.testing.assert_allclose(cu_be.to_numpy(clogp), logp, rtol=1e-6)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_parity(np_be, cu_be, dtype):
    rng = np.random.default_rng(8)
    y = np.maximum(_rand(rng, (3, 5, 7), dtype), 0)
    gy = _rand(rng, y.shape, dtype)
    _close(cu_be, cu_be.relu_backward(cu_be.asarray(gy), cu_be.asarray(y)),
           np_be.relu_backward(gy, y), dtype, rtol=0, atol=0)
    x, b = _rand(rng, (4, 6), dtype), _rand(rng, (6,), dtype)
    _close(cu_be, cu_be.bias_relu(cu_be.asarray(x), cu_be.asarray(b)), np.maximum(x + b, 0), dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov,wd,damp", [(0.0, False, 0.0, 0.0), (0.0, False, 0.1, 0.0),
                                                       (0.9, False, 0.0, 0.0), (0.9, True, 1e-2, 0.0),
                                                       (0.5, False, 1e-3, 0.3)])
def test_sgd_step_parity(np_be, cu_be, dtype, momentum, nesterov, wd, damp):
    rng = np.random.default_rng(9)
    p, buf = _rand(rng, (7, 3), dtype), np.zeros((7, 3), dtype)
    cp, cbuf = cu_be.asarray(p), cu_be.asarray(buf)
    for step in range(4):
        g = _rand(rng, p.shape, dtype)
        np_be.sgd_step_(p, g, buf, 0.1, momentum, damp, wd, nesterov, step == 0)
        cu_be.sgd_step_(cp, cu_be.asarray(g), cbuf, 0.1, momentum, damp, wd, nesterov, step == 0)
    _close(cu_be, cp, p, dtype)
    _close(cu_be, cbuf, buf, dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.01, False), (0.01, True)])
def test_adam_step_parity(np_be, cu_be, dtype, wd, decoupled):
    rng = np.random.default_rng(10)
    p = _rand(rng, (5, 4), dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    cp, cm, cv = cu_be.asarray(p), cu_be.asarray(m), cu_be.asarray(v)
    for step in range(1, 6):
        g = _rand(rng, p.shape, dtype)
        np_be.adam_step_(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, wd, step, decoupled)
        cu_be.adam_step_(cp, cu_be.asarray(g), cm, cv, 1e-2, 0.9, 0.999, 1e-8, wd, step, decoupled)
    for c, r in ((cp, p), (cm, m), (cv, v)):
        _close(cu_be, c, r, dtype)


@requires_cuda
def test_index_add_accumulates_and_host_indices(np_be, cu_be):
    vals = np.arange(8, dtype=np.float32).reshape(4, 2)
    idx = np.array([0, 2, 0, 0])
    ref = np_be.index_add((3, 2), idx, vals, np.float32)
    got = cu_be.index_add((3, 2), cu_be.asarray(idx), cu_be.asarray(vals), np.float32)
    np.testing.assert_array_equal(cu_be.to_numpy(got), ref)
    got = cu_be.index_add((3, 2), idx, cu_be.asarray(vals), np.float32)        # host index
    np.testing.assert_array_equal(cu_be.to_numpy(got), ref)
    mask = np.array([True, False, True])
    ref = np_be.index_add((3, 2), mask, vals[:2], np.float32)
    got = cu_be.index_add((3, 2), cu_be.asarray(mask), cu_be.asarray(vals[:2]), np.float32)
    np.testing.assert_array_equal(cu_be.to_numpy(got), ref)
    ref = np_be.index_add((3, 4), (slice(None), slice(1, 3)), vals[:3], np.float32)
    got = cu_be.index_add((3, 4), (slice(None), slice(1, 3)), cu_be.asarray(vals[:3]), np.float32)
    np.testing.assert_array_equal(cu_be.to_numpy(got), ref)


@requires_cuda
def test_frontend_ops_on_cuda_match_numpy():
    """Indexing, broadcasting, reductions, cross-entropy through the Tensor API."""
    rng = np.random.default_rng(11)
    a = rng.standard_normal((4, 5)).astype(np.float32)
    t = np.array([1, 0, 4, 2])
    res = {}
    for name in ("numpy", "cupy"):
        x = gradflow.tensor(a, requires_grad=True, backend=name)
        tt = gradflow.tensor(t, backend=name)
        loss = gradflow.nn.functional.cross_entropy(x * 2.0 + x[[0, 0, 1, 3]].sum(0), tt) \
            + x[:, 1:3].mean() + x.max(1)[0].sum() * 0.5 + (x.exp() / 3).sigmoid().sum()
        loss.backward()
        assert loss.dtype == np.float32 and x.grad.dtype == np.float32
        res[name] = (loss.item(), x.grad.numpy())
    np.testing.assert_allclose(res["cupy"][0], res["numpy"][0], rtol=1e-5)
    np.testing.assert_allclose(res["cupy"][1], res["numpy"][1], rtol=1e-4, atol=1e-6)


@requires_cuda
def test_gradcheck_conv_pool_xent_on_cuda():
    from gradflow.autograd import gradcheck
    F = gradflow.nn.functional
    with gradflow.backend("cupy"):
        x = gradflow.randn(2, 2, 6, 5, dtype=gradflow.float64, requires_grad=True)
        w = gradflow.randn(3, 2, 3, 3, dtype=gradflow.float64, requires_grad=True)
        b = gradflow.randn(3, dtype=gradflow.float64, requires_grad=True)
        t = gradflow.tensor([0, 2])

        def f(x, w, b):
            h = F.conv2d(x, w, b, stride=1, padding=1).relu()
            h = F.max_pool2d(h, 2, ceil_mode=True) + F.avg_pool2d(h, 2, ceil_mode=True)
            return F.cross_entropy(h.flatten(1)[:, :3], t)
        assert gradcheck(f, (x, w, b), eps=1e-6, atol=1e-6, rtol=1e-4)


# ---------------------------------------------------------------------------
# transfers, RNG, device facts
# ---------------------------------------------------------------------------
@requires_cuda
def test_tensor_round_trip_and_gradient_flows_back():
    a = np.random.default_rng(12).standard_normal((3, 4)).astype(np.float32)
    x = gradflow.tensor(a, requires_grad=True)            # numpy backend
    xc = x.to("cupy")
    assert xc.backend.name == "cupy" and xc.device.type == "cuda"
    assert type(xc.array).__module__.startswith("cupy")
    np.testing.assert_array_equal(xc.numpy(), a)
    assert isinstance(xc.numpy(), np.ndarray)
    ((xc * xc).sum()).backward()
    assert x.grad.backend.name == "numpy"
    np.testing.assert_allclose(x.grad.numpy(), 2 * a, rtol=1e-6)
    back = xc.to("cpu")
    assert back.backend.device_type == "cpu"
    np.testing.assert_array_equal(back.numpy(), a)
    assert gradflow.tensor(3.5, backend="cupy").item() == 3.5
    with pytest.raises(RuntimeError, match="cupy"):
        x + xc                                           # data never moves implicitly


@requires_cuda
def test_device_rng_is_seeded_and_typed(cu_be):
    for dt in (np.float32, np.float64):
        cu_be.seed(123)
        a = cu_be.to_numpy(cu_be.randn((1000,), dt))
        cu_be.seed(123)
        b = cu_be.to_numpy(cu_be.randn((1000,), dt))
        assert a.dtype == dt and np.array_equal(a, b) and abs(a.mean()) < 0.2
        u = cu_be.to_numpy(cu_be.rand((1000,), dt))
        assert u.dtype == dt and 0 <= u.min() and u.max() < 1
    r = cu_be.to_numpy(cu_be.randint(0, 5, (100,), np.int64))
    assert r.dtype == np.int64 and r.min() >= 0 and r.max() < 5
    assert sorted(cu_be.to_numpy(cu_be.permutation(10)).tolist()) == list(range(10))


@requires_cuda
def test_memory_info_and_synchronize(cu_be):
    cu_be.synchronize()
    before = cu_be.memory_info()["used_bytes"]
    a = cu_be.zeros((1024, 1024), np.float32)
    info = cu_be.memory_info()
    assert info["used_bytes"] >= before + 4 * 2**20 and info["total_bytes"] >= info["used_bytes"]
    assert info["device_total_bytes"] > 0
    del a


# ---------------------------------------------------------------------------
# LeNet-5: one step against NumPy; memory flat over training
# ---------------------------------------------------------------------------
LENET = [((6, 1, 5, 5), 2), ((16, 6, 5, 5), 0)]
FC = [(120, 400), (84, 120), (10, 84)]


def _lenet_params(seed=0):
    rng = np.random.default_rng(seed)
    ps = []
    for shape, _ in LENET:
        fan = np.prod(shape[1:])
        ps += [rng.uniform(-1, 1, shape) / np.sqrt(fan), rng.uniform(-1, 1, shape[0]) / np.sqrt(fan)]
    for shape in FC:
        ps += [rng.uniform(-1, 1, shape) / np.sqrt(shape[1]), rng.uniform(-1, 1, shape[0]) / np.sqrt(shape[1])]
    return [p.astype(np.float32) for p in ps]


def _lenet_loss(params, x, t):
    F = gradflow.nn.functional
    h = x
    for i, (_, pad) in enumerate(LENET):
        h = F.max_pool2d(F.conv2d(h, params[2 * i], params[2 * i + 1], padding=pad).relu(), 2)
    h = h.flatten(1)
    for j in range(3):
        h = F.linear(h, params[4 + 2 * j], params[5 + 2 * j])
        if j < 2:
            h = h.relu()
    return F.cross_entropy(h, t)


@requires_cuda
def test_lenet5_step_gradients_match_numpy():
    rng = np.random.default_rng(13)
    x = rng.random((64, 1, 28, 28)).astype(np.float32)
    t = rng.integers(0, 10, 64)
    init = _lenet_params()
    out = {}
    for name in ("numpy", "cupy"):
        ps = [gradflow.tensor(p, requires_grad=True, backend=name) for p in init]
        loss = _lenet_loss(ps, gradflow.tensor(x, backend=name), gradflow.tensor(t, backend=name))
        loss.backward()
        out[name] = (loss.item(), [p.grad.numpy() for p in ps])
    np.testing.assert_allclose(out["cupy"][0], out["numpy"][0], rtol=1e-5)
    for gc, gn in zip(out["cupy"][1], out["numpy"][1]):
        np.testing.assert_allclose(gc, gn, rtol=1e-4, atol=1e-6 * max(1.0, np.abs(gn).max()))


@requires_cuda
def test_memory_flat_over_50_training_steps():
    cu = B.get_backend("cupy")
    rng = np.random.default_rng(14)
    ps = [gradflow.tensor(p, requires_grad=True, backend="cupy") for p in _lenet_params()]
    bufs = [cu.zeros(p.shape, p.dtype) for p in ps]
    x = gradflow.tensor(rng.random((32, 1, 28, 28)).astype(np.float32), backend="cupy")
    t = gradflow.tensor(rng.integers(0, 10, 32), backend="cupy")
    used = []
    for step in range(50):
        for p in ps:
            p.grad = None
        loss = _lenet_loss(ps, x, t)
        loss.backward()
        for p, b in zip(ps, bufs):
            cu.sgd_step_(p.array, p.grad.array, b, 0.05, 0.9, 0.0, 0.0, False, step == 0)
        del loss
        cu.synchronize()
        used.append(cu.memory_info()["used_bytes"])
    steady = used[5:]
    assert max(steady) - min(steady) <= 64 * 1024, f"pool bytes in use drift: {steady}"
    assert np.isfinite(_lenet_loss(ps, x, t).item())


# ---------------------------------------------------------------------------
# modules, optimizers and checkpoints (need the training stack)
# ---------------------------------------------------------------------------
def _have_stack():
    nn = gradflow.nn
    return all(hasattr(nn, a) for a in ("Sequential", "Conv2d", "Linear", "Module")) and \
        hasattr(gradflow.optim, "SGD")


def _lenet_module():
    nn = gradflow.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


@requires_cuda
def test_module_to_cuda_train_and_save_load_across_devices(tmp_path):
    if not _have_stack():
        pytest.skip("gradflow.nn / gradflow.optim not landed yet")
    gradflow.manual_seed(0)
    cpu = _lenet_module()
    gpu = _lenet_module()
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    assert all(p.backend.name == "cupy" for p in gpu.parameters())
    rng = np.random.default_rng(15)
    xb = rng.random((16, 1, 28, 28)).astype(np.float32)
    tb = rng.integers(0, 10, 16)
    for m, name in ((cpu, "numpy"), (gpu, "cupy")):
        opt = gradflow.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            loss = gradflow.nn.functional.cross_entropy(
                m(gradflow.tensor(xb, backend=name)), gradflow.tensor(tb, backend=name))
            loss.backward()
            opt.step()
    for (k, a), (k2, b) in zip(cpu.state_dict().items(), gpu.state_dict().items()):
        assert k == k2
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
    path = tmp_path / "gpu_lenet.gf"
    gradflow.save(gpu.state_dict(), path)
    loaded = gradflow.load(path)
    back = _lenet_module()
    back.load_state_dict(loaded)                      # a GPU checkpoint loads on the CPU
    assert all(p.backend.device_type == "cpu" for p in back.parameters())
    xt = gradflow.tensor(xb)
    np.testing.assert_allclose(back(xt).numpy(), gpu(xt.to("cuda")).numpy(), rtol=1e-4, atol=1e-5)
    cpu_path = tmp_path / "cpu.gf"
    gradflow.save(back.state_dict(), cpu_path)        # and a CPU one on the GPU
    again = _lenet_module().to("cuda")
    again.load_state_dict(gradflow.load(cpu_path))
    assert all(p.backend.name == "cupy" for p in again.parameters())
    np.testing.assert_allclose(again(xt.to("cuda")).numpy(), back(xt).numpy(), rtol=1e-4, atol=1e-5)
