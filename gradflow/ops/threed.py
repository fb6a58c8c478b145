"""3-D (volumetric, NCDHW) convolution and pooling, composed from the 2-D primitives.

* ``conv3d``: a sum over the kernel-depth taps of one batched ``conv2d`` each. For tap
  ``t`` the depth slices ``x[:, :, t*dD :: sD]`` (after zero depth padding), one per
  output depth, are folded into the batch: (N*OD, C, H, W) * weight[:, :, t] ->
  (N*OD, C_out, OH, OW). The only Python loop is over the kD taps; gradients come from
  the conv2d, slicing, padding and reshape backward passes.
* max / average / adaptive pooling over a box are separable: pool (H, W) with the 2-D
  primitive on (N, C*D, H, W), then pool D with a (kD, 1) window on (N*C, 1, D, OH*OW).
  PyTorch's divisors (count_include_pad, ceil_mode clipping) are products of per-axis
  counts, so the two passes reproduce them exactly; max of maxes is the max.
"""
from __future__ import annotations

from ..geometry import triple
from ..tensor import Tensor
from .conv import conv2d, conv_transpose2d
from .pool import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from .resample import pad


def _batched5(x, op, what="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(x).__name__}")
    if x.ndim == 4:
        return x.unsqueeze(0), True
    if x.ndim != 5:
        raise ValueError(f"{op}: expected input (N, C, D, H, W) or (C, D, H, W), got shape "
                         f"{x.shape} ({x.ndim}-D)")
    return x, False


def _pad_depth(x, before, after):
    if not (before or after):
        return x
    return pad(x, (0, 0, 0, 0, before, after))


# ---------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------

