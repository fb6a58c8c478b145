"""The Numba backend: the NumPy backend's arrays with JIT-compiled hot kernels.

``NumbaBackend`` subclasses :class:`NumpyBackend` (same ``numpy.ndarray``
storage, so tensors move between the two for free) and overrides the kernels
that dominate a CNN training step with ``@njit`` code from
:mod:`gradflow.backends.numba_kernels`: im2col/col2im feeding BLAS GEMM
(``numpy.matmul``) for conv2d forward/backward, max/avg pooling with a fused
argmax, fused softmax-cross-entropy, ReLU and its backward, and one-pass
SGD-momentum/Adam updates. GEMM stays with BLAS.

numba is imported only when this backend is instantiated (``import gradflow``
and ``unavailable_reason()`` never import it). Kernels run for float32 and
float64 C-contiguous arrays; anything else (float16, integer inputs) falls back
to the NumPy implementation, so every op of the API works here.

Compilation and threading: see :mod:`gradflow.backends.numba_runtime`. A kernel
compiles (or loads from the disk cache) on its first call, per float type; its
parallel loops run on the ``omp``/``tbb`` layer where available (safe to call from several
Python threads; GNU OpenMP is not fork-safe: fork worker processes before the
first parallel kernel runs, or use spawn), otherwise parallel kernels are
serialised by a lock. ``info()``
reports the layer, the thread count, the OpenMP wait policy and the
compile-cache folder.

Who owns the cores. On a 2-core machine two thread pools fight: OpenBLAS's worker
threads keep spinning after each GEMM and starve the kernels that follow (a
LeNet-5 step ran 2-3x slower with its kernels parallel next to threaded BLAS).
So selecting this backend pins BLAS to one thread (``pin_blas``), and the
parallelism comes from this backend: a convolution is split over the batch into
chunks (``_conv_chunks``) that run on a small thread pool (``_pmap``; the
caller plus ``threads - 1`` workers), each chunk doing its own im2col, GEMM and
scatter on its thread, with the chunk's columns small enough (``chunk_bytes``)
to stay in cache between im2col and GEMM. Standalone kernels (pooling, ReLU)
use numba's own parallel loops only above ``parallel_min_bytes``: a parallel
region's fork/join costs tens of microseconds here. Large 2-D GEMMs (an MLP's)
get the BLAS threads back for the call when nothing parallel ran in the last
``blas_quiet_s`` (see ``matmul``). Results are reproducible run to run for a
given thread count; the chunk split (and so the rounding of weight-gradient
sums) depends on it.

Convolution: im2col (numba, padding handled in-kernel) into a buffer laid
out (C*kh*kw, m*OH*OW) for a chunk of m samples, one GEMM per chunk, then a
transposing copy to NCHW that also adds the bias; backward transposes the
output gradient (summing the bias gradient on the way), one GEMM each for dW
and the column gradient, then col2im -- per chunk, the chunks' dW and bias
parts summed in chunk order. When the whole batch's columns fit
``save_cols_bytes`` the forward keeps them (``conv2d_forward_saved``) and the
weight gradient reuses them. Tiny weights (LeNet's conv1) use numba kernels
instead of BLAS for the forward GEMM and the weight gradient. Large temporaries
and results come from a buffer pool (``_empty``, :mod:`.buffer_pool`) so repeated
steps do not page-fault fresh mmap'd memory; it holds at most ``pool_max_bytes``
(64 MB), drops buffers idle for ``pool_idle_s`` and empties on ``empty_cache()``.
"""
from __future__ import annotations

import importlib.util
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy

from ..geometry import conv_out_size
from .buffer_pool import BufferPool
from .numpy_backend import NumpyBackend, check_class_indices
from .threads import fast_blas_setter, get_blas_threads, set_blas_threads

_WORKER = threading.local()   # .active: this thread is running a _pmap item

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def _c(a):
    """``a`` as a C-contiguous, writeable-typed array (the kernels' signatures take
    mutable C arrays; read-only inputs such as broadcast views are copied)."""
    f = a.flags
    return a if (f.c_contiguous and f.writeable) else numpy.array(a, order="C")


