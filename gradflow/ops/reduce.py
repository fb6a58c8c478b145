"""Reductions over ``axis`` (None, int or tuple; negative counts from the end)."""
from __future__ import annotations

from .. import dtypes
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import where
from .shape import Clone, GetItem


def norm_axes(axis, ndim, op):
    """``axis`` as a sorted tuple of non-negative ints (``None`` and, as PyTorch, an empty
    tuple -> all axes). A 0-d tensor accepts dim 0 and -1 and has no axes to reduce."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, bool) or not (hasattr(axis, "__index__") or isinstance(axis, (tuple, list))):
        raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got "
                        f"{type(axis).__name__} {axis!r}")
    axes = (axis.__index__(),) if hasattr(axis, "__index__") else tuple(axis)  # numpy ints too
    if not axes:
        return tuple(range(ndim))
    out = []
    for a in axes:
        if isinstance(a, bool) or not hasattr(a, "__index__"):
            raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got {axis!r}")
        a = a.__index__()
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions "
                             f"(valid: {-ndim}..{ndim - 1})")
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out)) if ndim else ()


def _expand_back(g, in_shape, axes, keepdims):
    """Broadcast a reduced Tensor (a gradient, or the reduction's output) back over
    ``in_shape`` (differentiable)."""
    if not keepdims:
        g = g.reshape(tuple(1 if i in axes else s for i, s in enumerate(in_shape)))
    return g.broadcast_to(in_shape)


def _const(be, array):
    """A backend array as a Tensor outside the graph (masks, counts)."""
    return Tensor._make(array, be)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.backend.reduce("sum", x.array, axes, keepdims)

    @staticmethod
    def backward(ctx, gy):
        return _expand_back(gy, ctx.shape, ctx.axes, ctx.keepdims), None, None


def _int64(x):
    """Integer and bool tensors sum and multiply in int64 (PyTorch)."""
    return x.to(dtypes.int64) if x.dtype.kind in "biu" and x.dtype != dtypes.int64 else x


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors torch.sum
    axes = norm_axes(axis, x.ndim, "sum")
    if x.dtype.kind != "f":
        x = _int64(x)
    return Sum.apply(x, axes, keepdims)


def mean(x, axis=None, keepdims=False):
    if x.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating tensor, got dtype {x.dtype}; use .float() first")
    axes = norm_axes(axis, x.ndim, "mean")
    n = 1
    for a in axes:
        n *= x.shape[a]
    return Sum.apply(x, axes, keepdims) * (1.0 / n if n else float("nan"))  # empty: NaN (PyTorch)


def var(x, axis=None, keepdims=False, ddof=1):
    axes = norm_axes(axis, x.ndim, "var")
    n = 1
    for a in axes:
        n *= x.shape[a]
    d = x - mean(x, axes, True)
    # n <= ddof (e.g. the unbiased variance of one element): NaN, as PyTorch, not 0
    return sum(d * d, axes, keepdims) * (1.0 / (n - ddof) if n > ddof else float("nan"))


class Prod(Function):
    @staticmethod
    def forward(ctx, x, axes, keepdims):
        y = x.backend.reduce("prod", x.array, axes, keepdims)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y

    @staticmethod
    def backward(ctx, gy):
        # d prod / d x_i = prod / x_i where no factor is zero; where one is, the product of
        # the others (the non-zero factors) at the zero, 0 elsewhere (PyTorch)
        x, y = ctx.saved_tensors
        shape, axes = x.shape, ctx.axes
        y = _expand_back(y, shape, axes, ctx.keepdims)
        g = _expand_back(gy, shape, axes, ctx.keepdims)
        is0 = x == 0
        if not is0.any():
            return g * y / x, None, None
        safe = where(is0, 1.0, x)
        others = Prod.apply(safe, axes, True)
        n0 = is0.sum(dim=axes, keepdim=True)
        at0 = where(n0 == 1, others, 0.0)
        return g * where(is0, at0.broadcast_to(shape), y / safe), None, None


def prod(x, axis=None, keepdims=False):
    if x.dtype.kind != "f":
        x = _int64(x)
    return Prod.apply(x, norm_axes(axis, x.ndim, "prod"), keepdims)


class Norm2(Function):
    """Euclidean norm over axes; its gradient x / ||x|| is 0 where the norm is 0 (the
    subgradient PyTorch picks), not 0/0."""

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        be = x.backend
        y = be.unary("sqrt", be.reduce("sum", be.binary("mul", x.array, x.array), axes, keepdims))
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        y = _expand_back(y, x.shape, ctx.axes, ctx.keepdims)
        g = _expand_back(gy, x.shape, ctx.axes, ctx.keepdims)
        nz = y != 0
        return where(nz, g * x / where(nz, y, 1.0), 0.0), None, None


def norm2(x, axis=None, keepdims=False):
    if x.dtype.kind != "f":
        raise TypeError(f"norm: needs a floating tensor, got dtype {x.dtype}")
    return Norm2.apply(x, norm_axes(axis, x.ndim, "norm"), keepdims)


class MinMax(Function):
    """max/min over axes; the gradient is shared equally among tied extremes."""

    @staticmethod
    def forward(ctx, x, op, axes, keepdims):
        be = x.backend
        y = be.reduce(op, x.array, axes, keepdims)
        ctx.save_for_backward(x, y)
        ctx.axes, ctx.keepdims = axes, keepdims
        return y

    @staticmethod
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        shape = x.shape
        mask = (x == _expand_back(y, shape, ctx.axes, ctx.keepdims).detach()).to(gy.dtype)
        count = mask.sum(dim=ctx.axes, keepdim=True)
        return _expand_back(gy, shape, ctx.axes, ctx.keepdims) * (mask / count), None, None, None


def _check_empty(op, x, axes):
    """Reducing a zero-size dim to its max/min (or arg-) has no answer: PyTorch raises;
    empty dims that are kept are fine (the result is empty too)."""
    if x.array.size == 0 and any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot reduce over a zero-size dimension of a tensor of "
                         f"shape {x.shape} (dims {axes}); the result has no identity")


def minmax(op, x, axis=None, keepdims=False):
    axes = norm_axes(axis, x.ndim, op)
    if x.array.size == 0:
        _check_empty(op, x, axes)
    return MinMax.apply(x, op, axes, keepdims)


def select_minmax(op, x, dim, keepdims=False):
    """PyTorch's ``x.max(dim)`` / ``x.min(dim)``: (values, int64 indices) along one dim."""
    axes = norm_axes(dim, x.ndim, op)
    be = x.backend
    if x.ndim == 0:
        return x, Tensor._make(be.zeros((), dtypes.int64), be)
    axis = axes[0]
    if x.array.size == 0:
        _check_empty(op, x, axes)
        kept = x.shape[:axis] + ((1,) if keepdims else ()) + x.shape[axis + 1:]
        return x.reshape(-1)[:0].reshape(kept), Tensor._make(be.zeros(kept, dtypes.int64), be)
    idx = be.astype(be.arg_reduce("arg" + op, x.array, axis, True), dtypes.int64)
    index = []
    for d, n in enumerate(x.shape):
        if d == axis:
            index.append(idx)
        else:
            r = be.arange(0, n, 1, dtypes.int64)
            index.append(be.reshape(r, tuple(n if i == d else 1 for i in range(x.ndim))))
    values = GetItem.apply(x, tuple(index), True)
    indices = Tensor._make(idx, be)
    if not keepdims:
        kept = x.shape[:axis] + x.shape[axis + 1:]
        values, indices = values.reshape(kept), indices.reshape(kept)
    return values, indices


def argminmax(op, x, axis=None, keepdims=False):
    """Indices (int64) of the extreme; not differentiable."""
    if x.dtype.kind == "b":
        raise TypeError(f"{op}: does not support bool tensors (PyTorch neither); convert with "
                        f".long() first")
    if axis is not None:
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"{op}: dim must be one int, got {axis!r}")
        axes = norm_axes(axis, x.ndim, op)
        if x.ndim == 0:
            return Tensor._make(x.backend.zeros((), dtypes.int64), x.backend)
        _check_empty(op, x, axes)
        axis = axes[0]
    elif x.array.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {x.shape}")
    arr = x.backend.arg_reduce(op, x.array, axis, keepdims)
    return Tensor._make(x.backend.astype(arr, dtypes.int64), x.backend)


