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

Threading: see :mod:`gradflow.backends.numba_kernels` -- the ``omp``/``tbb``
layer where available (safe to call from several Python threads; GNU OpenMP
is not fork-safe: fork worker processes before the first parallel kernel runs,
or use spawn), otherwise parallel kernels are serialised by a lock. ``info()``
reports the layer, the thread count, the OpenMP wait policy and the
compile-cache folder.

Which kernels run multi-threaded (``parallel_min_bytes``): a parallel region's
fork/join costs tens of microseconds on a quiet machine, and the hot kernels
sit between OpenBLAS GEMM calls whose worker threads keep the other core busy
(spinning) for a while after each call. Measured on the 2-core CI machine, a
LeNet-5 step ran 2-3x *slower* with its kernels parallel (batch 64: 1 MB
threshold 43 ms vs all on the calling thread 8 ms; batch 256: 8 MB threshold
77 ms vs 40 ms), while a standalone kernel with no GEMM around it (max-pool
forward + backward on a 16 MB tensor) is about 1.5x faster in parallel. So
only kernels touching at least ``parallel_min_bytes`` (32 MB) use all numba
threads; everything else runs on the calling thread.

Convolution: im2col (numba, padding handled in-kernel) into a buffer laid
out (C*kh*kw, m*OH*OW) for a chunk of m samples (``chunk_bytes``; usually the
whole batch), one GEMM per chunk, then a transposing copy to NCHW that also
adds the bias; backward transposes the output gradient once (summing the bias
gradient on the way), one GEMM each for dW and the column gradient, then
col2im. When the whole batch is one chunk of at most ``save_cols_bytes``, the
forward's im2col buffer is kept (``conv2d_forward_saved``) and the weight
gradient reuses it. ``conv_mode = "sample"`` (one GEMM per sample writing
NCHW directly) is kept for comparison: it measured slower on every benchmark
shape here. Large temporaries and results come from a small buffer pool
(``_empty``) so repeated steps do not page-fault fresh mmap'd memory.
"""
from __future__ import annotations

import importlib.util
import sys
import threading

import numpy

from .numpy_backend import NumpyBackend, conv_out_size

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def _free_refcount():
    """What ``sys.getrefcount`` reports, in :meth:`NumbaBackend._empty`'s loop, for a
    pooled buffer nobody else references (3 on CPython 3.10-3.12: the list, the loop
    variable, the call's argument) -- measured, not assumed, so that an interpreter
    that counts differently can only make the pool reuse less, never too much."""
    bufs = [numpy.empty(1)]
    for b in bufs:
        return sys.getrefcount(b)


_FREE_REFS = _free_refcount()


def _c(a):
    """``a`` as a C-contiguous, writeable-typed array (the kernels' signatures take
    mutable C arrays; read-only inputs such as broadcast views are copied)."""
    f = a.flags
    return a if (f.c_contiguous and f.writeable) else numpy.array(a, order="C")


class NumbaBackend(NumpyBackend):
    name = "numba"

    #: ``"auto"`` | ``"sample"`` | ``"kmajor"``: the conv GEMM layout (see module doc)
    conv_mode = "auto"
    #: target size of one im2col chunk in bytes (few chunks: each is a GEMM + kernel handoff)
    chunk_bytes = 1 << 26
    #: elementwise kernels (relu, relu backward) below this many elements use NumPy
    min_kernel_size = 1 << 14
    #: kernels touching fewer bytes than this run on the calling thread only
    parallel_min_bytes = 1 << 25

    @classmethod
    def unavailable_reason(cls):
        if importlib.util.find_spec("numba") is None:
            return "numba is not installed (pip install numba)"
        return None

    def __init__(self):
        super().__init__()
        from . import numba_kernels
        self.K = numba_kernels
        self._pool = {}
        self._pool_bytes = 0
        self._pool_lock = threading.Lock()

    def info(self):
        import numba
        K = self.K
        return {
            "name": self.name,
            "numpy": numpy.__version__,
            "numba": numba.__version__,
            "threading_layer": K.threading_layer(),
            "threads": K.num_threads(),
            "parallel_calls_serialized": K.serialized(),
            "omp_wait_policy": K.OMP_WAIT_POLICY,
            "parallel_min_bytes": self.parallel_min_bytes,
            "cache_dir": K.CACHE_DIR,
            "fastmath": ",".join(sorted(K.FASTMATH)),
        }

    def compile_all(self):
        """Compile (or load from the disk cache) every kernel; {kernel: seconds}."""
        return self.K.compile_all()

    #: arrays of at least this many bytes come from the buffer pool (see ``_empty``)
    pool_min_bytes = 1 << 18
    #: the pool keeps at most this many bytes of idle buffers
    pool_max_bytes = 1 << 28

    # -- helpers ------------------------------------------------------------------
    def _empty(self, shape, dtype):
        """``numpy.empty`` for large arrays, recycled: glibc serves multi-megabyte
        blocks with mmap and returns them with munmap, so a fresh conv buffer costs a
        page fault per 4 KB on first touch -- about as much as filling it. The pool
        hands out a view of a flat buffer that nobody else references any more
        (its reference count is the baseline ``_FREE_REFS``: the pool's list, the loop
        variable, getrefcount's argument), so arrays still held by the graph or the
        user (directly or through views, which reference the buffer) are never reused."""
        dtype = numpy.dtype(dtype)
        if isinstance(shape, int):
            shape = (shape,)
        size = 1
        for d in shape:
            size *= d
        nbytes = size * dtype.itemsize
        if nbytes < self.pool_min_bytes:
            return numpy.empty(shape, dtype)
        key = (dtype, size)
        with self._pool_lock:
            bufs = self._pool.setdefault(key, [])
            for b in bufs:
                if sys.getrefcount(b) == _FREE_REFS:
                    return b.reshape(shape)
            b = numpy.empty(size, dtype)
            if self._pool_bytes + nbytes <= self.pool_max_bytes and len(bufs) < 8:
                bufs.append(b)
                self._pool_bytes += nbytes
        return b.reshape(shape)

    def memory_info(self):
        return {"pool_bytes": self._pool_bytes}

    def _run(self, kern, nbytes, *args):
        """Call kernel ``kern``; single-threaded when it touches < ``parallel_min_bytes``."""
        if nbytes < self.parallel_min_bytes:
            return self.K.serial_call(kern, *args)
        return kern(*args)

    @staticmethod
    def _ok(*arrays):
        dt = arrays[0].dtype
        return dt in _FLOATS and all(a.dtype == dt for a in arrays[1:])

    # -- convolution ----------------------------------------------------------------
    def _conv_plan(self, n, ckk, kout, groups, L, itemsize):
        mode = self.conv_mode
        if mode == "auto":
            # one GEMM per sample pays when each is big enough for BLAS; otherwise
            # batch the chunk into one GEMM (LeNet's 6/16-channel, <=28x28 maps)
            # measured (benchmarks/results/cpu.md): one big GEMM per chunk beats one
            # GEMM per sample for LeNet's layers and for 32->64 3x3 on 32x32 maps alike
            mode = "kmajor"
        per_sample = ckk * L * itemsize
        m = max(1, min(n, self.chunk_bytes // max(per_sample, 1)))
        return mode, m

    #: convolutions whose weight has at most this many elements (C_out * C_in*kh*kw,
    #: groups=1) use numba kernels instead of BLAS for the forward GEMM (fused with the
    #: NCHW scatter and bias) and the weight gradient (measured single-threaded: LeNet
    #: conv1 6x25 dW 0.7 vs 1.0 ms; conv2 16x150 dW 1.2 vs 0.75 ms, so only tiny ones; the
    #: forward kernel only for chunks up to 8 MB: LeNet step b64 8.2 vs 8.9 ms, but b256
    #: 40 vs 31 ms, where the two-thread BLAS GEMM wins)
    small_dw_max = 512
    small_fwd_max = 512
    #: the forward's im2col buffer is kept for the weight gradient when at most this big
    save_cols_bytes = 1 << 24

    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups):
        if not self._ok(x, w) or (b is not None and b.dtype != x.dtype):
            return super().conv2d_forward(x, w, b, stride, padding, dilation, groups)
        return self._conv_fwd(x, w, b, stride, padding, dilation, groups, False)[0]

    def conv2d_forward_saved(self, x, w, b, stride, padding, dilation, groups):
        if not self._ok(x, w) or (b is not None and b.dtype != x.dtype):
            return super().conv2d_forward_saved(x, w, b, stride, padding, dilation, groups)
        return self._conv_fwd(x, w, b, stride, padding, dilation, groups, False, keep=True)

    def _conv_fwd(self, x, w, b, stride, padding, dilation, groups, relu, keep=False):
        """(y, saved): ``saved`` is the whole-batch K-major im2col buffer when ``keep``
        and it fits ``save_cols_bytes``, else None."""
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
        wg = w.reshape(G, kg, r)
        y = self._empty((n, kout, oh, ow), x.dtype)
        y3 = y.reshape(n, kout, L)
        bias = _c(b) if b is not None else None
        if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and G == 1:
            numpy.matmul(wg[0], x.reshape(n, c, L), out=y3)
            if bias is not None or relu:
                self._run(K.bias_act_, y.nbytes, y3,
                          bias if bias is not None else numpy.zeros(kout, x.dtype), int(relu))
            return y, None
        mode, m = self._conv_plan(n, ckk, kout, G, L, x.itemsize)
        cols = self._empty((m * ckk * L,), x.dtype)
        geom = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        if mode == "sample":
            y4 = y.reshape(n, G, kg, L)
            for n0 in range(0, n, m):
                mm = min(m, n - n0)
                cc = cols[:mm * ckk * L]
                self._run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, ckk * L, L)
                numpy.matmul(wg, cc.reshape(mm, G, r, L), out=y4[n0:n0 + mm])
            if bias is not None or relu:
                self._run(K.bias_act_, y.nbytes, y3,
                          bias if bias is not None else numpy.zeros(kout, x.dtype), int(relu))
        else:
            bz = bias if bias is not None else numpy.zeros(kout, x.dtype)
            tmp = self._empty((G, kg, m * L), x.dtype)
            for n0 in range(0, n, m):
                mm = min(m, n - n0)
                cc = cols[:mm * ckk * L]
                self._run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, L, mm * L)
                if G == 1 and kout * r <= self.small_fwd_max and cc.nbytes <= (1 << 23):
                    self._run(K.gemm_small_fwd, 2 * cc.nbytes, wg[0], cc, bz, y3, n0, mm,
                              int(relu))
                    continue
                t = tmp[:, :, :mm * L] if mm == m else self._empty((G, kg, mm * L), x.dtype)
                numpy.matmul(wg, cc.reshape(G, r, mm * L), out=t)
                self._run(K.kmajor_to_nkl, 2 * t.nbytes, t.reshape(kout, mm * L), bz, y3, n0, mm,
                          int(relu))
            if keep and m == n and cols.nbytes <= self.save_cols_bytes:
                return y, ("kmajor-cols", cols)
        return y, None

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
        one_by_one = kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and G == 1
        mode, m = self._conv_plan(n, ckk, kout, G, L, x.itemsize)
        fused_db = need_db and (need_dx or need_dw) and mode == "kmajor" and not one_by_one
        if need_db and not fused_db:
            db = self._empty(kout, dt)
            self._run(K.channel_sum, gy.nbytes, gy3, db)
        if not (need_dx or need_dw):
            return dx, dw_, db
        if one_by_one:
            x3 = x.reshape(n, c, L)
            if need_dw:
                dw_ = numpy.matmul(gy3, x3.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
            if need_dx:
                dx = numpy.matmul(wg[0].T, gy3).reshape(x.shape)
            return dx, dw_, db
        geom = (kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        have_cols = (saved is not None and saved[0] == "kmajor-cols" and mode == "kmajor"
                     and m == n and saved[1].size == n * ckk * L and saved[1].dtype == dt)
        cols = saved[1] if have_cols else (self._empty(m * ckk * L, dt) if need_dw else None)
        dcols = self._empty(m * ckk * L, dt) if need_dx else None
        if need_dx:
            dx = self._empty(x.shape, dt)
        dwacc = numpy.zeros((G, kg, r), dtype=dt) if need_dw else None
        wgt = wg.transpose(0, 2, 1)
        if mode == "sample":
            gy4 = gy.reshape(n, G, kg, L)
            part = self._empty((m, G, kg, r), dt) if need_dw else None
            for n0 in range(0, n, m):
                mm = min(m, n - n0)
                if need_dw:
                    cc = cols[:mm * ckk * L]
                    self._run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, ckk * L, L)
                    pp = part[:mm]
                    numpy.matmul(gy4[n0:n0 + mm], cc.reshape(mm, G, r, L).transpose(0, 1, 3, 2),
                                 out=pp)
                    dwacc += pp.sum(axis=0)
                if need_dx:
                    dc = dcols[:mm * ckk * L]
                    numpy.matmul(wgt, gy4[n0:n0 + mm], out=dc.reshape(mm, G, r, L))
                    self._run(K.col2im, 2 * dc.nbytes, dc, n0, mm, *geom, dx, ckk * L, L)
        else:
            gyt = self._empty((kout, m * L), dt)
            acc = numpy.zeros(kout, dtype=numpy.float64)
            for n0 in range(0, n, m):
                mm = min(m, n - n0)
                gt = gyt[:, :mm * L] if mm == m else self._empty((kout, mm * L), dt)
                self._run(K.nkl_to_kmajor, 2 * gt.nbytes, gy3, n0, mm, gt, acc)
                gtg = gt.reshape(G, kg, mm * L)
                if need_dw:
                    cc = cols[:mm * ckk * L]
                    if not have_cols:
                        self._run(K.im2col, cc.nbytes, x, n0, mm, *geom, cc, L, mm * L)
                    if G == 1 and kout * r <= self.small_dw_max:
                        self._run(K.gemm_nt_small, gt.nbytes + cc.nbytes, gt, cc, dwacc[0])
                    else:
                        dwacc += numpy.matmul(gtg, cc.reshape(G, r, mm * L).transpose(0, 2, 1))
                if need_dx:
                    dc = dcols[:mm * ckk * L]
                    numpy.matmul(wgt, gtg, out=dc.reshape(G, r, mm * L))
                    self._run(K.col2im, 2 * dc.nbytes, dc, n0, mm, *geom, dx, L, mm * L)
            if fused_db:
                db = acc.astype(dt)
        if need_dw:
            dw_ = dwacc.reshape(w.shape)
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
        self._run(self.K.maxpool_fwd, x.nbytes, x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                           dilation[0], dilation[1], y, idx)
        return y, idx

    def max_pool2d_backward(self, gy, argmax, x_shape, kernel, stride, padding, dilation=(1, 1),
                            ceil_mode=False):
        if not self._ok(gy) or argmax.dtype != numpy.int8:
            return super().max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding,
                                               dilation, ceil_mode)
        dx = self._empty(x_shape, gy.dtype)
        self._run(self.K.maxpool_bwd, dx.nbytes, _c(gy), _c(argmax), kernel[0], kernel[1], stride[0], stride[1],
                           padding[0], padding[1], dilation[0], dilation[1], dx)
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
