"""The numba backend's buffer pool (gradflow/backends/buffer_pool.py): bounded, least
recently used idle buffers dropped first, idle trimming, empty_cache, and never a
buffer that is still referenced. The pool is plain NumPy, so most of this runs
without numba."""
from __future__ import annotations

import numpy as np
import pytest

from gradflow.backends import empty_cache, get_backend, unavailable_reason
from gradflow.backends.buffer_pool import BufferPool

KB = 1024


def small_pool(**kw):
    kw.setdefault("min_bytes", KB)
    kw.setdefault("max_bytes", 64 * KB)
    kw.setdefault("idle_s", 1e9)
    return BufferPool(**kw)


def test_varying_sizes_stay_within_the_bound():
    pool = small_pool()
    for i in range(200):                       # 200 sizes, as batch sizes varying 1..64 give
        a = pool.empty((i % 50 + 1, 1000), np.float32)
        a[...] = 1
        assert pool.info()["pool_bytes"] <= pool.max_bytes
        del a
    info = pool.info()
    assert info["pool_bytes"] <= 64 * KB and info["pool_trimmed_bytes"] > 0
    assert info["pool_hits"] + info["pool_misses"] == 200


def test_least_recently_used_idle_buffer_is_dropped_first():
    pool = small_pool(max_bytes=40 * KB)
    for n in (1, 2, 3):                      # three 12 KB buffers, used in this order
        pool.empty(3 * KB + n, np.float32)
    pool.empty(3 * KB + 1, np.float32)          # 1 is now the most recent, 2 the oldest
    pool.empty(3 * KB + 4, np.float32)          # a fourth does not fit: 2 goes
    held = {k[1] for k in pool._bufs}
    assert held == {3 * KB + 1, 3 * KB + 3, 3 * KB + 4}
    assert pool.hits == 1


def test_a_referenced_buffer_is_never_handed_out_or_dropped():
    pool = small_pool(max_bytes=16 * KB)
    a = pool.empty((2, 1024), np.float32)       # 8 KB, in use
    a[...] = 7
    view = a[1]                                  # a view keeps the buffer referenced too
    del a
    b = pool.empty((2, 1024), np.float32)
    assert not np.shares_memory(b, view)
    del b
    for i in range(20):                          # pressure: only idle buffers may go
        pool.empty(2 * KB + i, np.float32)
    assert (view == 7).all()
    assert pool.info()["pool_in_use_bytes"] == 8 * KB
    base_id = id(view.base)                      # the pool keeps the buffer: the id is stable
    del view
    assert id(pool.empty((2048,), np.float32).base) == base_id   # freed: recycled


def test_idle_buffers_are_dropped_at_the_next_miss():
    pool = small_pool(idle_s=0.0)
    pool.empty(4 * KB, np.float32)
    assert pool.info()["pool_bytes"] == 16 * KB
    pool.empty(5 * KB, np.float32)               # a miss: the idle 16 KB buffer goes
    assert pool.info()["pool_bytes"] == 20 * KB
    assert pool.info()["pool_trimmed_bytes"] == 16 * KB


def test_empty_cache_drops_idle_keeps_in_use():
    pool = small_pool()
    keep = pool.empty(4 * KB, np.float64)
    keep[...] = 3
    pool.empty(2 * KB, np.float64)
    assert pool.empty_cache() == 16 * KB
    info = pool.info()
    assert info["pool_idle_bytes"] == 0 and info["pool_in_use_bytes"] == keep.nbytes
    assert (keep == 3).all()


def test_small_arrays_bypass_the_pool():
    pool = small_pool()
    a = pool.empty((10,), np.float32)
    assert a.shape == (10,) and pool.info()["pool_buffers"] == 0


numba_only = pytest.mark.skipif(unavailable_reason("numba") is not None,
                                reason=f"numba backend unavailable: {unavailable_reason('numba')}")


@numba_only
def test_numba_backend_reports_and_empties_its_pool(monkeypatch):
    nb = get_backend("numba")
    monkeypatch.setattr(nb.pool, "max_bytes", 4 << 20)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    for n in (1, 64, 7, 33, 64, 2, 50, 17, 64, 9):        # varying batch sizes
        x = rng.standard_normal((n, 6, 14, 14)).astype(np.float32)
        y = nb.conv2d_forward(x, w, None, (1, 1), (0, 0), (1, 1), 1)
        nb.conv2d_backward(x, w, np.ones_like(y), (1, 1), (0, 0), (1, 1), 1)
        assert nb.memory_info()["pool_bytes"] <= 4 << 20
    info = nb.memory_info()
    assert {"pool_bytes", "pool_idle_bytes", "pool_in_use_bytes", "pool_max_bytes",
            "pool_hits", "pool_misses", "pool_trimmed_bytes"} <= set(info)
    held = y.nbytes if y.nbytes >= nb.pool.min_bytes else 0
    empty_cache()
    assert nb.memory_info()["pool_idle_bytes"] == 0
    assert nb.memory_info()["pool_in_use_bytes"] <= held
