"""``unfold`` (im2col) and ``fold`` (col2im) as PyTorch's ``F.unfold`` / ``F.fold``.

Layout as PyTorch: unfold turns (N, C, H, W) into (N, C*kH*kW, L) with the channel
outermost and the kernel taps row-major inside it, and L = OH*OW sliding blocks in
row-major order; fold sums such columns back into (N, C, H, W). They are adjoint to
each other, so each one's backward is the other. Both run on the backend's
``im2col`` / ``col2im`` kernels, whose (N, C, kH, kW, OH, OW) layout is exactly this
one reshaped.
"""
from __future__ import annotations

from ..autograd import Function
from ..geometry import conv_out_size, pair
from ..tensor import Tensor

_VALID = "an int or a pair of ints"


def _geometry(op, kernel_size, dilation, padding, stride):
    return (pair(kernel_size, "kernel_size", op), pair(dilation, "dilation", op),
            pair(padding, "padding", op, minimum=0), pair(stride, "stride", op))


def _blocks(op, hw, k, d, p, s):
    """(OH, OW) sliding blocks over an (H, W) image, checked positive."""
    out = tuple(conv_out_size(hw[i], k[i], s[i], p[i], d[i]) for i in range(2))
    if min(out) <= 0:
        raise ValueError(
            f"{op}: no sliding blocks fit: spatial size {tuple(hw)} with kernel_size {k}, "
            f"dilation {d}, padding {p}, stride {s} gives {out[0]}x{out[1]} blocks; "
            f"(size + 2*padding - dilation*(kernel-1) - 1)/stride + 1 must be >= 1")
    return out


def _unfold_array(be, x, k, d, p, s):
    n, c = x.shape[:2]
    cols = be.im2col(x, k, s, p, d)  # (N, C, kH, kW, OH, OW), a strided view of x
    oh, ow = cols.shape[4], cols.shape[5]
    return be.reshape(be.copy(cols), (n, c * k[0] * k[1], oh * ow))  # own memory, as torch


def _fold_array(be, cols, out_hw, k, d, p, s, blocks):
    n, ckk = cols.shape[:2]
    c = ckk // (k[0] * k[1])
    cols6 = be.reshape(cols, (n, c, k[0], k[1]) + tuple(blocks))
    out = be.col2im(cols6, (n, c) + tuple(out_hw), k, s, p, d)
    return out if be.is_contiguous(out) else be.copy(out)


class UnfoldFn(Function):
    """Image -> columns (im2col); its adjoint, and so its backward, is FoldFn."""

    @staticmethod
    def forward(ctx, x, k, d, p, s):
        ctx.geom = (tuple(x.shape[2:]), k, d, p, s)
        return _unfold_array(x.backend, x.array, k, d, p, s)

    @staticmethod
    def backward(ctx, g):
        hw, k, d, p, s = ctx.geom
        blocks = _blocks("unfold", hw, k, d, p, s)
        return FoldFn.apply(g, hw, k, d, p, s, blocks), None, None, None, None


class FoldFn(Function):
    """Columns -> image, overlaps summed (col2im); its backward is UnfoldFn."""

    @staticmethod
    def forward(ctx, cols, out_hw, k, d, p, s, blocks):
        ctx.geom = (k, d, p, s)
        return _fold_array(cols.backend, cols.array, out_hw, k, d, p, s, blocks)

    @staticmethod
    def backward(ctx, g):
        k, d, p, s = ctx.geom
        return UnfoldFn.apply(g, k, d, p, s), None, None, None, None, None, None


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding local blocks of a batched (N, C, H, W) or unbatched (C, H, W) image as
    columns: (N, C*kH*kW, L), L = number of blocks (PyTorch's ``F.unfold``).
    ``unfold(x, k) `` followed by a matmul with ``w.view(C_out, -1)`` is conv2d."""
    op = "unfold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (unbatched C, H, W) or 4-D (batched N, C, H, W) "
                         f"input, got shape {input.shape}")
    k, d, p, s = _geometry(op, kernel_size, dilation, padding, stride)
    x = input if input.ndim == 4 else input.reshape((1,) + input.shape)
    _blocks(op, x.shape[2:], k, d, p, s)
    y = UnfoldFn.apply(x, k, d, p, s)
    return y if input.ndim == 4 else y.reshape(y.shape[1:])


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns (N, C*kH*kW, L) back into an (N, C, H, W) image with ``output_size``
    (H, W) -- overlapping blocks add up (PyTorch's ``F.fold``, the adjoint of unfold).
    An unbatched (C*kH*kW, L) input gives (C, H, W)."""
    op = "fold"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected a 2-D (unbatched C*kH*kW, L) or 3-D (batched N, "
                         f"C*kH*kW, L) input, got shape {input.shape}")
    out_hw = pair(output_size, "output_size", op)
    k, d, p, s = _geometry(op, kernel_size, dilation, padding, stride)
    x = input if input.ndim == 3 else input.reshape((1,) + input.shape)
    if x.shape[1] % (k[0] * k[1]):
        raise ValueError(f"{op}: input dimension 1 ({x.shape[1]}, shape {input.shape}) must be "
                         f"divisible by the product of kernel_size {k} = {k[0] * k[1]} "
                         f"(it is C * kH * kW)")
    blocks = _blocks(op, out_hw, k, d, p, s)
    if x.shape[2] != blocks[0] * blocks[1]:
        raise ValueError(
            f"{op}: output_size {out_hw} with kernel_size {k}, dilation {d}, padding {p}, "
            f"stride {s} has {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]} sliding "
            f"blocks, but the input (shape {input.shape}) has {x.shape[2]} in its last dim")
    y = FoldFn.apply(x, out_hw, k, d, p, s, blocks)
    return y if input.ndim == 3 else y.reshape(y.shape[1:])
