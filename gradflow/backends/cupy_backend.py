"""The CUDA backend: CuPy arrays, cuBLAS GEMM, a few hand-written kernels.

``CupyBackend`` subclasses the NumPy reference backend with ``xp = cupy``, so
every default kernel (views, reductions, scatter-add, avg pooling fallbacks,
log-softmax ...) runs on the GPU unchanged. It overrides only what the GPU does
better with a dedicated kernel (see :mod:`gradflow.backends.cupy_kernels`):

* convolution: an im2col kernel writing the GEMM operand directly (padding
  read as zeros, no padded copy), one ``cupy.matmul`` (cuBLAS), and one kernel
  transposing the GEMM result to NCHW while adding the bias; backward: two
  GEMMs and a *gather* col2im (each input pixel sums its taps: no atomics,
  deterministic);
* max pooling with the argmax in one pass, and its gather backward; average
  pooling forward/backward;
* softmax-cross-entropy forward (one warp per row) and backward (one pass);
* ReLU backward, bias+ReLU, and the SGD(-momentum) / Adam(W) updates as single
  in-place elementwise kernels.

CuPy is imported lazily: importing this module on a machine without CuPy
works, and :meth:`CupyBackend.unavailable_reason` says why the backend cannot
run. Memory comes from CuPy's default memory pool (``memory_info``).

Precision: float32 GEMMs are strict FP32 by default (results match the NumPy
reference to rtol 1e-4). Setting ``CUPY_TF32=1`` in the environment before the first
use lets cuBLAS use TF32 tensor cores, the precision PyTorch uses for convolutions by
default: about 3x faster GEMMs on an H100, at ~1e-3 relative error.

Host synchronisation: nothing here calls ``.item()`` on the hot path. The
frontend's cross-entropy target checks (``bool(reduce('any', ...))``) do sync
once per loss call; on the GPU that costs one small device->host copy.
"""
from __future__ import annotations

import importlib.util

import numpy

from .numpy_backend import NumpyBackend

_FLOATS = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))
_probe_result: list = []  # [reason or None] once probed


def _cupy():
    import cupy
    return cupy


