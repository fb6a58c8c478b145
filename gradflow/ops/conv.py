"""2-D convolution (NCHW, weights (C_out, C_in/groups, kH, kW)) as one primitive
whose forward and backward call the backend's conv kernels."""
from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from ..geometry import conv_out_size, pair
from ..tensor import Tensor


def out_size(op, h, w, k, s, p, d):
    oh = conv_out_size(h, k[0], s[0], p[0], d[0])
    ow = conv_out_size(w, k[1], s[1], p[1], d[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(
            f"{op}: output size would be {oh}x{ow} for input {h}x{w}, kernel {k[0]}x{k[1]}, "
            f"stride {s}, padding {p}, dilation {d}; (N + 2P - D(F-1) - 1)/S + 1 must be >= 1 -- "
            f"use a larger input, more padding or a smaller kernel")
    return oh, ow


class Conv2dFn(Function):
    """y = conv2d(x, w) + b, one backend kernel. Its gradients are the two kernels below,
    each a Function, so that conv2d is differentiable to any order:
    dx = Conv2dGradInput(gy, w), dw = Conv2dGradWeight(x, gy), db = sum of gy."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        ctx.save_for_backward(x, w)
        ctx.geom = (stride, padding, dilation, groups)
        args = (x.array, w.array, None if b is None else b.array, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:  # the weight gradient may reuse the forward's im2col
            y, ctx.cols = x.backend.conv2d_forward_saved(*args)
            return y
        ctx.cols = None
        return x.backend.conv2d_forward(*args)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        if not is_grad_enabled():
            # nothing is recorded (a first-order backward): the same kernels as the two
            # Functions below, in one backend call that walks the batch once
            be = gy.backend
            grads = be.conv2d_backward(x.array, w.array, gy.array, *ctx.geom, need_dx=need[0],
                                       need_dw=need[1], need_db=need[2], saved=ctx.cols)
            return tuple(None if g is None else Tensor._make(g, be) for g in grads) + \
                (None,) * 4
        dx = Conv2dGradInput.apply(gy, w, x.shape, ctx.geom) if need[0] else None
        dw = Conv2dGradWeight.apply(x, gy, w.shape, ctx.geom, ctx.cols) if need[1] else None
        db = gy.sum(dim=(0, 2, 3)) if need[2] else None
        return dx, dw, db, None, None, None, None


class Conv2dGradInput(Function):
    """dx (``x_shape``) of conv2d from gy and w -- also conv_transpose2d's forward.
    Linear in each argument: d/dgy = conv2d(G, w), d/dw = Conv2dGradWeight(G, gy)."""

    @staticmethod
    def forward(ctx, gy, w, x_shape, geom):
        be = gy.backend
        ctx.save_for_backward(gy, w)
        ctx.geom = geom
        return be.conv2d_backward(be.empty(x_shape, gy.dtype), w.array, gy.array, *geom,
                                  need_dx=True, need_dw=False, need_db=False)[0]

    @staticmethod
    def backward(ctx, gg):
        gy, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        dgy = Conv2dFn.apply(gg, w, None, *ctx.geom) if need[0] else None
        dw = Conv2dGradWeight.apply(gg, gy, w.shape, ctx.geom, None) if need[1] else None
        return dgy, dw, None, None


class Conv2dGradWeight(Function):
    """dw (``w_shape``) of conv2d from x and gy (``cols``: the forward's saved im2col, or
    None). d/dx = Conv2dGradInput(gy, G), d/dgy = conv2d(x, G)."""

    @staticmethod
    def forward(ctx, x, gy, w_shape, geom, cols=None):
        be = x.backend
        ctx.save_for_backward(x, gy)
        ctx.geom = geom
        return be.conv2d_backward(x.array, be.empty(w_shape, x.dtype), gy.array, *geom,
                                  need_dx=False, need_dw=True, need_db=False, saved=cols)[1]

    @staticmethod
    def backward(ctx, gg):
        x, gy = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx = Conv2dGradInput.apply(gy, gg, x.shape, ctx.geom) if need[0] else None
        dgy = Conv2dFn.apply(x, gg, None, *ctx.geom) if need[1] else None
        return dx, dgy, None, None, None


def _same_padding(k, d, op):
    """Padding for padding='same' (stride 1): total d*(k-1) per dim, split as PyTorch does
    (total//2 before, the rest after). Returns the symmetric padding to use (the larger
    half) and, per dim, how many leading output rows/cols to crop when the split is odd."""
    pads, crop = [], []
    for kk, dd in zip(k, d):
        total = dd * (kk - 1)
        pads.append(total - total // 2)
        crop.append(total % 2)
    return tuple(pads), tuple(crop)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y (N, C_out, OH, OW) = x (N, C_in, H, W) * weight (C_out, C_in/groups, kH, kW) + bias.

    ``stride``/``padding``/``dilation``: int or (h, w); ``padding`` may be 'valid'
    or 'same' (stride 1). A 3-D ``x`` (C, H, W) is treated as a batch of one."""
    return conv2d_named(x, weight, bias, stride, padding, dilation, groups, "conv2d")


def conv2d_named(x, weight, bias, stride, padding, dilation, groups, op):
    """:func:`conv2d` whose errors name ``op`` (conv1d runs as a height-1 conv2d)."""
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected weight (C_out, C_in/groups, kH, kW), got shape {weight.shape}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if weight.shape[0] == 0:  # PyTorch rejects it too
        raise ValueError(f"{op}: weight {weight.shape} has 0 output channels; a convolution "
                         f"needs at least 1 (weight shape (C_out >= 1, C_in/groups, kH, kW))")
    k = weight.shape[2:]
    s = pair(stride, "stride", op)
    d = pair(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            if s != (1, 1):
                raise ValueError(f"{op}: padding='same' requires stride 1, got {s}")
            p, crop = _same_padding(k, d, op)
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        p = pair(padding, "padding", op, minimum=0)
    n, c, h, w = x.shape
    if c != weight.shape[1] * groups:
        raise ValueError(
            f"{op}: input has {c} channels (shape {x.shape}) but weight {weight.shape} with "
            f"groups={groups} expects {weight.shape[1] * groups}; C_in must equal "
            f"weight.shape[1] * groups")
    if weight.shape[0] % groups:
        raise ValueError(f"{op}: C_out={weight.shape[0]} is not divisible by groups={groups}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias shape {bias.shape} must be ({weight.shape[0]},)")
    for t in (weight, bias):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: input dtype {x.dtype} but parameter dtype {t.dtype}; "
                            f"no silent promotion -- convert one")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating input, got {x.dtype}")
    out_size(op, h, w, k, s, p, d)
    y = Conv2dFn.apply(x, weight, bias, s, p, d, groups)
    if padding == "same" and any(crop):  # even effective kernel: PyTorch pads one more after
        y = y[:, :, crop[0]:, crop[1]:]
    return y.reshape(y.shape[1:]) if unbatched else y


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution ("deconvolution"), PyTorch's argument order:
    x (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW) -> (N, C_out, OH, OW) with
    OH = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1."""
    op = "conv_transpose2d"
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"{op}: input and weight must be Tensors")
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C_in, H, W) and weight (C_in, C_out/groups, "
                         f"kH, kW), got {x.shape} and {weight.shape}")
    s, p, d = pair(stride, "stride", op), pair(padding, "padding", op, 0), pair(dilation, "dilation", op)
    op_ = pair(output_padding, "output_padding", op, 0)
    if op_[0] >= max(s[0], d[0]) or op_[1] >= max(s[1], d[1]):
        raise ValueError(f"{op}: output_padding {op_} must be smaller than stride {s} or dilation {d}")
    if x.shape[1] != weight.shape[0] or weight.shape[0] % groups:
        raise ValueError(f"{op}: input has {x.shape[1]} channels but weight {weight.shape} expects "
                         f"{weight.shape[0]} (weight.shape[0] = C_in, divisible by groups={groups})")
    c_out = weight.shape[1] * groups
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias shape {bias.shape} must be ({c_out},)")
    for t in (weight, bias):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: input dtype {x.dtype} but parameter dtype {t.dtype}; "
                            f"no silent promotion -- convert one")
    k = weight.shape[2:]
    out_hw = tuple((h - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op_[i] + 1
                   for i, h in enumerate(x.shape[2:]))
    if min(out_hw) <= 0:
        raise ValueError(f"{op}: output size would be {out_hw} for input {x.shape[2:]}, kernel {k}, "
                         f"stride {s}, padding {p}; it must be positive")
    # the adjoint of conv2d: its input-gradient kernel, with weight (C_in, C_out/G, kH, kW)
    y_shape = (x.shape[0], weight.shape[1] * groups) + tuple(out_hw)
    y = Conv2dGradInput.apply(x, weight, y_shape, (s, p, d, groups))
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y.reshape(y.shape[1:]) if unbatched else y