class CumSum(Function):
    """Running sum along ``axis``; its gradient is the reversed running sum of the
    output gradient."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return x.backend.cumsum(x.array, axis)

    @staticmethod
    def backward(ctx, gy):
        a = ctx.axis
        rev = (slice(None),) * a + (slice(None, None, -1),)
        return CumSum.apply(gy[rev], a)[rev], None


def cumsum(x, axis):
    axes = norm_axes(axis, x.ndim, "cumsum")
    if x.dtype.kind != "f":
        x = _int64(x)  # PyTorch: integer and bool running sums are int64
    if not axes:  # 0-d: itself
        return Clone.apply(x)
    return CumSum.apply(x, axes[0])


def logsumexp(x, axis, keepdims=False):
    """log(sum(exp(x))) along ``axis``, shifted by the (constant) max for stability."""
    axes = norm_axes(axis, x.ndim, "logsumexp")
    if x.array.size == 0:  # an empty sum is 0: log gives -inf (PyTorch)
        kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        m = Tensor._make(x.backend.zeros(kept, x.dtype), x.backend)
        out = sum((x - m).exp(), axes, True).log()
        return out if keepdims else out.reshape(tuple(s for i, s in enumerate(out.shape)
                                                      if i not in axes))
    m = Tensor._make(x.backend.reduce("max", x.array, axes, True), x.backend)
    m = Tensor._make(x.backend.where(x.backend.classify("isfinite", m.array), m.array,
                                     x.backend.zeros((), x.dtype)), x.backend)
    out = sum((x - m).exp(), axes, True).log() + m
    return out if keepdims else out.reshape(tuple(s for i, s in enumerate(out.shape) if i not in axes))