def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y (N, C_out, OD, OH, OW) = x (N, C_in, D, H, W) * weight (C_out, C_in/groups, kD,
    kH, kW) + bias. ``stride``/``padding``/``dilation``: int or (d, h, w); ``padding``
    may be 'valid' or 'same' (stride 1). A 4-D ``x`` (C, D, H, W) is a batch of one."""
    op = "conv3d"
    x, unb = _batched5(x, op)
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim != 5:
        raise ValueError(f"{op}: expected weight (C_out, C_in/groups, kD, kH, kW), got shape "
                         f"{weight.shape}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    n, c, d_in, h, w = x.shape
    if c != weight.shape[1] * groups:
        raise ValueError(f"{op}: input has {c} channels (shape {x.shape}) but weight "
                         f"{weight.shape} with groups={groups} expects {weight.shape[1] * groups}")
    kd = weight.shape[2]
    s = triple(stride, "stride", op)
    dl = triple(dilation, "dilation", op)
    if isinstance(padding, str):
        if padding == "valid":
            pd, p2 = (0, 0), (0, 0)
        elif padding == "same":
            if s != (1, 1, 1):
                raise ValueError(f"{op}: padding='same' requires stride 1, got {s}")
            total = dl[0] * (kd - 1)
            pd, p2 = (total // 2, total - total // 2), "same"
        else:
            raise ValueError(f"{op}: padding must be an int, a triple, 'valid' or 'same', got "
                             f"{padding!r}")
    else:
        p = triple(padding, "padding", op, minimum=0)
        pd, p2 = (p[0], p[0]), p[1:]
    od = (d_in + pd[0] + pd[1] - dl[0] * (kd - 1) - 1) // s[0] + 1
    if od <= 0:
        raise ValueError(f"{op}: output depth would be {od} for input depth {d_in}, kernel depth "
                         f"{kd}, stride {s[0]}, padding {pd}, dilation {dl[0]}; use a larger "
                         f"input, more padding or a smaller kernel")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (weight.shape[0],)):
        raise ValueError(f"{op}: bias must be a Tensor of shape ({weight.shape[0]},), got "
                         f"{getattr(bias, 'shape', bias)!r}")
    xp = _pad_depth(x, *pd)
    y = None
    for t in range(kd):  # one batched conv2d per kernel-depth tap
        start = t * dl[0]
        sl = xp[:, :, start:start + s[0] * (od - 1) + 1:s[0]]  # (N, C, OD, H, W)
        sl = sl.permute(0, 2, 1, 3, 4).reshape(n * od, c, h, w)
        z = conv2d(sl, weight[:, :, t], bias if t == 0 else None, s[1:], p2, dl[1:], groups)
        y = z if y is None else y + z
    oh, ow = y.shape[-2:]
    y = y.reshape(n, od, weight.shape[0], oh, ow).permute(0, 2, 1, 3, 4)
    return y.squeeze(0) if unb else y


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 3-D convolution, PyTorch's argument order: x (N, C_in, D, H, W), weight
    (C_in, C_out/groups, kD, kH, kW) -> (N, C_out, OD, OH, OW) with
    OD = (D - 1) * stride - 2 * padding + dilation * (kD - 1) + output_padding + 1.

    Per kernel-depth tap one batched conv_transpose2d over (N*D, C_in, H, W); its
    outputs land at depths ``t*dD + i*sD`` (zero-interleaved by ``stride``, shifted by
    ``t*dD``), then the depth padding is cropped."""
    op = "conv_transpose3d"
    x, unb = _batched5(x, op)
    if not isinstance(weight, Tensor) or weight.ndim != 5:
        raise ValueError(f"{op}: expected weight (C_in, C_out/groups, kD, kH, kW), got "
                         f"{getattr(weight, 'shape', weight)!r}")
    s = triple(stride, "stride", op)
    p = triple(padding, "padding", op, minimum=0)
    dl = triple(dilation, "dilation", op)
    opad = triple(output_padding, "output_padding", op, minimum=0)
    if any(o >= max(a, b) for o, a, b in zip(opad, s, dl)):
        raise ValueError(f"{op}: output_padding {opad} must be smaller than stride {s} or "
                         f"dilation {dl}")
    n, c, d_in, h, w = x.shape
    kd = weight.shape[2]
    full = (d_in - 1) * s[0] + dl[0] * (kd - 1) + 1  # uncropped output depth
    od = full - 2 * p[0] + opad[0]
    if od <= 0:
        raise ValueError(f"{op}: output depth would be {od} for input depth {d_in}, kernel "
                         f"depth {kd}, stride {s[0]}, padding {p[0]}; it must be positive")
    xs = x.permute(0, 2, 1, 3, 4).reshape(n * d_in, c, h, w)
    y = None
    for t in range(kd):
        z = conv_transpose2d(xs, weight[:, :, t], None, s[1:], p[1:], opad[1:], groups, dl[1:])
        co, oh, ow = z.shape[1:]
        z = z.reshape(n, d_in, 1, co, oh, ow)
        if s[0] > 1:  # interleave s-1 zero planes after each input depth
            z = pad(z, (0, 0, 0, 0, 0, 0, 0, s[0] - 1))
        z = z.reshape(n, d_in * s[0], co, oh, ow)[:, :(d_in - 1) * s[0] + 1]
        z = pad(z, (0, 0, 0, 0, 0, 0, t * dl[0], full - t * dl[0] - z.shape[1]))
        y = z if y is None else y + z
    # crop padding from the front, keep output_padding extra at the back (zero beyond full)
    y = pad(y, (0, 0, 0, 0, 0, 0, -p[0], od + p[0] - full))
    y = y.permute(0, 2, 1, 3, 4)
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1, 1)
    return y.squeeze(0) if unb else y


# ---------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------

