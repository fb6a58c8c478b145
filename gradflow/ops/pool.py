"""2-D pooling primitives (NCHW): max (with argmax saved for backward), average,
and power-average (LP) pooling built on average pooling."""
from __future__ import annotations

import math
from numbers import Integral

from ..autograd import Function
from ..geometry import conv_out_size, pair
from ..tensor import Tensor
from .reduce import select_minmax
from .shape import cat


def _geometry(op, x, kernel_size, stride, padding, dilation, ceil_mode):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating input, got {x.dtype}")
    k = pair(kernel_size, "kernel_size", op)
    s = k if stride is None or stride == [] else pair(stride, "stride", op)
    p = pair(padding, "padding", op, minimum=0)
    d = pair(dilation, "dilation", op)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    h, w = x.shape[-2:]
    oh = conv_out_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = conv_out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"{op}: output size would be {oh}x{ow} for input {h}x{w} with kernel {k}, "
                         f"stride {s}, padding {p}; the input must be at least the (dilated) kernel")
    return k, s, p, d


def _batched(x):
    return (x.reshape((1,) + x.shape), True) if x.ndim == 3 else (x, False)


class MaxPool2dFn(Function):
    """Window maxima; the backend returns each window's argmax (a tap index), kept on ctx.
    Gradients: MaxPool2dGrad scatters gy to the argmax positions; its adjoint
    MaxPool2dGather picks them, and each is the other's backward."""

    @staticmethod
    def forward(ctx, x, k, s, p, d, ceil_mode):
        y, idx = x.backend.max_pool2d_forward(x.array, k, s, p, d, ceil_mode)
        ctx.idx, ctx.shape, ctx.geom = idx, x.shape, (k, s, p, d, ceil_mode)
        return y

    @staticmethod
    def backward(ctx, gy):
        return MaxPool2dGrad.apply(gy, ctx.idx, ctx.shape, ctx.geom), None, None, None, None, None


class MaxPool2dGrad(Function):
    """dx (``x_shape``): gy added at each window's argmax."""

    @staticmethod
    def forward(ctx, gy, idx, x_shape, geom):
        ctx.idx, ctx.geom = idx, geom
        return gy.backend.max_pool2d_backward(gy.array, idx, x_shape, *geom)

    @staticmethod
    def backward(ctx, gg):
        return MaxPool2dGather.apply(gg, ctx.idx, ctx.geom), None, None, None


