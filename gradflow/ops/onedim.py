"""1-D convolution and pooling over (N, C, L) (or (C, L)) input, as the 2-D primitives
on a height-1 image: (N, C, 1, L) with (1, k) windows. Same gradients, same kernels."""
from __future__ import annotations

from ..tensor import Tensor
from .conv import conv2d_named
from .pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d


def _one(v, name, op):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
        v = v[0]
    return int(v)


def _as_2d(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{op}: expected input (N, C, L) or (C, L), got shape {x.shape}")
    return x.unsqueeze(-2)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y (N, C_out, L_out) = x (N, C_in, L) * weight (C_out, C_in/groups, k) + bias."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"conv1d: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be (out_channels, in_channels/groups, k), got "
                         f"shape {weight.shape}")
    pad = padding if isinstance(padding, str) else (0, _one(padding, "padding", "conv1d"))
    x2 = _as_2d(x, "conv1d")
    c = x2.shape[-3]
    if isinstance(groups, int) and groups >= 1 and c != weight.shape[1] * groups:
        raise ValueError(f"conv1d: input has {c} channels (shape {x.shape}) but weight "
                         f"{weight.shape} with groups={groups} expects {weight.shape[1] * groups}; "
                         f"C_in must equal weight.shape[1] * groups")
    y = conv2d_named(x2, weight.unsqueeze(2), bias, (1, _one(stride, "stride", "conv1d")), pad,
                     (1, _one(dilation, "dilation", "conv1d")), groups, "conv1d")
    return y.squeeze(-2)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    if return_indices:
        raise NotImplementedError("max_pool1d: return_indices=True is not supported")
    k = _one(kernel_size, "kernel_size", "max_pool1d")
    s = k if stride is None else _one(stride, "stride", "max_pool1d")
    return max_pool2d(_as_2d(x, "max_pool1d"), (1, k), (1, s),
                      (0, _one(padding, "padding", "max_pool1d")),
                      (1, _one(dilation, "dilation", "max_pool1d")), ceil_mode).squeeze(-2)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    k = _one(kernel_size, "kernel_size", "avg_pool1d")
    s = k if stride is None else _one(stride, "stride", "avg_pool1d")
    return avg_pool2d(_as_2d(x, "avg_pool1d"), (1, k), (1, s),
                      (0, _one(padding, "padding", "avg_pool1d")), ceil_mode,
                      count_include_pad).squeeze(-2)


def adaptive_avg_pool1d(x, output_size):
    return adaptive_avg_pool2d(_as_2d(x, "adaptive_avg_pool1d"),
                               (1, _one(output_size, "output_size", "adaptive_avg_pool1d"))
                               ).squeeze(-2)


def adaptive_max_pool1d(x, output_size, return_indices=False):
    return adaptive_max_pool2d(_as_2d(x, "adaptive_max_pool1d"),
                               (1, _one(output_size, "output_size", "adaptive_max_pool1d")),
                               return_indices).squeeze(-2)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 1-D convolution: x (N, C_in, L), weight (C_in, C_out/groups, k) ->
    (N, C_out, L_out), as the 2-D one on a height-1 image."""
    from .conv import conv_transpose2d
    if weight.ndim != 3:
        raise ValueError(f"conv_transpose1d: weight must be (in_channels, out_channels/groups, "
                         f"k), got shape {weight.shape}")
    op = "conv_transpose1d"
    y = conv_transpose2d(_as_2d(x, op), weight.unsqueeze(2), bias,
                         (1, _one(stride, "stride", op)), (0, _one(padding, "padding", op)),
                         (0, _one(output_padding, "output_padding", op)), groups,
                         (1, _one(dilation, "dilation", op)))
    return y.squeeze(-2)