class NumbaBackend(NumpyBackend):
    name = "numba"

    #: pin BLAS to one thread per caller: the pool below supplies the parallelism
    pin_blas = True
    #: target size of one im2col chunk in bytes (few chunks: each is a GEMM + kernel handoff)
    chunk_bytes = 1 << 20
    #: elementwise kernels (relu, relu backward) below this many elements use NumPy
    min_kernel_size = 1 << 14
    #: kernels touching fewer bytes than this run on the calling thread only
    parallel_min_bytes = 1 << 22

    @classmethod
    def unavailable_reason(cls):
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install numba)"
        return None

    def __init__(self):
        super().__init__()
        from . import numba_kernels, numba_runtime
        self.K = numba_kernels
        self.R = numba_runtime
        #: where compiled kernels are cached (see numba_runtime)
        self.cache_dir = numba_runtime.CACHE_DIR
        #: large temporaries and results (see buffer_pool for the policy and its bound)
        self.pool = BufferPool(self.pool_min_bytes, self.pool_max_bytes, self.pool_idle_s)
        self.threads = max(1, int(numba_runtime.num_threads()))
        self._executor = None
        self._executor_pid = None
        self._blas_setter = None
        self._parallel_at = 0.0      # perf_counter() of the last pool / parallel kernel use
        if self.pin_blas:
            set_blas_threads(1)
            self._blas_setter = fast_blas_setter()

    def info(self):
        import numba
        K = self.R
        return {
            "name": self.name,
            "numpy": numpy.__version__,
            "numba": numba.__version__,
            "threading_layer": K.threading_layer(),
            "threads": K.num_threads(),
            "parallel_calls_serialized": K.serialized(),
            "omp_wait_policy": K.OMP_WAIT_POLICY,
            "parallel_min_bytes": self.parallel_min_bytes,
            "blas_threads": get_blas_threads(),
            "cache_dir": K.CACHE_DIR,
            "fastmath": ",".join(sorted(K.FASTMATH)),
            "kernels_compiled": K.compile_stats()["compiled"],
        }

    # -- compilation ----------------------------------------------------------------
    def compile_all(self, dtypes=("float32", "float64")):
        """Compile (or load from the disk cache) every kernel for ``dtypes``;
        {"kernel dtype": seconds}. A run otherwise compiles only what it calls."""
        return {f"{k} {d}": s for k, d, _, _, s in self.R.compile_kernels(dtypes=dtypes)}

    def compile_stats(self):
        """{"compiled": n, "loaded": n, "seconds": s, "compile_seconds": s, "variants": [...]}:
        the (kernel, float type) pairs this process compiled (cache misses) or loaded from the
        disk cache so far."""
        return self.R.compile_stats()

    def add_compile_listener(self, fn):
        """Call ``fn(event)`` (a :class:`~gradflow.backends.numba_runtime.CompileEvent`)
        when a kernel starts compiling (cache miss only) and when one is ready."""
        self.R.add_compile_listener(fn)

    def remove_compile_listener(self, fn):
        self.R.remove_compile_listener(fn)

    #: arrays of at least this many bytes come from the buffer pool (``self.pool``)
    pool_min_bytes = 1 << 18
    #: the pool holds at most this many bytes, in use and idle (least recently used
    #: idle buffers are dropped to stay under it); change ``backend.pool.max_bytes``
    pool_max_bytes = 64 << 20
    #: idle pooled buffers unused for this many seconds are dropped at the next miss
    pool_idle_s = 10.0

    # -- helpers ------------------------------------------------------------------
    def _empty(self, shape, dtype):
        """``numpy.empty``, from the buffer pool when large (see :mod:`.buffer_pool`)."""
        return self.pool.empty(shape, dtype)

    def empty_cache(self):
        """Drop the buffer pool's idle buffers (``gradflow.backends.empty_cache()``)."""
        self.pool.empty_cache()

    def memory_info(self):
        """The buffer pool's figures: ``pool_bytes`` held (``pool_in_use_bytes`` +
        ``pool_idle_bytes``), its bound ``pool_max_bytes``, hits, misses and the bytes
        trimmed so far."""
        return self.pool.info()

    # -- the thread pool ----------------------------------------------------------------
    def _pool_executor(self):
        if self._executor is None or self._executor_pid != os.getpid():
            # a forked child inherits the executor object but not its threads
            self._executor = ThreadPoolExecutor(self.threads - 1,
                                                thread_name_prefix="gradflow-numba")
            self._executor_pid = os.getpid()
        return self._executor

    def _pmap(self, fn, items):
        """``[fn(it) for it in items]`` with the items spread round-robin over the
        calling thread and ``threads - 1`` pool workers. Every item runs even when
        one fails (so no output is left half-written), then the first error (in item
        order) is raised. Runs serially inside a worker, or with one thread/item."""
        T = min(self.threads, len(items))
        if T <= 1 or getattr(_WORKER, "active", False):
            return [fn(it) for it in items]

        def group(g):
            _WORKER.active = True
            res = []
            try:
                for it in items[g::T]:
                    try:
                        res.append((True, fn(it)))
                    except BaseException as e:  # noqa: BLE001 - re-raised by the caller
                        res.append((False, e))
            finally:
                _WORKER.active = False
            return res

        self._parallel_at = time.perf_counter()
        ex = self._pool_executor()
        futs = [ex.submit(group, g) for g in range(1, T)]
        out = [None] * len(items)
        out[0::T] = group(0)
        for g, f in enumerate(futs, start=1):
            out[g::T] = f.result()
        for ok, v in out:
            if not ok:
                raise v
        return [v for _, v in out]

    def _runner(self, nitems):
        """How to call a kernel inside :meth:`_pmap` items: on the item's own thread when
        the items run in parallel, else as :meth:`_run` decides."""
        if nitems > 1 and self.threads > 1:
            return lambda kern, nbytes, *args: kern(*args)
        return self._run

    #: 2-D GEMMs of at least this many multiply-adds get ``threads`` BLAS threads
    #: (BLAS is otherwise pinned to one, see ``pin_blas``) -- but only when no pool or
    #: parallel kernel ran in the last ``blas_quiet_s`` seconds: OpenBLAS's workers spin
    #: for a while after each call and would steal the cores from that work (LeNet-5
    #: b256: 32 ms per step with the GEMM threads, 19 ms without). An MLP step gets the
    #: threaded GEMMs (0.68 vs 0.89 ms); a CNN step, whose convs use the pool, does not.
    blas_parallel_macs = 1 << 23
    blas_quiet_s = 0.25

    def matmul(self, a, b):
        setter = self._blas_setter
        if (setter is not None and self.threads > 1 and a.ndim == 2 and b.ndim == 2
                and a.shape[0] * a.shape[1] * b.shape[-1] >= self.blas_parallel_macs
                and time.perf_counter() - self._parallel_at > self.blas_quiet_s
                and not getattr(_WORKER, "active", False)):
            setter(self.threads)
            try:
                return numpy.matmul(a, b)
            finally:
                setter(1)
        return numpy.matmul(a, b)

    def _run(self, kern, nbytes, *args):
        """Call kernel ``kern``: on the calling thread when it touches < ``parallel_min_bytes``,
        else on numba's threads."""
        if nbytes < self.parallel_min_bytes:
            return kern(*args)
        self._parallel_at = time.perf_counter()
        return kern.parallel(*args)

    @staticmethod
    def _ok(*arrays):
        """The fast kernels take same-dtype float arrays with elements (empty batches and
        zero-size weights go to the NumPy code, which handles them)."""
        dt = arrays[0].dtype
        return dt in _FLOATS and all(a.dtype == dt and a.size for a in arrays)

    # -- convolution ----------------------------------------------------------------
    def _conv_chunks(self, n, per_sample_bytes):
        """Split the batch into chunks [(n0, m), ...]: one per worker thread when the
        conv is big enough to pay a thread handoff, each at most ``chunk_bytes`` of
        im2col columns. Forward and backward compute the same split (the backward
        reuses the forward's columns chunk by chunk)."""
        T = self.threads if n * per_sample_bytes >= self.parallel_conv_bytes else 1
        m = -(-n // max(1, min(T, n)))
        m = max(1, min(m, self.chunk_bytes // max(per_sample_bytes, 1)))
        return [(n0, min(m, n - n0)) for n0 in range(0, n, m)]

    #: convolutions whose weight has at most this many elements (C_out * C_in*kh*kw,
    #: groups=1) use numba kernels instead of BLAS for the forward GEMM (fused with the
    #: NCHW scatter and bias) and the weight gradient (measured single-threaded: LeNet
    #: conv1 6x25 dW 0.7 vs 1.0 ms; conv2 16x150 dW 1.2 vs 0.75 ms, so only tiny ones)
    small_dw_max = 512
    small_fwd_max = 512
    #: the forward's im2col columns are kept for the weight gradient when at most this big
    save_cols_bytes = 1 << 24
    #: convs with fewer im2col bytes than this run as one chunk on the calling thread
    parallel_conv_bytes = 1 << 17

    #: stride-1 convs whose weight has at most this many elements use the direct kernels
    #: (no im2col) for the forward and the weight gradient (LeNet's conv1: 150)
    direct_max = 256

    def _direct_ok(self, wshape, stride, dilation, groups):
        kout, cg, kh, kw = wshape
        return (groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
                and kout * cg * kh * kw <= self.direct_max)

    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups):
        if not self._ok(x, w) or (b is not None and b.dtype != x.dtype):
            return super().conv2d_forward(x, w, b, stride, padding, dilation, groups)
        return self._conv_fwd(x, w, b, stride, padding, dilation, groups, False)[0]

    def conv2d_forward_saved(self, x, w, b, stride, padding, dilation, groups):
        if not self._ok(x, w) or (b is not None and b.dtype != x.dtype):
            return super().conv2d_forward_saved(x, w, b, stride, padding, dilation, groups)
        return self._conv_fwd(x, w, b, stride, padding, dilation, groups, False, keep=True)

    def conv2d_relu_forward_saved(self, x, w, b, stride, padding, dilation, groups):
        """``(relu(y), saved)`` of :meth:`conv2d_forward_saved`, the ReLU applied in the
        conv's own output pass (gradflow.compile's replay fuses a conv and the ReLU that
        alone reads its output into this)."""
        if not self._ok(x, w) or (b is not None and b.dtype != x.dtype):
            y, saved = super().conv2d_forward_saved(x, w, b, stride, padding, dilation, groups)
            return self.unary("relu", y), saved
        return self._conv_fwd(x, w, b, stride, padding, dilation, groups, True, keep=True)

    def _conv_fwd(self, x, w, b, stride, padding, dilation, groups, relu, keep=False):
        """(y, saved): ``saved`` is ("kmajor-cols", columns of the whole batch, chunks)
        when ``keep`` and they fit ``save_cols_bytes``, else None. Per chunk of m
        samples: im2col into K-major columns (C*kh*kw, m*OH*OW), one GEMM, then a
        transposing copy to NCHW that adds the bias; chunks run on the thread pool."""
        K = self.K
        x, w = _c(x), _c(w)
        n, c, h, wd = x.shape
        kout, cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh = conv_out_size(h, kh, sh, ph, dh)
        ow = conv_out_size(wd, kw, sw, pw, dw)
        L = oh * ow
        G = groups
        kg = kout // G
        r = cg * kh * kw
        ckk = c * kh * kw
        dt = x.dtype
        wg = w.reshape(G, kg, r)
        y = self._empty((n, kout, oh, ow), dt)
        y3 = y.reshape(n, kout, L)
        bz = _c(b) if b is not None else numpy.zeros(kout, dt)
        if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and G == 1:
            numpy.matmul(wg[0], x.reshape(n, c, L), out=y3)
            if b is not None or relu:
                self._run(K.bias_act_, y.nbytes, y3, bz, int(relu))
            return y, None
        if self._direct_ok(w.shape, stride, dilation, G):
            # a sample's padded input plus its wide output rows, counted 4x: chunks of ~10
            # LeNet samples measured ~10% faster at batch 64 than one chunk per thread
            wide = (c * (h + 2 * ph) + kout * oh) * (wd + 2 * pw) * x.itemsize
            chunks = self._conv_chunks(n, 4 * wide)
            run = self._runner(len(chunks))
            self._pmap(lambda ch: run(K.conv_direct_fwd, x.nbytes, x, w, bz, y, ch[0], ch[1], ph, pw,
                                      int(relu)), chunks)
            return y, None
        chunks = self._conv_chunks(n, ckk * L * x.itemsize)
        keep = keep and n * ckk * L * x.itemsize <= self.save_cols_bytes
        allcols = self._empty(n * ckk * L, dt) if keep else None
        geom = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        run = self._runner(len(chunks))
        small = G == 1 and kout * r <= self.small_fwd_max

        def chunk(ch):
            n0, mm = ch
            cc = (allcols[n0 * ckk * L:(n0 + mm) * ckk * L] if keep
                  else self._empty(mm * ckk * L, dt))
            run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, L, mm * L)
            if small and cc.nbytes <= (1 << 23):
                run(K.gemm_small_fwd, 2 * cc.nbytes, wg[0], cc, bz, y3, n0, mm, int(relu))
                return
            t = self._empty((G, kg, mm * L), dt)
            numpy.matmul(wg, cc.reshape(G, r, mm * L), out=t)
            run(K.kmajor_to_nkl, 2 * t.nbytes, t.reshape(kout, mm * L), bz, y3, n0, mm, int(relu))

        self._pmap(chunk, chunks)
        return y, (("kmajor-cols", allcols, chunks) if keep else None)

    def conv2d_backward(self, x, w, gy, stride, padding, dilation, groups,
                        need_dx=True, need_dw=True, need_db=True, saved=None):
        if not self._ok(x, w, gy):
            return super().conv2d_backward(x, w, gy, stride, padding, dilation, groups,
                                           need_dx, need_dw, need_db)
        K = self.K
        x, w, gy = _c(x), _c(w), _c(gy)
        n, c, h, wd = x.shape
        kout, cg, kh, kw = w.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oh, ow = gy.shape[2], gy.shape[3]
        L = oh * ow
        G = groups
        kg = kout // G
        r = cg * kh * kw
        ckk = c * kh * kw
        dt = x.dtype
        gy3 = gy.reshape(n, kout, L)
        dx = dw_ = db = None
        wg = w.reshape(G, kg, r)
        if not (need_dx or need_dw) or (kh == kw == 1 and sh == sw == 1 and ph == pw == 0
                                        and G == 1):
            if need_db:
                db = self._empty(kout, dt)
                self._run(K.channel_sum, gy.nbytes, gy3, db)
            if need_dx or need_dw:    # 1x1 convolution: plain GEMMs
                x3 = x.reshape(n, c, L)
                if need_dw:
                    dw_ = numpy.matmul(gy3, x3.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
                if need_dx:
                    dx = numpy.matmul(wg[0].T, gy3).reshape(x.shape)
            return dx, dw_, db
        direct_dw = need_dw and self._direct_ok(w.shape, stride, dilation, G)
        chunks = self._conv_chunks(n, ckk * L * x.itemsize)
        allcols = None
        if (saved is not None and saved[0] == "kmajor-cols" and saved[2] == chunks
                and saved[1].size == n * ckk * L and saved[1].dtype == dt):
            allcols = saved[1]
        geom = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        if need_dx:
            dx = self._empty(x.shape, dt)
        wgt = wg.transpose(0, 2, 1)
        run = self._runner(len(chunks))
        small_dw = G == 1 and kout * r <= self.small_dw_max

        def chunk(ch):
            """(weight-gradient part (G, kg, r) or None, bias-gradient part float64)."""
            n0, mm = ch
            acc = numpy.zeros(kout, dtype=numpy.float64)
            dwp = None
            if direct_dw:
                dwp = numpy.zeros((kout, cg, kh, kw), dtype=dt)
                run(K.conv_direct_dw, x.nbytes, x, gy, dwp, n0, mm, ph, pw)
                if not need_dx:
                    return dwp.reshape(G, kg, r), None
            gt = self._empty((kout, mm * L), dt)
            run(K.nkl_to_kmajor, 2 * gt.nbytes, gy3, n0, mm, gt, acc)
            gtg = gt.reshape(G, kg, mm * L)
            if direct_dw:
                dwp = dwp.reshape(G, kg, r)
            elif need_dw:
                if allcols is not None:
                    cc = allcols[n0 * ckk * L:(n0 + mm) * ckk * L]
                else:
                    cc = self._empty(mm * ckk * L, dt)
                    run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, L, mm * L)
                if small_dw:
                    dwp = numpy.zeros((G, kg, r), dtype=dt)
                    run(K.gemm_nt_small, gt.nbytes + cc.nbytes, gt, cc, dwp[0])
                else:
                    dwp = numpy.matmul(gtg, cc.reshape(G, r, mm * L).transpose(0, 2, 1))
            if need_dx:
                dc = self._empty(mm * ckk * L, dt)
                numpy.matmul(wgt, gtg, out=dc.reshape(G, r, mm * L))
                run(K.col2im, 2 * dc.nbytes, dc, n0, mm, *geom, dx, L, mm * L)
            return dwp, acc

        parts = self._pmap(chunk, chunks)
        if need_dw:
            dwacc = parts[0][0]
            for p, _ in parts[1:]:
                dwacc += p
            dw_ = dwacc.reshape(w.shape)
        if need_db and parts[0][1] is None:      # direct weight gradient, no gy transpose
            db = self._empty(kout, dt)
            self._run(K.channel_sum, gy.nbytes, gy3, db)
        elif need_db:
            acc = parts[0][1]
            for _, a in parts[1:]:
                acc += a
            db = acc.astype(dt)
        return dx, dw_, db

    # -- pooling ------------------------------------------------------------------------
    def max_pool2d_forward(self, x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        if not self._ok(x) or kernel[0] * kernel[1] > 127:
            return super().max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
        x = _c(x)
        oh, ow, _, _ = self._pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
        n, c = x.shape[:2]
        y = self._empty((n, c, oh, ow), x.dtype)
        idx = self._empty((n, c, oh, ow), numpy.int8)
        if self._pool2(kernel, stride, padding, dilation, x.shape[2:], (oh, ow)):
            self._run(self.K.maxpool2_fwd, x.nbytes, x, y, idx)
        else:
            self._run(self.K.maxpool_fwd, x.nbytes, x, kernel[0], kernel[1], stride[0], stride[1],
                      padding[0], padding[1], dilation[0], dilation[1], y, idx)
        return y, idx

    @staticmethod
    def _pool2(kernel, stride, padding, dilation, hw, ohw):
        """The 2x2 stride-2 geometry of the maxpool2 kernels (windows inside the input)."""
        return (tuple(kernel) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)
                and tuple(dilation) == (1, 1) and 2 * ohw[0] <= hw[0] and 2 * ohw[1] <= hw[1])

    def max_pool2d_backward(self, gy, argmax, x_shape, kernel, stride, padding, dilation=(1, 1),
                            ceil_mode=False):
        if not self._ok(gy) or argmax.dtype != numpy.int8:
            return super().max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding,
                                               dilation, ceil_mode)
        dx = self._empty(x_shape, gy.dtype)
        if self._pool2(kernel, stride, padding, dilation, x_shape[2:], gy.shape[2:]):
            self._run(self.K.maxpool2_bwd, dx.nbytes, _c(gy), _c(argmax), dx)
        else:
            self._run(self.K.maxpool_bwd, dx.nbytes, _c(gy), _c(argmax), kernel[0], kernel[1],
                      stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], dx)
        return dx

    def avg_pool2d_forward(self, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True):
        if not self._ok(x):
            return super().avg_pool2d_forward(x, kernel, stride, padding, ceil_mode,
                                              count_include_pad)
        x = _c(x)
        oh, ow, _, _ = self._pool_geometry(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        y = self._empty(x.shape[:2] + (oh, ow), x.dtype)
        self._run(self.K.avgpool_fwd, x.nbytes, x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                           int(bool(count_include_pad)), y)
        return y

    def avg_pool2d_backward(self, gy, x_shape, kernel, stride, padding, ceil_mode=False,
                            count_include_pad=True):
        if not self._ok(gy):
            return super().avg_pool2d_backward(gy, x_shape, kernel, stride, padding, ceil_mode,
                                               count_include_pad)
        dx = self._empty(x_shape, gy.dtype)
        self._run(self.K.avgpool_bwd, dx.nbytes, _c(gy), kernel[0], kernel[1], stride[0], stride[1], padding[0],
                           padding[1], int(bool(count_include_pad)), dx)
        return dx

    # -- softmax cross-entropy --------------------------------------------------------------
    def softmax_cross_entropy_forward(self, logits, target):
        if not self._ok(logits) or logits.ndim != 2 or target.dtype.kind not in "iu":
            return super().softmax_cross_entropy_forward(logits, target)
        check_class_indices(target, logits.shape[1])
        n = logits.shape[0]
        loss = numpy.empty(n, dtype=logits.dtype)
        logp = numpy.empty(logits.shape, dtype=logits.dtype)
        t = _c(target) if target.dtype == numpy.int64 else \
            numpy.ascontiguousarray(target, dtype=numpy.int64)
        self.K.sce_fwd(_c(logits), t, loss, logp)
        return loss, logp

    def softmax_cross_entropy_backward(self, logp, target, gloss):
        if not self._ok(logp, gloss) or logp.ndim != 2 or target.dtype.kind not in "iu":
            return super().softmax_cross_entropy_backward(logp, target, gloss)
        g = numpy.empty(logp.shape, dtype=logp.dtype)
        t = _c(target) if target.dtype == numpy.int64 else \
            numpy.ascontiguousarray(target, dtype=numpy.int64)
        self.K.sce_bwd(_c(logp), t, gloss if gloss.flags.writeable else _c(gloss), g)
        return g

    # -- resampling backward ------------------------------------------------------------------
    def index_add_axis(self, g, index, axis, size):
        if not self._ok(g) or g.ndim == 0 or index.ndim != 1:
            return super().index_add_axis(g, index, axis, size)
        g = _c(g)
        pre = 1
        for d in g.shape[:axis]:
            pre *= d
        post = g.size // max(pre * g.shape[axis], 1) if g.size else 0
        out = numpy.empty(g.shape[:axis] + (size,) + g.shape[axis + 1:], g.dtype)
        if out.size == 0:
            return out
        idx = numpy.ascontiguousarray(index, dtype=numpy.int64)
        self._run(self.K.index_add_axis, g.nbytes + out.nbytes, g.reshape(pre, g.shape[axis], post),
                  idx, out.reshape(pre, size, post))
        return out

    # -- activations ------------------------------------------------------------------------
    def unary(self, op, a):
        if op == "relu" and a.size >= self.min_kernel_size and self._ok(a):
            a = _c(a)
            y = self._empty(a.shape, a.dtype)
            self._run(self.K.relu, 2 * a.nbytes, a.reshape(-1), y.reshape(-1))
            return y
        return super().unary(op, a)

    def relu_backward(self, gy, y):
        if gy.size >= self.min_kernel_size and self._ok(gy, y) and gy.shape == y.shape:
            gy, y = _c(gy), _c(y)
            gx = self._empty(gy.shape, gy.dtype)
            self._run(self.K.relu_bwd, 3 * gy.nbytes, gy.reshape(-1), y.reshape(-1), gx.reshape(-1))
            return gx
        return super().relu_backward(gy, y)

    # -- optimizer updates --------------------------------------------------------------------
    @staticmethod
    def _flat_inplace(*arrays):
        return all(a.flags.c_contiguous for a in arrays)

    def sgd_step_(self, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
        if not (self._ok(p, g) and g.shape == p.shape and self._flat_inplace(p, g)
                and (not momentum or (buf is not None and buf.dtype == p.dtype
                                      and buf.shape == p.shape and self._flat_inplace(buf)))):
            return super().sgd_step_(p, g, buf, lr, momentum, dampening, weight_decay, nesterov,
                                     first)
        f = p.dtype.type
        pb = p.reshape(-1)
        self.K.sgd_(pb, g.reshape(-1), buf.reshape(-1) if momentum else pb, f(lr), f(momentum),
                    f(1 - dampening), f(weight_decay), int(bool(nesterov)), int(bool(first)),
                    int(bool(momentum)))

    def adam_step_(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        if not (self._ok(p, g, m, v) and p.shape == g.shape == m.shape == v.shape
                and self._flat_inplace(p, g, m, v)):
            return super().adam_step_(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step,
                                      decoupled)
        f = p.dtype.type
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        l2 = 0.0 if decoupled else weight_decay
        decay = 1 - lr * weight_decay if decoupled else 1.0
        self.K.adam_(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), f(lr / bc1),
                     f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(1 / bc2 ** 0.5), f(eps),
                     f(l2), f(decay))
