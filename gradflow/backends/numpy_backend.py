"""The NumPy reference backend: simple, obviously correct, the oracle.

Everything here is written against ``self.xp`` (never ``numpy`` directly), so
the CuPy backend inherits every kernel by setting ``xp = cupy`` and the CPU
test run covers that shared code.

Convolution is im2col by strided views plus one (batched-over-groups) GEMM;
pooling works on strided window views; the only Python loops run over kernel
taps (at most kH*kW iterations), never over the batch or pixels.
"""
from __future__ import annotations

import numpy

from ..geometry import conv_out_size
from .base import UNARY_BACKWARD_FROM, Backend

_UNARY = {
    "neg": "negative", "exp": "exp", "log": "log", "sqrt": "sqrt", "abs": "abs",
    "tanh": "tanh", "sign": "sign", "sin": "sin", "cos": "cos", "log1p": "log1p",
    "expm1": "expm1", "reciprocal": "reciprocal", "square": "square",
    "floor": "floor", "ceil": "ceil", "trunc": "trunc", "round": "rint",  # not differentiable
    "atan": "arctan",
    "invert": "invert",  # bool: logical not; integers: bitwise not
}
_BINARY = {
    "add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
    "pow": "power", "maximum": "maximum", "minimum": "minimum",
    "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
    "gt": "greater", "ge": "greater_equal", "floordiv": "floor_divide", "mod": "remainder",
    "atan2": "arctan2",
    "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",  # bool/int: logical/bitwise
}



def check_class_indices(target, c):
    """Raise ValueError unless every value of the integer array ``target`` is in [0, c).
    Kept in the kernel's own method (not only in ``cross_entropy``'s argument checks) so
    that a replayed step (gradflow.compile), which runs no op-level Python, still refuses
    a bad label instead of reading outside the logits."""
    if target.size and (int(target.min()) < 0 or int(target.max()) >= c):
        raise ValueError(f"cross_entropy: target values must be class indices in [0, {c}) "
                         f"(or ignore_index); got values in [{int(target.min())}, "
                         f"{int(target.max())}]")