class MaxPool2dGather(Function):
    """(N, C, OH, OW): x at each window's argmax (the adjoint of MaxPool2dGrad)."""

    @staticmethod
    def forward(ctx, x, idx, geom):
        ctx.idx, ctx.geom, ctx.shape = idx, geom, x.shape
        return x.backend.max_pool2d_gather(x.array, idx, *geom)

    @staticmethod
    def backward(ctx, gg):
        return MaxPool2dGrad.apply(gg, ctx.idx, ctx.shape, ctx.geom), None, None


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kH x kW windows. ``return_indices`` also gives PyTorch-style flat
    indices into each (H, W) plane."""
    k, s, p, d = _geometry("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    xb, unb = _batched(x)
    y = MaxPool2dFn.apply(xb, k, s, p, d, ceil_mode)
    if return_indices:
        be = x.backend
        # recover the tap index from the forward's saved argmax (recompute: cheap, no graph)
        _, tap = be.max_pool2d_forward(xb.array, k, s, p, d, ceil_mode)
        tap = be.astype(tap, "int64")  # backends may store taps as int8
        oh, ow = y.shape[2:]
        ih = be.arange(0, oh, 1, tap.dtype).reshape(oh, 1) * s[0] - p[0] + (tap // k[1]) * d[0]
        iw = be.arange(0, ow, 1, tap.dtype).reshape(1, ow) * s[1] - p[1] + (tap % k[1]) * d[1]
        idx = Tensor._make(be.astype(ih * xb.shape[3] + iw, "int64"), be)
        if unb:
            return y.reshape(y.shape[1:]), idx.reshape(idx.shape[1:])
        return y, idx
    return y.reshape(y.shape[1:]) if unb else y


class AvgPool2dFn(Function):
    """Average pooling; with ``divisor`` (``divisor_override``) each window's sum (zero
    padding included) is divided by that number instead: the backend's
    count_include_pad average times ``count / divisor``, an (OH, OW) factor ``scale``.
    Linear: the backward is AvgPool2dGrad, whose backward is this again."""

    @staticmethod
    def forward(ctx, x, k, s, p, ceil_mode, count_include_pad, divisor=None, scale=None):
        be = x.backend
        ctx.shape, ctx.geom = x.shape, (k, s, p, ceil_mode, count_include_pad)
        y = be.avg_pool2d_forward(x.array, k, s, p, ceil_mode, count_include_pad)
        if divisor is not None and scale is None:
            scale = _override_scale(be, x.shape, y.shape, k, s, p, divisor, x.dtype)
        ctx.scale = scale
        return y if scale is None else be.binary("mul", y, scale)

    @staticmethod
    def backward(ctx, gy):
        return (AvgPool2dGrad.apply(gy, ctx.shape, ctx.geom, ctx.scale),
                None, None, None, None, None, None, None)


class AvgPool2dGrad(Function):
    """dx (``x_shape``) of average pooling: each gy (times ``scale``) spread over its window."""

    @staticmethod
    def forward(ctx, gy, x_shape, geom, scale):
        be = gy.backend
        ctx.geom, ctx.scale = geom, scale
        g = gy.array if scale is None else be.binary("mul", gy.array, scale)
        return be.avg_pool2d_backward(g, x_shape, *geom)

    @staticmethod
    def backward(ctx, gg):
        k, s, p, ceil_mode, cip = ctx.geom
        return AvgPool2dFn.apply(gg, k, s, p, ceil_mode, cip, None, ctx.scale), None, None, None


def _window_counts(size, n_out, k, s, p):
    """Per output position of one dim, how many input-or-padding positions its window
    covers (PyTorch's count_include_pad divisor: the window clipped to [-p, size + p))."""
    return [min(i * s - p + k, size + p) - (i * s - p) for i in range(n_out)]


def _override_scale(be, x_shape, y_shape, k, s, p, divisor, dtype):
    """(OH, OW) factors turning the count_include_pad average into sum / divisor."""
    ch = _window_counts(x_shape[-2], y_shape[-2], k[0], s[0], p[0])
    cw = _window_counts(x_shape[-1], y_shape[-1], k[1], s[1], p[1])
    return be.asarray([[a * b / divisor for b in cw] for a in ch], dtype=dtype)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kH x kW windows of (N, C, H, W) or (C, H, W) input. ``divisor_override``
    (a nonzero int) divides each window's sum (zero padding included) by that number
    instead of the window size, as PyTorch; ``count_include_pad`` is then irrelevant."""
    k, s, p, _ = _geometry("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    xb, unb = _batched(x)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, Integral) or \
                divisor_override == 0:
            raise ValueError(f"avg_pool2d: divisor_override must be a nonzero int, got "
                             f"{divisor_override!r} (input shape {x.shape}, kernel {k})")
        divisor_override = int(divisor_override)
        count_include_pad = True  # the rescaling starts from the padded-window average
    y = AvgPool2dFn.apply(xb, k, s, p, ceil_mode, count_include_pad, divisor_override)
    return y.reshape(y.shape[1:]) if unb else y


def lp_pool2d(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """(sum over the window of x**p) ** (1/p); p=2 is L2 pooling."""
    k = pair(kernel_size, "kernel_size", "lp_pool2d")
    p = float(norm_type)
    if p <= 0:
        raise ValueError(f"lp_pool2d: norm_type must be > 0, got {norm_type}")
    powered = x * x if p == 2 else x ** p
    s = avg_pool2d(powered, k, stride, 0, ceil_mode) * float(k[0] * k[1])
    return s.sqrt() if p == 2 else s ** (1.0 / p)


def _adaptive_windows(size, out):
    """PyTorch's adaptive windows along one axis: window i spans
    floor(i*size/out) .. ceil((i+1)*size/out)."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _adaptive_grid(x, oh, ow, reduce_window):
    """``reduce_window(x[..., h0:h1, w0:w1])`` (keeping the two window dims as size 1)
    for every adaptive window, assembled into (..., oh, ow)."""
    h, w = x.shape[-2:]
    rows = [cat([reduce_window(x[..., h0:h1, w0:w1]) for w0, w1 in _adaptive_windows(w, ow)],
                dim=-1) for h0, h1 in _adaptive_windows(h, oh)]
    return cat(rows, dim=-2)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size (one avg_pool2d when the sizes divide)."""
    oh, ow = pair(output_size, "output_size", "adaptive_avg_pool2d") if not (
        isinstance(output_size, (tuple, list)) and None in output_size) else output_size
    h, w = x.shape[-2:]
    oh, ow = oh or h, ow or w
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    return _adaptive_grid(x, oh, ow, lambda win: win.mean(axis=(-2, -1), keepdims=True))


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Max over the adaptive windows of (N, C, H, W) (or (C, H, W)): output cell i
    spans rows floor(i*H/oh) .. ceil((i+1)*H/oh), as PyTorch. Each window's gradient goes
    to its (first) maximum."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool2d: return_indices=True is not supported")
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_max_pool2d: expected (N, C, H, W) or (C, H, W), got shape "
                         f"{x.shape}")
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    h, w = x.shape[-2:]
    oh, ow = h if oh is None else oh, w if ow is None else ow
    if oh <= 0 or ow <= 0:
        raise ValueError(f"adaptive_max_pool2d: output_size must be positive, got {output_size}")
    if h % oh == 0 and w % ow == 0:  # equal windows: one reshape
        kh, kw = h // oh, w // ow
        y = x.reshape(x.shape[:-2] + (oh, kh, ow, kw))
        y = y.permute(*range(x.ndim - 2), x.ndim - 2, x.ndim, x.ndim - 1, x.ndim + 1)
        y = y.reshape(x.shape[:-2] + (oh, ow, kh * kw))
        return select_minmax("max", y, y.ndim - 1)[0]
    return _adaptive_grid(x, oh, ow, lambda win: select_minmax(
        "max", win.reshape(win.shape[:-2] + (1, win.shape[-2] * win.shape[-1])), win.ndim - 1,
        keepdims=True)[0])