def _pool_args(op, x, kernel_size, stride, padding, dilation=1):
    k = triple(kernel_size, "kernel_size", op)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else triple(stride, "stride", op)
    p = triple(padding, "padding", op, minimum=0)
    d = triple(dilation, "dilation", op)
    if any(pp > kk // 2 for pp, kk in zip(p, k)):
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating input, got {x.dtype}")
    return k, s, p, d


def _separable(x, hw_pool, d_pool):
    """Pool (H, W) by ``hw_pool`` on (N, C*D, H, W), then D by ``d_pool`` on
    (N*C, 1, D, OH*OW); returns (N, C, OD, OH, OW)."""
    n, c, d, h, w = x.shape
    y = hw_pool(x.reshape(n, c * d, h, w))
    oh, ow = y.shape[-2:]
    y = d_pool(y.reshape(n * c, 1, d, oh * ow))
    return y.reshape(n, c, y.shape[2], oh, ow)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over kD x kH x kW windows of (N, C, D, H, W) or (C, D, H, W) input."""
    op = "max_pool3d"
    if return_indices:
        raise NotImplementedError(f"{op}: return_indices=True is not supported")
    x, unb = _batched5(x, op)
    k, s, p, d = _pool_args(op, x, kernel_size, stride, padding, dilation)
    y = _separable(x, lambda t: max_pool2d(t, k[1:], s[1:], p[1:], d[1:], ceil_mode),
                   lambda t: max_pool2d(t, (k[0], 1), (s[0], 1), (p[0], 0), (d[0], 1), ceil_mode))
    return y.squeeze(0) if unb else y


def avg_pool3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over kD x kH x kW windows of (N, C, D, H, W) or (C, D, H, W) input."""
    op = "avg_pool3d"
    if divisor_override is not None:
        raise NotImplementedError(f"{op}: divisor_override is not supported")
    x, unb = _batched5(x, op)
    k, s, p, _ = _pool_args(op, x, kernel_size, stride, padding)
    y = _separable(x, lambda t: avg_pool2d(t, k[1:], s[1:], p[1:], ceil_mode, count_include_pad),
                   lambda t: avg_pool2d(t, (k[0], 1), (s[0], 1), (p[0], 0), ceil_mode,
                                        count_include_pad))
    return y.squeeze(0) if unb else y


def _adaptive_sizes(op, x, output_size):
    if isinstance(output_size, int) and not isinstance(output_size, bool):
        out = (output_size,) * 3
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 3:
        out = tuple(output_size)
    else:
        raise ValueError(f"{op}: output_size must be an int or three ints/None, got "
                         f"{output_size!r}")
    out = tuple(x.shape[2 + i] if o is None else o for i, o in enumerate(out))
    if not all(isinstance(o, int) and o > 0 for o in out):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return out


def _adaptive(op, x, output_size, pool2d):
    x, unb = _batched5(x, op)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating input, got {x.dtype}")
    od, oh, ow = _adaptive_sizes(op, x, output_size)
    n, c, d = x.shape[:3]
    y = pool2d(x.reshape(n, c * d, *x.shape[3:]), (oh, ow))          # (N, C*D, oh, ow)
    y = y.reshape(n * c, d, oh * ow).transpose(1, 2).unsqueeze(2)    # (N*C, oh*ow, 1, D)
    y = pool2d(y, (1, od))                                           # (N*C, oh*ow, 1, od)
    y = y.squeeze(2).transpose(1, 2).reshape(n, c, od, oh, ow)
    return y.squeeze(0) if unb else y


def adaptive_avg_pool3d(x, output_size):
    """Average pooling of (N, C, D, H, W) to a fixed (OD, OH, OW), PyTorch's windows."""
    return _adaptive("adaptive_avg_pool3d", x, output_size, adaptive_avg_pool2d)


def adaptive_max_pool3d(x, output_size, return_indices=False):
    """Max pooling of (N, C, D, H, W) to a fixed (OD, OH, OW), PyTorch's windows."""
    if return_indices:
        raise NotImplementedError("adaptive_max_pool3d: return_indices=True is not supported")
    return _adaptive("adaptive_max_pool3d", x, output_size, adaptive_max_pool2d)