class NumpyBackend(Backend):
    name = "numpy"
    xp = numpy
    device_type = "cpu"

    def __init__(self):
        self._rng = numpy.random.default_rng()

    def info(self):
        return {"name": self.name, "numpy": numpy.__version__}

    # -- creation and transfer ------------------------------------------------
    def errstate(self):
        return self.xp.errstate(all="ignore")

    def asarray(self, data, dtype=None):
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, a):
        return numpy.asarray(a)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=dtype)

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype)

    def arange(self, start, stop, step, dtype):
        return self.xp.arange(start, stop, step, dtype=dtype)

    def eye(self, n, m, dtype):
        return self.xp.eye(n, m, dtype=dtype)

    # -- random -------------------------------------------------------------------
    def seed(self, seed):
        self._rng = numpy.random.default_rng(seed)

    def _host_random(self, fn, shape, dtype):
        return self.xp.asarray(fn(shape).astype(dtype, copy=False))

    def rand(self, shape, dtype):
        return self._host_random(self._rng.random, shape, dtype)

    def randn(self, shape, dtype):
        return self._host_random(self._rng.standard_normal, shape, dtype)

    def randint(self, low, high, shape, dtype):
        return self.xp.asarray(self._rng.integers(low, high, size=shape).astype(dtype))

    def permutation(self, n):
        return self.xp.asarray(self._rng.permutation(n))

    # -- elementwise ----------------------------------------------------------------
    def unary(self, op, a):
        xp = self.xp
        if op == "relu":
            return xp.maximum(a, 0)
        if op == "sigmoid":
            # stable for large |a|: exp of a non-positive number only
            e = xp.exp(-xp.abs(a))
            return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        if op == "erf":
            return self._erf(a)
        return getattr(xp, _UNARY[op])(a)

    def _erf(self, x):
        """erf(x) to ~1e-14 (NumPy has none): the Kummer series
        erf(x) = 2x/sqrt(pi) e^(-x^2) sum_n (2x^2)^n / (1*3*...*(2n+1)), whose terms are
        all positive (no cancellation), summed in float64 and cast back; |x| is clamped at
        6, where erf is +-1 to double precision. About 2*max(x^2) + 40 terms: the count
        is read from the data here, inside the kernel, so a captured step still records
        one ``unary("erf")`` call."""
        xp = self.xp
        a = xp.clip(x.astype(xp.float64), -6.0, 6.0)
        a2 = a * a
        m = float(a2.max()) if a2.size else 0.0
        two_a2 = a2 * 2.0
        t = xp.ones(a.shape, xp.float64)
        s = xp.ones(a.shape, xp.float64)
        for n in range(1, int(2 * m) + 40):
            t *= two_a2
            t *= 1.0 / (2 * n + 1)
            s += t
        y = a * xp.exp(-a2) * s * 1.1283791670955126  # 2/sqrt(pi)
        return y.astype(x.dtype, copy=False)

    def binary(self, op, a, b, out=None):
        if out is None:
            return getattr(self.xp, _BINARY[op])(a, b)
        return getattr(self.xp, _BINARY[op])(a, b, out=out)

    def where(self, cond, a, b):
        return self.xp.where(cond, a, b)

    def clip(self, a, lo, hi):
        return self.xp.clip(a, lo, hi)

    def astype(self, a, dtype):
        return a.astype(dtype, copy=False)

    # -- reductions -------------------------------------------------------------------
    def reduce(self, op, a, axis, keepdims):
        # the array method skips numpy's Python-level dispatch wrapper (~1 us per call)
        return getattr(a, op)(axis=axis, keepdims=keepdims)

    def argsort(self, a, axis, descending=False):
        """Indices that sort ``a`` along ``axis``, stable (ties keep their order) both ways;
        NaN counts as the largest value (last ascending, first descending), as PyTorch."""
        xp = self.xp
        if not descending:
            return xp.argsort(a, axis=axis, kind="stable")
        # an ascending stable sort of the reversed array, reversed: descending, NaN first,
        # ties in their original order; no negation (bool, unsigned and INT_MIN safe)
        n = a.shape[axis]
        idx = xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
        return (n - 1) - xp.flip(idx, axis)

    def cumsum(self, a, axis):
        return self.xp.cumsum(a, axis=axis)

    def classify(self, op, a):
        """``op`` in isnan isinf isfinite: a bool array."""
        return getattr(self.xp, op)(a)

    def arg_reduce(self, op, a, axis, keepdims):
        out = getattr(self.xp, op)(a, axis=axis)
        if keepdims:
            out = self.xp.expand_dims(out, axis) if axis is not None else out.reshape((1,) * a.ndim)
        return out

    # -- views and data movement ----------------------------------------------------------
    def reshape(self, a, shape):
        return a.reshape(shape)

    def transpose(self, a, axes):
        return a.transpose(axes)

    def broadcast_to(self, a, shape):
        return self.xp.broadcast_to(a, shape)

    def getitem(self, a, index):
        return a[index]

    def index_add(self, shape, index, values, dtype):
        out = self.xp.zeros(shape, dtype=dtype)
        self.xp.add.at(out, index, values)
        return out

    def setitem_(self, a, index, values):
        a[index] = values

    def pad(self, a, pad_width, value=0.0):
        return self.xp.pad(a, pad_width, mode="constant", constant_values=value)

    def concat(self, arrays, axis):
        return self.xp.concatenate(arrays, axis=axis)

    def stack(self, arrays, axis):
        return self.xp.stack(arrays, axis=axis)

    def copy(self, a):
        return a.copy()

    def copyto_(self, dst, src):
        dst[...] = src

    # -- memory layout (metadata only: nothing is copied) ----------------------------------
    def strides(self, a):
        """Strides of ``a`` in elements (PyTorch's ``Tensor.stride()``), from the array's own
        byte strides: a transposed or sliced view reports its real layout."""
        return tuple(s // a.itemsize for s in a.strides)

    def is_contiguous(self, a):
        """True when ``a`` is C-contiguous (row-major, dims of size 1 ignored)."""
        return bool(a.flags.c_contiguous)

    def data_ptr(self, a):
        """Address of ``a``'s first element."""
        return a.__array_interface__["data"][0]

    def owner(self, a):
        """The array that owns ``a``'s memory (``a`` itself when it is not a view)."""
        while isinstance(a.base, self.xp.ndarray):
            a = a.base
        return a

    def view_into(self, owner, offset, shape, strides, dtype):
        """A view of ``owner``'s memory starting ``offset`` bytes in (byte ``strides``):
        how a captured step rebuilds a view taken outside the kernels (gradflow.capture)."""
        return self.xp.ndarray(shape, dtype, buffer=owner, offset=offset, strides=strides)

    def rng_state(self):
        """A copy of the random generator's state (:meth:`set_rng_state` restores it)."""
        return self._rng.bit_generator.state

    def set_rng_state(self, state):
        self._rng.bit_generator.state = state

    def storage_offset(self, a):
        """Elements between the start of the array that owns the memory and ``a``'s first
        element (0 for an array that owns its memory)."""
        base = a
        while isinstance(base.base, self.xp.ndarray):
            base = base.base
        if base is a:
            return 0
        return (self.data_ptr(a) - self.data_ptr(base)) // a.itemsize

    def matmul(self, a, b):
        return self.xp.matmul(a, b)

    def einsum(self, spec, *arrays):
        """Explicit-output einsum (``"ij,jk->ik"``) with every axis named (the frontend
        expands '...'); a letter repeated within one operand takes its diagonal (``"ii->i"``).
        BLAS-backed where the library can; always an array (NumPy returns a scalar for 0-d)."""
        out = self.xp.einsum(spec, *arrays, optimize=len(arrays) > 2)
        return out if isinstance(out, self.xp.ndarray) else self.xp.asarray(out)

    # ======================================================================
    # Fused neural-net kernels (defaults; faster backends override)
    # ======================================================================

    # -- im2col / col2im ----------------------------------------------------------------------------
    def im2col(self, x, kernel, stride, padding, dilation):
        """Windows of ``x`` (N, C, H, W) as a strided view (N, C, kH, kW, OH, OW).

        ``cols[n, c, i, j, oh, ow] = xpad[n, c, oh*sh + i*dh, ow*sw + j*dw]``."""
        xp = self.xp
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        n, c, h, w = x.shape
        oh = (h - dh * (kh - 1) - 1) // sh + 1
        ow = (w - dw * (kw - 1) - 1) // sw + 1
        s0, s1, s2, s3 = x.strides
        return xp.lib.stride_tricks.as_strided(
            x, (n, c, kh, kw, oh, ow), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw))

    def col2im(self, cols, x_shape, kernel, stride, padding, dilation):
        """Adjoint of :meth:`im2col`: scatter-add (N, C, kH, kW, OH, OW) back to ``x_shape``."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        n, c, h, w = x_shape
        oh, ow = cols.shape[4], cols.shape[5]
        out = self.xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                out[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                    j * dw:j * dw + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
        return out[:, :, ph:ph + h, pw:pw + w]

    # -- convolution ------------------------------------------------------------------------------------
    def _group_cols(self, x, kernel, stride, padding, dilation, groups):
        """im2col copied into GEMM layout (G, C/G*kH*kW, N*OH*OW)."""
        cols = self.im2col(x, kernel, stride, padding, dilation)
        n, c, kh, kw, oh, ow = cols.shape
        cols = cols.reshape(n, groups, c // groups, kh, kw, oh, ow).transpose(1, 2, 3, 4, 0, 5, 6)
        # sizes spelled out, not -1: an empty batch (n = 0) would make -1 ambiguous
        return (self.xp.ascontiguousarray(cols).reshape(groups, (c // groups) * kh * kw, n * oh * ow),
                (oh, ow))

    def conv2d_forward(self, x, w, b, stride, padding, dilation, groups):
        """y (N, K, OH, OW) = conv(x (N, C, H, W), w (K, C/G, kH, kW)) + b (K,)."""
        k, cg, kh, kw = w.shape
        n = x.shape[0]
        cols, (oh, ow) = self._group_cols(x, (kh, kw), stride, padding, dilation, groups)
        y = self.xp.matmul(w.reshape(groups, k // groups, cg * kh * kw), cols)   # (G, K/G, N*L)
        y = y.reshape(k, n, oh, ow).transpose(1, 0, 2, 3)
        if b is not None:
            y = y + b.reshape(1, k, 1, 1)
        return self.xp.ascontiguousarray(y)

    def conv2d_forward_saved(self, x, w, b, stride, padding, dilation, groups):
        """:meth:`conv2d_forward` plus an opaque object that this backend's
        :meth:`conv2d_backward` may reuse (passed back as ``saved=``, e.g. the im2col
        buffer, so the weight gradient does not recompute it). Default: nothing saved."""
        return self.conv2d_forward(x, w, b, stride, padding, dilation, groups), None

    def conv2d_backward(self, x, w, gy, stride, padding, dilation, groups,
                        need_dx=True, need_dw=True, need_db=True, saved=None):
        """Gradients (dx, dw, db) of :meth:`conv2d_forward`; ``None`` where not needed."""
        xp = self.xp
        k, cg, kh, kw = w.shape
        n, c, h, wd = x.shape
        oh, ow = gy.shape[2], gy.shape[3]
        gyg = xp.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(groups, k // groups, n * oh * ow)
        dx = dw = db = None
        if need_dw:
            cols, _ = self._group_cols(x, (kh, kw), stride, padding, dilation, groups)
            dw = xp.matmul(gyg, cols.transpose(0, 2, 1)).reshape(w.shape)
        if need_dx:
            wg = w.reshape(groups, k // groups, cg * kh * kw)
            dcols = xp.matmul(wg.transpose(0, 2, 1), gyg)    # (G, C/G*kH*kW, N*L)
            dcols = dcols.reshape(groups, cg, kh, kw, n, oh, ow).transpose(4, 0, 1, 2, 3, 5, 6)
            dcols = dcols.reshape(n, c, kh, kw, oh, ow)
            dx = self.col2im(dcols, x.shape, (kh, kw), stride, padding, dilation)
        if need_db:
            db = gy.sum(axis=(0, 2, 3))
        return dx, dw, db

    # -- pooling -------------------------------------------------------------------------------------------
    def _pool_geometry(self, x_shape, kernel, stride, padding, dilation, ceil_mode):
        h, w = x_shape[2], x_shape[3]
        oh = conv_out_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
        ow = conv_out_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
        # extra right/bottom padding so that ceil_mode's last window fits
        eh = max(0, (oh - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - (h + 2 * padding[0]))
        ew = max(0, (ow - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - (w + 2 * padding[1]))
        return oh, ow, eh, ew

    def _pool_windows(self, x, kernel, stride, padding, dilation, ceil_mode, fill):
        """Padded windows view (N, C, kH, kW, OH, OW) and the geometry."""
        oh, ow, eh, ew = self._pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode)
        (ph, pw) = padding
        if ph or pw or eh or ew:
            x = self.xp.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=fill)
        cols = self.im2col(x, kernel, stride, (0, 0), dilation)
        return cols[..., :oh, :ow], (oh, ow, eh, ew)

    def _taps_scatter(self, gy_taps, x_shape, kernel, stride, padding, dilation, extra):
        """Sum per-tap gradients (kH, kW, N, C, OH, OW) into the padded input, then crop."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
        n, c, h, w = x_shape
        oh, ow = gy_taps.shape[-2:]
        out = self.xp.zeros((n, c, h + 2 * ph + extra[0], w + 2 * pw + extra[1]), dtype=gy_taps.dtype)
        for i in range(kh):
            for j in range(kw):
                out[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                    j * dw:j * dw + sw * (ow - 1) + 1:sw] += gy_taps[i, j]
        return out[:, :, ph:ph + h, pw:pw + w]

    def max_pool2d_forward(self, x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
        """Returns (y (N, C, OH, OW), argmax): argmax is the tap index i*kW + j (int8/int32)
        of the window's maximum; NaN propagates (NaN wins)."""
        xp = self.xp
        fill = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        cols, (oh, ow, _, _) = self._pool_windows(x, kernel, stride, padding, dilation, ceil_mode, fill)
        n, c, kh, kw = cols.shape[:4]
        flat = xp.ascontiguousarray(cols.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c, oh, ow, kh * kw)
        idx = flat.argmax(axis=-1)
        y = xp.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        return y, idx.astype(xp.int32)

    def max_pool2d_backward(self, gy, argmax, x_shape, kernel, stride, padding, dilation=(1, 1),
                            ceil_mode=False):
        xp = self.xp
        kh, kw = kernel
        _, _, eh, ew = self._pool_geometry(x_shape, kernel, stride, padding, dilation, ceil_mode)
        taps = xp.arange(kh * kw, dtype=xp.int32).reshape(kh, kw, 1, 1, 1, 1)
        gy_taps = xp.where(argmax[None, None] == taps, gy[None, None], xp.zeros((), gy.dtype))
        return self._taps_scatter(gy_taps, x_shape, kernel, stride, padding, dilation, (eh, ew))

    def max_pool2d_gather(self, x, argmax, kernel, stride, padding, dilation=(1, 1),
                          ceil_mode=False):
        """(N, C, OH, OW): ``x`` at each window's ``argmax`` tap (the adjoint of
        :meth:`max_pool2d_backward`; used by second-order gradients)."""
        xp = self.xp
        cols, (oh, ow, _, _) = self._pool_windows(x, kernel, stride, padding, dilation, ceil_mode, 0)
        n, c, kh, kw = cols.shape[:4]
        flat = xp.ascontiguousarray(cols.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c, oh, ow, kh * kw)
        taps = argmax.astype(xp.int64)[..., None]
        return xp.take_along_axis(flat, taps, axis=-1)[..., 0]

    def _avg_divisor(self, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, dtype):
        """(OH, OW) array of how many elements each window averages over (PyTorch's rule)."""
        xp = self.xp
        counts = []
        for size, k, s, p in zip(x_shape[2:], kernel, stride, padding):
            out = conv_out_size(size, k, s, p, 1, ceil_mode)
            start = xp.arange(out) * s - p
            end = xp.minimum(start + k, size + p)
            if not count_include_pad:
                start, end = xp.maximum(start, 0), xp.minimum(end, size)
            counts.append(end - start)
        return (counts[0][:, None] * counts[1][None, :]).astype(dtype)

    def avg_pool2d_forward(self, x, kernel, stride, padding, ceil_mode=False, count_include_pad=True):
        cols, _ = self._pool_windows(x, kernel, stride, padding, (1, 1), ceil_mode, 0)
        div = self._avg_divisor(x.shape, kernel, stride, padding, ceil_mode, count_include_pad, x.dtype)
        return cols.sum(axis=(2, 3)) / div

    def avg_pool2d_backward(self, gy, x_shape, kernel, stride, padding, ceil_mode=False,
                            count_include_pad=True):
        _, _, eh, ew = self._pool_geometry(x_shape, kernel, stride, padding, (1, 1), ceil_mode)
        div = self._avg_divisor(x_shape, kernel, stride, padding, ceil_mode, count_include_pad, gy.dtype)
        g = gy / div
        gy_taps = self.xp.broadcast_to(g, (kernel[0], kernel[1]) + g.shape)
        return self._taps_scatter(gy_taps, x_shape, kernel, stride, padding, (1, 1), (eh, ew))

    # -- resampling (the backward of pad / interpolate gathers) ---------------------------------
    def index_add_axis(self, g, index, axis, size):
        """Adjoint of ``take(a, index, axis)`` for a 1-D int ``index`` with values in
        ``[0, size)``: zeros shaped like ``g`` but ``size`` long on ``axis``, with each
        slice ``g[..., j, ...]`` added at position ``index[j]`` (repeats accumulate).

        Deterministic and without ``add.at`` (slow in NumPy, atomics on a GPU): the
        positions are split into rounds holding each target's r-th occurrence, so a round
        is one gather plus one fancy-index add without repeated targets. There are as many
        rounds as the most repeated target (2-4 for pads and linear resampling). The last
        axis is moved to the front first: whole-row copies are much faster there."""
        xp = self.xp
        last = axis == g.ndim - 1 and g.ndim > 1
        if last:
            g, axis = xp.ascontiguousarray(xp.moveaxis(g, axis, 0)), 0
        order = xp.argsort(index)        # any order of equal targets will do
        srt = index[order]
        rank = xp.arange(index.size) - xp.searchsorted(srt, srt, side="left")
        out = xp.zeros(g.shape[:axis] + (size,) + g.shape[axis + 1:], dtype=g.dtype)
        pre = (slice(None),) * axis
        for r in range(int(rank.max()) + 1 if index.size else 0):
            sel = rank == r
            out[pre + (srt[sel],)] += xp.take(g, order[sel], axis=axis)
        return xp.ascontiguousarray(xp.moveaxis(out, 0, -1)) if last else out

    # -- softmax family -------------------------------------------------------------------------------
    def log_softmax(self, x, axis):
        xp = self.xp
        if x.size == 0:  # an empty batch: nothing to normalise (max has no identity)
            return xp.zeros(x.shape, x.dtype)
        m = x.max(axis=axis, keepdims=True)
        # an all -inf row shifts by 0 (-> NaN, as PyTorch); a +inf max stays, so that row is
        # NaN throughout (inf - inf), as PyTorch's, not NaN at the +inf alone
        m = xp.where(m == -xp.inf, xp.zeros((), x.dtype), m)
        z = x - m
        return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))

    def softmax(self, x, axis):
        return self.xp.exp(self.log_softmax(x, axis))

    def softmax_cross_entropy_forward(self, logits, target):
        """logits (N, C), integer target (N,) in [0, C) -> (loss (N,), log_probs (N, C))."""
        check_class_indices(target, logits.shape[1])
        logp = self.log_softmax(logits, 1)
        loss = -self.xp.take_along_axis(logp, target[:, None].astype(self.xp.int64), axis=1)[:, 0]
        return loss, logp

    def softmax_cross_entropy_backward(self, logp, target, gloss):
        """d loss_i / d logits = (softmax - onehot(target)) * gloss_i, from saved log_probs."""
        xp = self.xp
        g = xp.exp(logp)
        rows = xp.arange(g.shape[0])
        g[rows, target] -= 1
        g *= gloss[:, None]
        return g

    # -- activations ----------------------------------------------------------------------------------
    def relu_backward(self, gy, y):
        return gy * (y > 0)

    def unary_backward(self, op, g, s):
        xp = self.xp
        if op == "exp" or op == "expm1":  # s = y: exp' = y, expm1' = y + 1
            return g * s if op == "exp" else g * (s + 1)
        if op == "tanh":                  # s = y
            return g * (1 - s * s)
        if op == "sigmoid":               # s = y
            return g * (s * (1 - s))
        if op == "sqrt":                  # s = y: 1 / (2 sqrt(x))
            return g / (s * 2)
        if op == "log":
            return g / s
        if op == "log1p":
            return g / (s + 1)
        if op == "abs":
            return g * xp.sign(s)
        if op == "sin":
            return g * xp.cos(s)
        if op == "cos":
            return -(g * xp.sin(s))
        if op == "atan":
            return g / (s * s + 1)
        raise ValueError(f"unary_backward: no derivative for op {op!r}; differentiable unary "
                         f"ops: {', '.join(sorted(UNARY_BACKWARD_FROM))}")

    # -- in-place optimizer updates ------------------------------------------------------------------
    def sgd_step_(self, p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
        """PyTorch's SGD: d = g + wd*p; buf = d (first step) or momentum*buf + (1-dampening)*d;
        d = d + momentum*buf (nesterov) or buf; p -= lr*d. ``buf`` updated in place."""
        d = g + weight_decay * p if weight_decay else g
        if momentum:
            if first:
                buf[...] = d
            else:
                buf *= momentum
                buf += (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p -= lr * d

    def adam_step_(self, p, g, m, v, lr, beta1, beta2, eps, weight_decay, step, decoupled):
        """PyTorch's Adam (``decoupled=False``, L2 added to the gradient) and AdamW
        (``decoupled=True``: p *= 1 - lr*wd). ``m``, ``v`` updated in place; ``step`` >= 1."""
        xp = self.xp
        if weight_decay:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        bc1 = 1 - beta1 ** step
        bc2 = 1 - beta2 ** step
        denom = xp.sqrt(v) / (bc2 ** 0.5) + eps
        p -= (lr / bc1) * (m / denom)
