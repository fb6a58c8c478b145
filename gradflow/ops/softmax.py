"""softmax and log_softmax along one axis (max-subtracted: stable for any logits)."""
from __future__ import annotations

from ..autograd import Function
from .reduce import norm_axes


class LogSoftmax(Function):
    """y = x - logsumexp(x); dx = g - softmax(x) * sum(g)."""

    @staticmethod
    def forward(ctx, x, axis):
        y = x.backend.log_softmax(x.array, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return gy - y.exp() * gy.sum(dim=ctx.axis, keepdim=True), None


class Softmax(Function):
    """y = exp(x) / sum(exp(x)); dx = y * (g - sum(g * y))."""

    @staticmethod
    def forward(ctx, x, axis):
        y = x.backend.softmax(x.array, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, gy):
        y, = ctx.saved_tensors
        return y * (gy - (gy * y).sum(dim=ctx.axis, keepdim=True)), None


def _float(x, op):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating tensor, got dtype {x.dtype}")
    return x


def _axis(dim, x, op):
    axes = norm_axes(dim, x.ndim, op)
    return axes[0] if axes else 0  # a 0-d tensor: NumPy reduces it along "axis 0"


def softmax(x, dim=-1):
    return Softmax.apply(_float(x, "softmax"), _axis(dim, x, "softmax"))


def log_softmax(x, dim=-1):
    return LogSoftmax.apply(_float(x, "log_softmax"), _axis(dim, x, "log_softmax"))
