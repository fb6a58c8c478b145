"""Numba backend specifics: kernel-vs-NumPy parity on odd shapes, NaN propagation,
lazy import, the compile cache, threads. (The shared backend-parametrised suite
covers every op on numba too; this file targets the JIT kernels directly.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import gradflow
import gradflow.nn.functional as F
from gradflow.backends import get_backend, unavailable_reason

from conftest import tols

pytestmark = pytest.mark.skipif(unavailable_reason("numba") is not None,
                                reason=f"numba backend unavailable: {unavailable_reason('numba')}")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOATS = [np.float32, np.float64]


@pytest.fixture(scope="module")
def nb():
    return get_backend("numba")


@pytest.fixture(scope="module")
def ref():
    return get_backend("numpy")


def close(a, b, dtype):
    np.testing.assert_allclose(a, b, equal_nan=True, **tols(dtype))


def rnd(rng, shape, dtype, noncontig=False):
    if noncontig:  # same values, transposed storage
        a = rng.standard_normal(shape[::-1]).astype(dtype)
        return a.transpose(tuple(range(len(shape)))[::-1])
    return rng.standard_normal(shape).astype(dtype)


def _subprocess(code, env_extra=None, env_drop=()):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    env.update(env_extra or {})
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------
CONV_CASES = [
    # N, C, H, W, K, kh, kw, stride, padding, dilation, groups
    (2, 3, 9, 8, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1),
    (3, 4, 11, 10, 6, 3, 2, (2, 1), (1, 0), (1, 2), 2),
    (2, 1, 28, 28, 6, 5, 5, (1, 1), (2, 2), (1, 1), 1),        # LeNet conv1
    (3, 6, 14, 14, 16, 5, 5, (1, 1), (0, 0), (1, 1), 1),        # LeNet conv2
    (2, 32, 12, 12, 64, 3, 3, (1, 1), (1, 1), (1, 1), 1),       # 32->64 channels: BLAS GEMM paths
    (2, 4, 5, 5, 4, 1, 1, (1, 1), (0, 0), (1, 1), 1),           # 1x1 fast path
    (2, 4, 7, 7, 8, 3, 3, (3, 2), (0, 1), (1, 1), 4),           # groups, uneven stride
    (1, 2, 6, 9, 3, 2, 4, (2, 3), (1, 2), (2, 1), 1),           # padding > needed, dilation
    (2, 2, 4, 4, 2, 5, 5, (1, 1), (2, 2), (1, 1), 2),           # kernel larger than input
    (1, 1, 3, 3, 2, 5, 5, (1, 1), (2, 2), (1, 1), 1),           # the same, direct kernels
    (3, 2, 6, 7, 3, 3, 2, (1, 1), (2, 0), (1, 1), 1),           # direct, uneven padding
]


@pytest.mark.parametrize("dtype", FLOATS, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:7])))
@pytest.mark.parametrize("mode", ["pool", "kernels"])
def test_conv_kernels_match_numpy(nb, ref, case, mode, dtype, monkeypatch):
    n, c, h, w, k, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(1)
    x = rnd(rng, (n, c, h, w), dtype, noncontig=True)
    wt = rnd(rng, (k, c // g, kh, kw), dtype)
    b = rnd(rng, (k,), dtype)
    if mode == "pool":
        # several chunks (incl. a short last one) spread over the thread pool, each
        # chunk's kernels on its own thread; both weight-gradient paths
        monkeypatch.setattr(nb, "parallel_conv_bytes", 0)
        monkeypatch.setattr(nb, "chunk_bytes", 4096)
        monkeypatch.setattr(nb, "small_dw_max", 1 << 20)
    else:
        # one chunk on the calling thread, every kernel numba-parallel, no direct kernels
        monkeypatch.setattr(nb, "direct_max", 0)
        monkeypatch.setattr(nb, "parallel_conv_bytes", 1 << 40)
        monkeypatch.setattr(nb, "parallel_min_bytes", 0)
        monkeypatch.setattr(nb, "small_dw_max", 0)
    y = nb.conv2d_forward(x, wt, b, s, p, d, g)
    close(y, ref.conv2d_forward(x, wt, b, s, p, d, g), dtype)
    gy = rnd(rng, y.shape, dtype, noncontig=True)
    want = ref.conv2d_backward(x, wt, gy, s, p, d, g)
    for got, exp in zip(nb.conv2d_backward(x, wt, gy, s, p, d, g), want):
        close(got, exp, dtype)
    y2, saved = nb.conv2d_forward_saved(x, wt, b, s, p, d, g)
    close(y2, y, dtype)
    if not (kh == kw == 1) and not nb._direct_ok(wt.shape, s, d, g):
        assert saved is not None and saved[0] == "kmajor-cols"
    for got, exp in zip(nb.conv2d_backward(x, wt, gy, s, p, d, g, saved=saved), want):
        close(got, exp, dtype)
    dx, dw, db = nb.conv2d_backward(x, wt, gy, s, p, d, g, need_dx=False, need_db=False)
    assert dx is None and db is None and dw.shape == wt.shape


def test_conv_autograd_matches_numpy(dtype):
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((3, 4, 9, 9)).astype(dtype)
    ws = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    bs = rng.standard_normal(6).astype(dtype)
    out = {}
    for name in ("numpy", "numba"):
        with gradflow.backend(name):
            x = gradflow.tensor(xs, requires_grad=True)
            w = gradflow.tensor(ws, requires_grad=True)
            b = gradflow.tensor(bs, requires_grad=True)
            y = F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
            (F.relu(y) * y).sum().backward()
            out[name] = [y.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
    for a, b_ in zip(out["numba"], out["numpy"]):
        close(a, b_, dtype)


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------
POOL_CASES = [
    # shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 3, 9, 7), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 2, 10, 9), (3, 2), (1, 2), (1, 1), (2, 1), False),
    ((2, 2, 7, 7), (2, 2), (2, 2), (0, 0), (1, 1), True),     # ceil_mode overhang
    ((2, 2, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1), False),    # odd sizes, 2x2 fast path
    ((1, 1, 5, 6), (3, 3), (1, 1), (1, 1), (1, 1), False),    # overlapping windows
]


@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: str(c[0]) + str(c[1]) + str(c[5]))
@pytest.mark.parametrize("parallel", [True, False])
def test_max_pool_kernels_match_numpy(nb, ref, case, dtype, parallel, monkeypatch):
    monkeypatch.setattr(nb, "parallel_min_bytes", 0 if parallel else 1 << 40)
    shape, k, s, p, d, cm = case
    rng = np.random.default_rng(3)
    x = rnd(rng, shape, dtype, noncontig=True)
    x[0, 0, 1, 1] = np.nan
    y, idx = nb.max_pool2d_forward(x, k, s, p, d, cm)
    y0, idx0 = ref.max_pool2d_forward(x, k, s, p, d, cm)
    close(y, y0, dtype)
    np.testing.assert_array_equal(idx.astype(np.int64), idx0.astype(np.int64))
    gy = rnd(rng, y.shape, dtype, noncontig=True)
    close(nb.max_pool2d_backward(gy, idx, shape, k, s, p, d, cm),
          ref.max_pool2d_backward(gy, idx0, shape, k, s, p, d, cm), dtype)


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] == (1, 1)],
                         ids=lambda c: str(c[0]) + str(c[1]) + str(c[5]))
@pytest.mark.parametrize("include_pad", [True, False])
def test_avg_pool_kernels_match_numpy(nb, ref, case, include_pad, dtype, monkeypatch):
    monkeypatch.setattr(nb, "parallel_min_bytes", 0)
    shape, k, s, p, _, cm = case
    rng = np.random.default_rng(4)
    x = rnd(rng, shape, dtype, noncontig=True)
    y = nb.avg_pool2d_forward(x, k, s, p, cm, include_pad)
    close(y, ref.avg_pool2d_forward(x, k, s, p, cm, include_pad), dtype)
    gy = rnd(rng, y.shape, dtype)
    close(nb.avg_pool2d_backward(gy, shape, k, s, p, cm, include_pad),
          ref.avg_pool2d_backward(gy, shape, k, s, p, cm, include_pad), dtype)


def test_max_pool_return_indices_matches_numpy():
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    res = {}
    for name in ("numpy", "numba"):
        with gradflow.backend(name):
            y, i = F.max_pool2d(gradflow.tensor(xs), 3, 2, padding=1, ceil_mode=True,
                                return_indices=True)
            res[name] = (y.numpy(), i.numpy())
    np.testing.assert_array_equal(res["numba"][0], res["numpy"][0])
    np.testing.assert_array_equal(res["numba"][1], res["numpy"][1])
    assert res["numba"][1].dtype == np.int64


# ---------------------------------------------------------------------------
# softmax cross-entropy, relu, optimizer updates
# ---------------------------------------------------------------------------
def test_softmax_cross_entropy_kernels(nb, ref, dtype):
    rng = np.random.default_rng(6)
    logits = rnd(rng, (7, 5), dtype, noncontig=True)
    t = rng.integers(0, 5, 7).astype(np.int32)
    l1, p1 = nb.softmax_cross_entropy_forward(logits, t)
    l0, p0 = ref.softmax_cross_entropy_forward(logits, t)
    close(l1, l0, dtype)
    close(p1, p0, dtype)
    gl = np.broadcast_to(np.asarray(0.25, dtype), (7,))      # what 'mean' passes
    close(nb.softmax_cross_entropy_backward(p1, t, gl),
          ref.softmax_cross_entropy_backward(p0.copy(), t, gl), dtype)


def test_relu_kernels(nb, ref, dtype):
    rng = np.random.default_rng(7)
    a = rnd(rng, (40, 30, 20), dtype, noncontig=True)           # above the numpy-fallback size
    gy = rnd(rng, (40, 30, 20), dtype)
    close(nb.unary("relu", a), ref.unary("relu", a), dtype)
    close(nb.relu_backward(gy, a), ref.relu_backward(gy, a), dtype)


@pytest.mark.parametrize("momentum,dampening,wd,nesterov", [
    (0.9, 0.0, 0.0, False), (0.9, 0.1, 0.01, True), (0.0, 0.0, 0.1, False)])
def test_sgd_kernel(nb, ref, dtype, momentum, dampening, wd, nesterov):
    rng = np.random.default_rng(8)
    p, g, buf = (rng.standard_normal((5, 7)).astype(dtype) for _ in range(3))
    p0, buf0 = p.copy(), buf.copy()
    for first in (True, False):
        nb.sgd_step_(p, g, buf, 0.1, momentum, dampening, wd, nesterov, first)
        ref.sgd_step_(p0, g, buf0, 0.1, momentum, dampening, wd, nesterov, first)
        close(p, p0, dtype)
        close(buf, buf0, dtype)


@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_kernel(nb, ref, dtype, wd, decoupled):
    rng = np.random.default_rng(9)
    p, g, m = (rng.standard_normal(33).astype(dtype) for _ in range(3))
    v = rng.random(33).astype(dtype)
    q = [p.copy(), g, m.copy(), v.copy()]
    for step in (1, 2, 3):
        nb.adam_step_(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, wd, step, decoupled)
        ref.adam_step_(*q, 1e-2, 0.9, 0.999, 1e-8, wd, step, decoupled)
    for a, b in zip((p, m, v), (q[0], q[2], q[3])):
        close(a, b, dtype)


def test_unsupported_dtypes_fall_back(nb, ref):
    x = np.arange(2 * 2 * 6 * 6, dtype=np.float16).reshape(2, 2, 6, 6)
    y, i = nb.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    y0, _ = ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y, y0)
    w = np.ones((3, 2, 3, 3), np.float16)
    np.testing.assert_array_equal(nb.conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1),
                                  ref.conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1))


# ---------------------------------------------------------------------------
# NaN / Inf semantics (fastmath must not assume finite values)
# ---------------------------------------------------------------------------
def test_nan_propagates(nb):
    x = np.ones((2, 3, 8, 8), np.float32)
    x[1, 2, 3, 4] = np.nan
    w = np.ones((4, 3, 3, 3), np.float32)
    y = nb.conv2d_forward(x, w, np.zeros(4, np.float32), (1, 1), (1, 1), (1, 1), 1)
    assert np.isnan(y[1]).any() and not np.isnan(y[0]).any()
    dx, dw, db = nb.conv2d_backward(x, w, np.ones_like(y), (1, 1), (1, 1), (1, 1), 1)
    assert np.isnan(dw[:, 2]).all() and not np.isnan(dw[:, :2]).any()
    assert not np.isnan(dx).any()
    p, idx = nb.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    assert np.isnan(p[1, 2, 1, 2]) and np.isnan(p).sum() == 1
    assert np.isnan(nb.avg_pool2d_forward(x, (2, 2), (2, 2), (0, 0))[1, 2, 1, 2])
    # an inf at a plane's first element poisons only the windows/taps that touch it
    xi = np.ones((2, 1, 8, 8), np.float32)
    xi[0, 0, 0, 0] = np.inf
    a = nb.avg_pool2d_forward(xi, (2, 2), (2, 2), (0, 0))
    assert np.isinf(a[0, 0, 0, 0]) and np.isfinite(a).sum() == a.size - 1
    w1 = np.ones((6, 1, 5, 5), np.float32)
    x1 = np.ones((2, 1, 8, 8), np.float32)
    gy1 = np.ones((2, 6, 8, 8), np.float32)
    gy1[0, 0, 0, 0] = np.inf                   # the first element the dW kernels read
    with np.errstate(invalid="ignore"):        # inf * 0 (padding) is NaN, as intended
        _, want, _ = get_backend("numpy").conv2d_backward(x1, w1, gy1, (1, 1), (2, 2), (1, 1), 1,
                                                           need_dx=False, need_db=False)
    assert not np.isfinite(want[0]).any() and np.isfinite(want[1:]).all()
    for direct in (0, 1 << 20):                # both tiny-weight gradient kernels
        nb.direct_max = direct
        try:
            _, dw1, _ = nb.conv2d_backward(x1, w1, gy1, (1, 1), (2, 2), (1, 1), 1,
                                           need_dx=False, need_db=False)
            np.testing.assert_array_equal(np.isfinite(dw1), np.isfinite(want))
        finally:
            del nb.direct_max
    big = np.full(1 << 15, np.nan, np.float32)
    assert np.isnan(nb.unary("relu", big)).all()
    assert np.isnan(nb.relu_backward(big, np.ones_like(big))).all()
    inf = np.full(1 << 15, np.inf, np.float32)
    assert np.isnan(nb.relu_backward(inf, -np.ones_like(inf))).all()   # inf * 0, as NumPy
    logits = np.zeros((3, 4), np.float32)
    logits[1, 2] = np.nan
    loss, _ = nb.softmax_cross_entropy_forward(logits, np.array([0, 1, 2]))
    assert np.isnan(loss[1]) and np.isfinite(loss[[0, 2]]).all()
    p = np.ones(8, np.float32)
    g = np.zeros(8, np.float32)
    g[3] = np.nan
    nb.sgd_step_(p, g, np.zeros(8, np.float32), 0.1, 0.9, 0.0, 0.0, False, True)
    assert np.isnan(p[3]) and np.isfinite(np.delete(p, 3)).all()


# ---------------------------------------------------------------------------
# threads, info, lazy import, cache
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("parallel", ["kernels", "pool", "serial"])
def test_two_threads_do_not_crash(nb, parallel, monkeypatch):
    monkeypatch.setattr(nb, "parallel_min_bytes", 0 if parallel == "kernels" else 1 << 40)
    monkeypatch.setattr(nb, "parallel_conv_bytes", 0 if parallel == "pool" else 1 << 40)
    monkeypatch.setattr(nb, "chunk_bytes", 1 << 14)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((8, 4, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)

    def work():
        y = nb.conv2d_forward(x, w, None, (1, 1), (1, 1), (1, 1), 1)
        p, i = nb.max_pool2d_forward(y, (2, 2), (2, 2), (0, 0))
        dy = nb.max_pool2d_backward(np.ones_like(p), i, y.shape, (2, 2), (2, 2), (0, 0))
        return nb.unary("relu", y), nb.conv2d_backward(x, w, dy, (1, 1), (1, 1), (1, 1), 1)

    expected = work()
    errors, results = [], []

    def loop():
        try:
            for _ in range(20):
                results.append(work())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 40
    for r in results:
        np.testing.assert_array_equal(r[0], expected[0])
        for a, b in zip(r[1], expected[1]):
            np.testing.assert_array_equal(a, b)


def test_pmap_finishes_every_item_then_raises_the_first_error(nb):
    done = []
    lock = threading.Lock()

    def fn(i):
        if i in (1, 4):
            raise ValueError(f"item {i}")
        with lock:
            done.append(i)
        return i * i

    assert nb._pmap(lambda i: i * i, list(range(7))) == [i * i for i in range(7)]
    with pytest.raises(ValueError, match="item"):
        nb._pmap(fn, list(range(7)))
    assert sorted(done) == [0, 2, 3, 5, 6]       # nothing abandoned half-way


def test_pmap_nested_in_a_worker_and_after_fork_does_not_hang(nb):
    out = []

    def call():
        out.append(nb._pmap(lambda i: sum(nb._pmap(lambda j: i * j, [1, 2, 3])), [1, 2, 3, 4]))

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "nested _pmap deadlocked"
    assert out == [[6, 12, 18, 24]]
    old = nb._executor
    nb._executor_pid = -1                        # as a forked child sees it
    assert nb._pmap(lambda i: i + 1, [1, 2]) == [2, 3]
    assert nb._executor is not old and nb._executor_pid == os.getpid()


def test_blas_pinned_and_threaded_gemm_matches_numpy(nb, monkeypatch):
    from gradflow.utils.threads import get_blas_threads
    if get_blas_threads() is None:
        pytest.skip("BLAS thread count not controllable here (not OpenBLAS)")
    assert nb.info()["blas_threads"] == 1
    rng = np.random.default_rng(3)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 160)).astype(np.float32)
    monkeypatch.setattr(nb, "threads", 2)
    monkeypatch.setattr(nb, "blas_parallel_macs", 1)
    monkeypatch.setattr(nb, "_parallel_at", 0.0)   # nothing parallel ran recently
    close(nb.matmul(a, b), a.astype(np.float64) @ b, np.float32)
    assert get_blas_threads() == 1                 # restored after the threaded call


def test_info_says_when_numba_threads_were_started_before_the_backend():
    code = ("import json, numba\n"
            "{pre}"
            "from gradflow.backends import get_backend\n"
            "print(json.dumps(get_backend('numba').info()['omp_wait_policy']))\n")
    late = _subprocess(code.format(pre="numba.get_num_threads()\n"), env_drop=("OMP_WAIT_POLICY",))
    normal = _subprocess(code.format(pre=""), env_drop=("OMP_WAIT_POLICY",))
    assert "started before" in late
    assert normal.startswith("PASSIVE")


def test_info_reports_threading_and_cache(nb):
    info = nb.info()
    assert info["threading_layer"] in ("omp", "tbb", "workqueue")
    assert info["parallel_calls_serialized"] == (info["threading_layer"] == "workqueue")
    assert info["threads"] >= 1
    assert "blas_threads" in info
    assert os.path.isdir(info["cache_dir"])
    assert "nnan" not in info["fastmath"] and "ninf" not in info["fastmath"]
    pkg = os.path.dirname(gradflow.__file__)
    if not os.environ.get("NUMBA_CACHE_DIR"):
        assert not os.path.abspath(info["cache_dir"]).startswith(pkg)


def test_import_gradflow_does_not_import_numba():
    res = _subprocess(
        "import sys, json, gradflow\n"
        "from gradflow.backends import unavailable_reason, available_backends\n"
        "r = unavailable_reason('numba'); a = available_backends()\n"
        "print(json.dumps({'numba': 'numba' in sys.modules, 'reason': r, 'avail': a}))")
    assert res["numba"] is False
    assert res["reason"] is None and "numba" in res["avail"]


_CACHE_PROBE = """
import json, numpy as np
from gradflow.backends import get_backend
be = get_backend('numba')
be.softmax_cross_entropy_forward(np.zeros((2, 3), np.float32), np.array([0, 1]))
st = be.compile_stats()
print(json.dumps({'dir': be.info()['cache_dir'], 'hits': st['loaded'], 'misses': st['compiled']}))
"""


def test_cache_dir_defaults_to_user_cache_and_second_process_loads(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = _subprocess(_CACHE_PROBE, env, env_drop=("NUMBA_CACHE_DIR",))
    assert first["dir"] == os.path.join(str(tmp_path), "gradflow", "numba")
    assert any(f.endswith(".nbi") for _, _, fs in os.walk(first["dir"]) for f in fs)
    second = _subprocess(_CACHE_PROBE, env, env_drop=("NUMBA_CACHE_DIR",))
    assert second["misses"] == 0 and second["hits"] >= 1      # no compile in the second process


def test_user_numba_cache_dir_is_respected(tmp_path):
    d = str(tmp_path / "mine")
    res = _subprocess(_CACHE_PROBE, {"NUMBA_CACHE_DIR": d})
    assert res["dir"] == d and os.listdir(d)


def test_nothing_is_written_into_the_package(tmp_path):
    """The installed package may be read-only: compiled kernels go to the user cache,
    never next to the sources (numba's default would be gradflow/backends/__pycache__)."""
    import shutil
    pkg_copy = tmp_path / "site"
    shutil.copytree(os.path.dirname(gradflow.__file__), pkg_copy / "gradflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(pkg_copy),
           "PYTHONDONTWRITEBYTECODE": "1"}
    code = "import sys; sys.path.insert(0, %r)\n" % str(pkg_copy) + _CACHE_PROBE
    res = _subprocess(code, env, env_drop=("NUMBA_CACHE_DIR",))
    assert res["dir"].startswith(str(tmp_path / "cache"))
    written = [os.path.join(d, f) for d, _, fs in os.walk(pkg_copy) for f in fs
               if f.endswith((".nbi", ".nbc"))]
    assert written == []


def test_buffer_pool_never_hands_out_live_arrays(nb):
    rng = np.random.default_rng(11)
    x1, x2 = (rng.standard_normal((4, 8, 32, 32)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    args = ((1, 1), (1, 1), (1, 1), 1)
    y1 = nb.conv2d_forward(x1, w, None, *args)
    keep = y1.copy()
    view = y1[:, :2]                       # a view keeps the buffer alive too
    del y1
    y2 = nb.conv2d_forward(x2, w, None, *args)
    np.testing.assert_array_equal(view, keep[:, :2])
    assert not np.shares_memory(view, y2)
    base_id = id(y2.base)                  # the pool keeps the buffer, so the id is stable
    del y2
    y3 = nb.conv2d_forward(x2, w, None, *args)
    assert id(y3.base) == base_id          # a dead result's buffer is recycled


@pytest.mark.parametrize("dtype", FLOATS, ids=["float32", "float64"])
def test_index_add_axis_matches_numpy(nb, ref, dtype):
    """The scatter-add behind pad/interpolate gradients: every axis, repeated and
    missing targets, a strided input."""
    rng = np.random.default_rng(12)
    for shape, axis, size in [((4, 5, 6, 7), 3, 9), ((4, 5, 6, 7), 2, 3), ((4, 5, 6, 7), 0, 6),
                              ((8,), 0, 3), ((3, 10), 1, 1)]:
        g = rnd(rng, shape, dtype, noncontig=True)
        idx = rng.integers(0, size, shape[axis])
        close(nb.index_add_axis(g, idx, axis, size), ref.index_add_axis(g, idx, axis, size), dtype)