def _probe() -> str | None:
    """Why CuPy cannot run here, or None. Never raises."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'gradflow[cuda]', i.e. cupy-cuda13x)"
    try:
        cupy = _cupy()
    except Exception as e:  # a broken install, missing CUDA libraries
        return f"importing cupy failed: {type(e).__name__}: {e}"
    try:
        if not cupy.is_available():
            return "CuPy found no usable CUDA device (no NVIDIA GPU or driver)"
        # one tiny op: catches driver/runtime mismatches and missing NVRTC/cuBLAS
        a = cupy.arange(4, dtype=cupy.float32)
        if float((a @ a + 1).item()) != 15.0:
            return "a test computation on the GPU returned a wrong result"
    except Exception as e:
        return f"CUDA is not usable: {type(e).__name__}: {e}"
    return None


_I32 = numpy.int32
_I64 = numpy.int64
_GRID_MAX = 65535   # CUDA's limit on gridDim.y / gridDim.z


def _big(*sizes):
    """Whether some index of a kernel call can pass 2**31 - 1 (then 64-bit arithmetic)."""
    return max(sizes) > 2**31 - 1


def _c(a):
    """Contiguous flat view (a no-op for contiguous arrays) for raw kernel indexing."""
    return _cupy().ascontiguousarray(a).reshape(-1)


class CupyBackend(NumpyBackend):
    name = "cupy"
    device_type = "cuda"
    xp = None  # set to the cupy module per instance (imported lazily)

    @classmethod
    def unavailable_reason(cls):
        if not _probe_result:
            _probe_result.append(_probe())
        return _probe_result[0]

    def __init__(self):
        cupy = _cupy()
        self.xp = cupy
        from . import cupy_kernels
        self._k = cupy_kernels
        self._rng = cupy.random.RandomState()

    # -- device facts --------------------------------------------------------------------------
    def info(self):
        cupy = self.xp
        rt = cupy.cuda.runtime
        dev = cupy.cuda.Device()
        props = rt.getDeviceProperties(dev.id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        free, total = rt.memGetInfo()
        pool = cupy.get_default_memory_pool()

        def ver(v):
            return f"{v // 1000}.{(v % 1000) // 10}"
        return {
            "name": self.name,
            "device": name,
            "compute_capability": f"{props['major']}.{props['minor']}",
            "device_memory": f"{total / 2**30:.1f} GiB ({(total - free) / 2**30:.2f} GiB used on device)",
            "pool_used_bytes": pool.used_bytes(),
            "pool_total_bytes": pool.total_bytes(),
            "cupy": cupy.__version__,
            "cuda_runtime": ver(rt.runtimeGetVersion()),
            "cuda_driver": ver(rt.driverGetVersion()),
        }

    def synchronize(self):
        self.xp.cuda.get_current_stream().synchronize()

    def _erf(self, x):
        # CuPy's own kernel: no term count read back from the device (the series would sync)
        from cupyx.scipy.special import erf
        return erf(x)

    def empty_cache(self):
        """Return the memory pool's free blocks to the device (``torch.cuda.empty_cache()``)."""
        self.xp.get_default_memory_pool().free_all_blocks()

    def errstate(self):
        """CUDA kernels never warn on inf/NaN; host-side NumPy conversions are quiet too."""
        return numpy.errstate(all="ignore")

    def data_ptr(self, a):
        return a.data.ptr  # device address (CuPy arrays have no __array_interface__)

    def view_into(self, owner, offset, shape, strides, dtype):
        """A view of ``owner``'s device memory ``offset`` bytes in (see the NumPy backend)."""
        return self.xp.ndarray(shape, dtype, memptr=owner.data + offset, strides=strides)

    def rng_state(self):
        """None: CuPy's RandomState has no copyable state (a captured step's first-replay
        check then skips steps that draw random numbers)."""
        return None

    def set_rng_state(self, state):
        if state is not None:
            raise ValueError("cupy backend: set_rng_state takes only None (no copyable state)")

    def memory_info(self):
        cupy = self.xp
        pool = cupy.get_default_memory_pool()
        free, total = cupy.cuda.runtime.memGetInfo()
        return {"used_bytes": pool.used_bytes(), "total_bytes": pool.total_bytes(),
                "device_free_bytes": free, "device_total_bytes": total}

    # -- creation and transfer -------------------------------------------------------------
    def to_numpy(self, a):
        return self.xp.asnumpy(a)

    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    # -- random: on the device, seeded (streams differ from the CPU backends'; build a
    #    model on the CPU and .to('cupy') it for identical initial weights) ---------------
    def seed(self, seed):
        self._rng = self.xp.random.RandomState(seed)

    def _float_draw(self, fn, shape, dtype):
        dt = numpy.dtype(dtype)
        if dt in _FLOATS:
            return fn(size=shape, dtype=dt)
        return fn(size=shape, dtype=numpy.float32).astype(dt)

    def rand(self, shape, dtype):
        return self._float_draw(self._rng.random_sample, shape, dtype)

    def randn(self, shape, dtype):
        return self._float_draw(self._rng.standard_normal, shape, dtype)

    def randint(self, low, high, shape, dtype):
        return self._rng.randint(low, high, size=shape, dtype=numpy.int64).astype(dtype, copy=False)

    def permutation(self, n):
        return self._rng.permutation(n).astype(numpy.int64, copy=False)

    # -- indexing: host index arrays are moved to the device first -----------------------------
    def _dev_index(self, index):
        xp = self.xp
        if isinstance(index, tuple):
            return tuple(xp.asarray(i) if isinstance(i, numpy.ndarray) else i for i in index)
        return xp.asarray(index) if isinstance(index, numpy.ndarray) else index

    def getitem(self, a, index):
        return a[self._dev_index(index)]

    def setitem_(self, a, index, values):
        if isinstance(values, numpy.ndarray):
            values = self.xp.asarray(values)
        a[self._dev_index(index)] = values

    def index_add(self, shape, index, values, dtype):
        """Zeros with ``values`` added at ``index``; repeated integer indices accumulate
        (``cupy.add.at``, as NumPy's ``np.add.at``). Basic and boolean indices cannot
        repeat, so a plain ``+=`` serves them."""
        xp = self.xp
        index = self._dev_index(index)
        out = xp.zeros(shape, dtype=dtype)
        items = index if isinstance(index, tuple) else (index,)
        fancy = any(isinstance(i, xp.ndarray) and i.dtype.kind in "iu" for i in items) or \
            any(isinstance(i, (list, range)) for i in items)
        if fancy:
            xp.add.at(out, index, values)
        else:
            out[index] += values
        return out

    def copyto_(self, dst, src):
        if isinstance(src, numpy.ndarray):
            src = self.xp.asarray(src)
        dst[...] = src

    # ======================================================================
    # CUDA overrides of the fused neural-net kernels
    # ======================================================================
    def _group_cols(self, x, kernel, stride, padding, dilation, groups):
        """im2col straight into the GEMM layout (G, C/G*kH*kW, N*OH*OW), one kernel."""
        if x.dtype not in _FLOATS:
            return super()._group_cols(x, kernel, stride, padding, dilation, groups)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        n, c, h, w = x.shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        rows = c * kh * kw
        cols = self.xp.empty((rows, n * oh * ow), dtype=x.dtype)
        if rows <= _GRID_MAX and n <= _GRID_MAX and oh * ow <= 2**31 - 1:
            bs = self._k.grid_block(oh * ow)
            nper = self._k.images_per_thread(cols.size, n)
            self._k.conv_grid("im2col_grid", x.dtype)(
                ((oh * ow + bs - 1) // bs, rows, (n + nper - 1) // nper), (bs,),
                (_c(x), cols, *(_I32(v) for v in (n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw,
                                                  dh, dw, nper))))
        else:
            self._k.im2col_gemm(_big(x.size, cols.size))(
                _c(x), n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, cols.reshape(-1))
        return cols.reshape(groups, -1, n * oh * ow), (oh, ow)

    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups):
        if x.dtype not in _FLOATS:
            return super().conv2d_forward(x, w, b, stride, padding, dilation, groups)
        k = w.shape[0]
        n = x.shape[0]
        cols, (oh, ow) = self._group_cols(x, w.shape[2:], stride, padding, dilation, groups)
        if groups == 1:
            yg = self.xp.matmul(w.reshape(k, -1), cols[0])                 # (K, N*L) cuBLAS
        else:
            yg = self.xp.matmul(w.reshape(groups, k // groups, -1), cols)  # (G, K/G, N*L)
        y = self.xp.empty((n, k, oh, ow), dtype=x.dtype)
        bias = _c(b) if b is not None else yg.reshape(-1)[:1]
        self._k.gemm_to_nchw(_big(y.size))(yg.reshape(-1), bias, n, k, oh * ow,
                                           int(b is not None), y.reshape(-1))
        return y

    def conv2d_backward(self, x, w, gy, stride, padding, dilation, groups,
                        need_dx=True, need_dw=True, need_db=True, saved=None):
        xp = self.xp
        if x.dtype not in _FLOATS:
            return super().conv2d_backward(x, w, gy, stride, padding, dilation, groups,
                                           need_dx, need_dw, need_db)
        k, cg, kh, kw = w.shape
        n, c, h, wd = x.shape
        oh, ow = gy.shape[2], gy.shape[3]
        L = n * oh * ow
        gyk = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(k, L)   # (K, N*L)
        dx = dw = db = None
        if need_dw:
            cols, _ = self._group_cols(x, (kh, kw), stride, padding, dilation, groups)
            if groups == 1:
                dw = xp.matmul(gyk, cols[0].T).reshape(w.shape)
            else:
                dw = xp.matmul(gyk.reshape(groups, k // groups, L),
                               cols.transpose(0, 2, 1)).reshape(w.shape)
        if need_dx:
            if groups == 1:
                dcols = xp.matmul(w.reshape(k, -1).T, gyk)                     # (C*kh*kw, N*L)
            else:
                dcols = xp.matmul(w.reshape(groups, k // groups, -1).transpose(0, 2, 1),
                                  gyk.reshape(groups, k // groups, L))
            # GEMM layout strides: row (c, ki, kj) = c*kh*kw + ki*kw + kj; column (n, oh, ow)
            dx = self._col2im(dcols, x.shape, (kh, kw), stride, padding, dilation,
                              (oh * ow, kh * kw * L, kw * L, L, ow, 1), (oh, ow))
        if need_db:
            db = xp.matmul(gyk, self._ones(L, gyk.dtype))   # a GEMV: faster than a row reduction
        return dx, dw, db

    def _ones(self, n, dtype):
        """A cached vector of ``n`` ones (grown on demand, never shrunk)."""
        cache = self.__dict__.setdefault("_ones_cache", {})
        key = numpy.dtype(dtype)
        v = cache.get(key)
        if v is None or v.size < n:
            v = cache[key] = self.xp.ones((max(n, 1024),), dtype=key)
        return v[:n]

    def _col2im(self, cols, x_shape, kernel, stride, padding, dilation, strides, out_hw):
        """Gather col2im from ``cols`` addressed by element ``strides`` (sN, sC, sKI, sKJ,
        sOH, sOW) into a new (N, C, H, W) array."""
        n, c, h, w = x_shape
        oh, ow = out_hw
        dx = self.xp.empty(tuple(x_shape), dtype=cols.dtype)
        geom = (*kernel, *stride, *padding, *dilation)
        if c <= _GRID_MAX and n <= _GRID_MAX:
            bs = self._k.grid_block(h * w)
            nper = self._k.images_per_thread(dx.size, n)
            self._k.conv_grid("col2im_grid", cols.dtype)(
                ((h * w + bs - 1) // bs, c, (n + nper - 1) // nper), (bs,),
                (_c(cols), dx, *(_I32(v) for v in (n, c, h, w, oh, ow, *geom, nper)),
                 *(_I64(v) for v in strides)))
        else:
            self._k.col2im_gather(_big(cols.size, dx.size))(
                _c(cols), c, h, w, oh, ow, *geom, *strides, dx.reshape(-1))
        return dx

    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        if cols.dtype not in _FLOATS:
            return super().col2im(cols, x_shape, kernel, stride, padding, dilation)
        n, c, h, w = x_shape
        oh, ow = cols.shape[4], cols.shape[5]
        cols = self.xp.ascontiguousarray(cols)
        es = tuple(s // cols.itemsize for s in cols.strides)
        return self._col2im(cols, x_shape, kernel, stride, padding, dilation, es, (oh, ow))

    # -- pooling ---------------------------------------------------------------------------------
    def max_pool2d_forward(self, x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        if x.dtype not in _FLOATS:
            return super().max_pool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
        n, c, h, w = x.shape
        oh, ow, _, _ = self._pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
        y = self.xp.empty((n, c, oh, ow), dtype=x.dtype)
        idx = self.xp.empty((n, c, oh, ow), dtype=numpy.int32)
        self._k.max_pool_fwd(_big(x.size))(_c(x), h, w, oh, ow, *kernel, *stride, *padding, *dilation,
                               x.dtype.type(-numpy.inf), y.reshape(-1), idx.reshape(-1))
        return y, idx

    def max_pool2d_backward(self, gy, argmax, x_shape, kernel, stride, padding, dilation=(1, 1),
                            ceil_mode=False):
        if gy.dtype not in _FLOATS:
            return super().max_pool2d_backward(gy, argmax, x_shape, kernel, stride, padding,
                                               dilation, ceil_mode)
        oh, ow = gy.shape[2], gy.shape[3]
        dx = self.xp.empty(tuple(x_shape), dtype=gy.dtype)
        self._k.max_pool_bwd(_big(dx.size, gy.size))(_c(gy), _c(argmax.astype(numpy.int32, copy=False)),
                               x_shape[2], x_shape[3], oh, ow, *kernel, *stride, *padding,
                               *dilation, dx.reshape(-1))
        return dx

    def avg_pool2d_forward(self, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True):
        if x.dtype not in _FLOATS:
            return super().avg_pool2d_forward(x, kernel, stride, padding, ceil_mode,
                                              count_include_pad)
        n, c, h, w = x.shape
        oh, ow, _, _ = self._pool_geometry(x.shape, kernel, stride, padding, (1, 1), ceil_mode)
        y = self.xp.empty((n, c, oh, ow), dtype=x.dtype)
        self._k.avg_pool_fwd(_big(x.size))(_c(x), h, w, oh, ow, *kernel, *stride, *padding, 1, 1,
                               int(bool(count_include_pad)), y.reshape(-1))
        return y

    def avg_pool2d_backward(self, gy, x_shape, kernel, stride, padding, ceil_mode=False,
                            count_include_pad=True):
        if gy.dtype not in _FLOATS:
            return super().avg_pool2d_backward(gy, x_shape, kernel, stride, padding, ceil_mode,
                                               count_include_pad)
        oh, ow = gy.shape[2], gy.shape[3]
        dx = self.xp.empty(tuple(x_shape), dtype=gy.dtype)
        self._k.avg_pool_bwd(_big(dx.size, gy.size))(_c(gy), x_shape[2], x_shape[3], oh, ow, *kernel, *stride,
                               *padding, 1, 1, int(bool(count_include_pad)), dx.reshape(-1))
        return dx

    # -- softmax cross-entropy --------------------------------------------------------------------------
    def softmax_cross_entropy_forward(self, logits, target):
        xp = self.xp
        if logits.dtype not in _FLOATS or logits.ndim != 2 or 0 in logits.shape:
            return super().softmax_cross_entropy_forward(logits, target)
        n, c = logits.shape
        x = xp.ascontiguousarray(logits)
        t = xp.ascontiguousarray(target.astype(numpy.int64, copy=False))
        loss = xp.empty((n,), dtype=logits.dtype)
        logp = xp.empty((n, c), dtype=logits.dtype)
        threads = 256
        blocks = (n * 32 + threads - 1) // threads
        self._k.sxent_fwd(logits.dtype)((blocks,), (threads,),
                                        (x, t, loss, logp, numpy.int64(n), numpy.int64(c)))
        return loss, logp

    def softmax_cross_entropy_backward(self, logp, target, gloss):
        xp = self.xp
        if logp.dtype not in _FLOATS or logp.ndim != 2:
            return super().softmax_cross_entropy_backward(logp, target, gloss)
        g = xp.empty(logp.shape, dtype=logp.dtype)
        self._k.sxent_bwd(_big(logp.size))(logp, _c(target.astype(numpy.int64, copy=False)),
                            _c(gloss.astype(logp.dtype, copy=False)), logp.shape[1], g)
        return g

    # -- activations -------------------------------------------------------------------------------
    def relu_backward(self, gy, y):
        if gy.dtype not in _FLOATS or gy.dtype != y.dtype or gy.shape != y.shape:
            return super().relu_backward(gy, y)
        return self._k.relu_bwd()(gy, y)

    def bias_relu(self, x, b):
        """max(x + b, 0) in one pass (``b`` broadcast against ``x``)."""
        return self._k.bias_relu()(x, b)

    # -- in-place optimizer updates -----------------------------------------------------------------
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
        if p.dtype not in _FLOATS or g.dtype != p.dtype:
            return super().sgd_step_(p, g, buf, lr, momentum, dampening, weight_decay,
                                     nesterov, first)
        T = p.dtype.type
        if momentum:
            self._k.sgd_momentum()(g, T(lr), T(momentum), T(1 - dampening), T(weight_decay),
                                   numpy.int32(bool(nesterov)), numpy.int32(bool(first)), p, buf)
        else:
            self._k.sgd_plain()(g, T(lr), T(weight_decay), p)

    def adam_step_(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        if p.dtype not in _FLOATS or g.dtype != p.dtype:
            return super().adam_step_(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step,
                                      decoupled)
        T = p.dtype.type
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        self._k.adam()(g, T(lr / bc1), T(beta1), T(beta2), T(1 - beta1), T(1 - beta2),
                       T(bc2 ** 0.5), T(eps), T(weight_decay), numpy.int32(bool(decoupled)),
                       T(1 - lr * weight_decay), p, m, v)
