"""Resampling primitives: padding (constant, reflect, replicate, circular) and
interpolation (nearest, nearest-exact, linear / bilinear / trilinear), with
PyTorch's semantics.

Every non-constant pad and every interpolation here is a gather along the last
``k`` axes (the spatial axes) through small 1-D *index maps*, one per axis, holding
for each output position the input position it reads. The maps are built once in
forward with the backend's own array ops (so the code is xp-generic and the CuPy
backend runs it unchanged) and kept on ``ctx``; backward is the adjoint
scatter-add, one axis at a time (``Backend.index_add_axis``), so input positions
read several times (a reflected border, an upsampled pixel) accumulate their
gradients. Linear modes are separable: one two-tap pass per axis
(``y = w_lo * x[lo] + w_hi * x[hi]``), which together gather the 2**k neighbours of
each output point with the product weights. No Python loop runs over the batch or
the pixels.

Index rules follow PyTorch's CPU kernels bit for bit where they pick whole pixels
(nearest modes): the arithmetic type, its float32 rounding (``floorf``), and its
choice between two nearest rules for 4-D input by output size.
"""
from __future__ import annotations

import math

import numpy

from ..autograd import Function
from ..tensor import Tensor
from .onedim import adaptive_avg_pool1d
from .pool import adaptive_avg_pool2d
from .shape import cat

_INT = numpy.int64


# ---------------------------------------------------------------------------
# the two primitives: gather through index maps, and separable 2-tap resampling
# ---------------------------------------------------------------------------
def _axis_index(axis, idx):
    """Index tuple selecting ``idx`` (1-D) along ``axis``."""
    return (slice(None),) * axis + (idx,)


def _mesh_index(be, ndim, maps):
    """Index tuple for ``x[..., maps[0][:, None], maps[1][None, :]]`` (an open mesh over
    the last ``len(maps)`` axes), so the result has shape ``x.shape[:-k] + lengths``."""
    k = len(maps)
    axes = tuple(be.reshape(m, (-1,) + (1,) * (k - 1 - i)) for i, m in enumerate(maps))
    return (slice(None),) * (ndim - k) + axes


class Gather(Function):
    """``y = x[..., m_1, ..., m_k]`` with 1-D int index maps ``m_i`` (each entry in
    ``[0, x.shape[-k + i])``) over the last ``k`` axes: y has shape
    ``x.shape[:-k] + (len(m_1), ..., len(m_k))``. The mesh gather is a composition of
    one ``take`` per axis, so backward scatter-adds axis by axis."""

    @staticmethod
    def forward(ctx, x, maps):
        ctx.shape, ctx.maps = x.shape, maps
        return x.backend.getitem(x.array, _mesh_index(x.backend, x.ndim, maps))

    @staticmethod
    def backward(ctx, gy):
        g = gy
        lead = gy.ndim - len(ctx.maps)
        for i, m in enumerate(ctx.maps):   # the leading axes first: they shrink g cheaply
            g = IndexAddAxis.apply(g, m, lead + i, ctx.shape[lead + i])
        return g, None


class IndexAddAxis(Function):
    """Zeros with ``size`` along ``axis`` where ``g``'s slice j is added at index[j]
    (repeats accumulate): the backward of taking ``index`` along ``axis``, and the
    adjoint of TakeAxis, which is its backward."""

    @staticmethod
    def forward(ctx, g, index, axis, size):
        ctx.index, ctx.axis = index, axis
        return g.backend.index_add_axis(g.array, index, axis, size)

    @staticmethod
    def backward(ctx, gg):
        return TakeAxis.apply(gg, ctx.index, ctx.axis), None, None, None


class TakeAxis(Function):
    """``x`` at the 1-D ``index`` along ``axis`` (backward: IndexAddAxis)."""

    @staticmethod
    def forward(ctx, x, index, axis):
        ctx.index, ctx.axis, ctx.size = index, axis, x.shape[axis]
        return x.backend.getitem(x.array, _axis_index(axis, index))

    @staticmethod
    def backward(ctx, gg):
        return IndexAddAxis.apply(gg, ctx.index, ctx.axis, ctx.size), None, None


class LinearResample(Function):
    """Separable linear interpolation over the last ``k = len(taps)`` axes.

    ``taps[i] = (lo, hi, w_lo, w_hi)``: four 1-D arrays of the output length of axis
    ``-k + i``; ``lo``/``hi`` index the input along that axis, ``w_lo``/``w_hi`` are
    weights in x's dtype. Along each axis ``y[j] = w_lo[j] * x[lo[j]] + w_hi[j] * x[hi[j]]``
    (the last axis first, as PyTorch nests its sums); the backward of a pass
    scatter-adds ``w_lo * g`` to ``lo`` and ``w_hi * g`` to ``hi``."""

    @staticmethod
    def forward(ctx, x, taps):
        be, y, nd, k = x.backend, x.array, x.ndim, len(taps)
        ctx.taps, ctx.sizes = taps, x.shape[nd - k:]
        for i in reversed(range(k)):
            lo, hi, wlo, whi = taps[i]
            axis = nd - k + i
            bshape = (-1,) + (1,) * (nd - 1 - axis)   # weights broadcast along ``axis``
            y = be.binary("add",
                          be.binary("mul", be.getitem(y, _axis_index(axis, lo)), be.reshape(wlo, bshape)),
                          be.binary("mul", be.getitem(y, _axis_index(axis, hi)), be.reshape(whi, bshape)))
        return y

    @staticmethod
    def backward(ctx, gy):
        be, g, nd, k = gy.backend, gy, gy.ndim, len(ctx.taps)
        for i in range(k):
            lo, hi, wlo, whi = ctx.taps[i]
            axis = nd - k + i
            bshape = (-1,) + (1,) * (nd - 1 - axis)
            wlo, whi = (Tensor._make(be.reshape(w, bshape), be) for w in (wlo, whi))
            g = IndexAddAxis.apply(g * wlo, lo, axis, ctx.sizes[i]) + \
                IndexAddAxis.apply(g * whi, hi, axis, ctx.sizes[i])
        return g, None


# ---------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
# (left, right) pairs -> the input ranks PyTorch accepts for non-constant modes
_PAD_RANKS = {1: (2, 3), 2: (3, 4), 3: (4, 5)}


def _pad_map(be, n, lo, hi, mode):
    """Source index in ``[0, n)`` of each of the ``n + lo + hi`` output positions of one
    axis padded by ``(lo, hi)`` (negative values crop)."""
    if mode == "circular":
        # PyTorch crops the negative pads first, then wraps what is left
        start, m = max(-lo, 0), n + min(lo, 0) + min(hi, 0)
        j = be.arange(-max(lo, 0), m + max(hi, 0), 1, _INT)
        return j % m + start
    j = be.arange(-lo, n + hi, 1, _INT)
    if mode == "replicate":
        return be.clip(j, 0, n - 1)
    j = be.unary("abs", j)                     # reflect about 0, then about n - 1 (pad < n:
    return be.where(j >= n, 2 * (n - 1) - j, j)  # one reflection is enough)


def _check_pad_pairs(x, pad, mode):
    """Validate ``pad`` for ``mode``; return it as a tuple of ints."""
    if not isinstance(x, Tensor):
        raise TypeError(f"pad: input must be a Tensor, got {type(x).__name__}")
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, _PAD_MODES))}, "
                         f"got {mode!r}")
    pad = tuple(pad)
    if not all(isinstance(p, (int, numpy.integer)) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"pad: padding must be a sequence of ints, got {pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be even ((left, right) pairs starting from "
                         f"the last dim), got {pad} of length {len(pad)} for input shape {x.shape}")
    if len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {len(pad) // 2} (left, right) pairs given for a tensor of shape "
                         f"{x.shape}; at most one pair per dimension")
    return pad


def _check_mode_pad(x, pad, mode):
    """The rank and per-dim size rules of PyTorch's reflect / replicate / circular pads."""
    k = len(pad) // 2
    if k not in _PAD_RANKS or x.ndim not in _PAD_RANKS[k]:
        raise ValueError(
            f"pad: mode={mode!r} with padding {pad} (length {len(pad)}) does not fit input shape "
            f"{x.shape}; valid: length 2 for 2-D/3-D input, 4 for 3-D/4-D, 6 for 4-D/5-D "
            f"(pads the last 1, 2 or 3 dims)")
    for i in range(k):
        dim, (lo, hi) = x.ndim - 1 - i, pad[2 * i:2 * i + 2]
        n = x.shape[dim]
        where = f"padding ({lo}, {hi}) of dim {dim} (size {n}) of input shape {x.shape}"
        if n == 0:
            raise ValueError(f"pad: mode={mode!r} cannot pad an empty dim: {where}")
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(f"pad: mode='reflect' needs each pad to be less than the size of "
                             f"its dim, got {where}; valid pads are < {n}")
        if mode == "circular":
            m = n + min(lo, 0) + min(hi, 0)
            if m > 0 and max(lo, hi) > m:
                raise ValueError(f"pad: mode='circular' needs each pad to be at most the size of "
                                 f"its dim (after cropping negative pads) so that it wraps around "
                                 f"at most once, got {where}; valid pads are <= {m}")
        if n + lo + hi <= 0 or (mode == "circular" and n + min(lo, 0) + min(hi, 0) <= 0):
            raise ValueError(f"pad: {where} would leave no elements")


def _pad_constant(x, pad, value):
    """Constant padding of any rank: crop negative pads, then concatenate filled blocks."""
    be = x.backend
    for i in range(len(pad) // 2):
        dim = x.ndim - 1 - i
        lo, hi = pad[2 * i], pad[2 * i + 1]
        if lo < 0 or hi < 0:  # negative padding crops, as PyTorch
            n = x.shape[dim]
            if n + min(lo, 0) + min(hi, 0) <= 0:
                raise ValueError(f"pad: padding ({lo}, {hi}) would leave no elements of dim {dim} "
                                 f"(size {n}) of shape {x.shape}")
            sl = [slice(None)] * x.ndim
            sl[dim] = slice(max(-lo, 0), n - max(-hi, 0))
            x = x[tuple(sl)]
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for m in (lo, hi):
            shp = x.shape[:dim] + (m,) + x.shape[dim + 1:]
            parts.append(Tensor._make(be.full(shp, value, x.dtype), be) if m > 0 else None)
        x = cat([t for t in (parts[0], x, parts[1]) if t is not None], dim=dim)
    return x


def pad(x, pad, mode="constant", value=None):
    """PyTorch's ``F.pad``. ``pad`` lists (left, right) pairs starting from the last dim:
    ``(wl, wr, ht, hb)`` pads W then H of (N, C, H, W). Negative values crop.

    * ``constant`` (``value``, default 0): any rank, up to one pair per dim;
    * ``reflect`` (mirror without repeating the edge; each pad < the dim's size),
      ``replicate`` (repeat the edge) and ``circular`` (wrap around; each pad <= the
      dim's size): as PyTorch, pad lengths 2 / 4 / 6 for 2-3-D / 3-4-D / 4-5-D input.
    Non-constant modes are one :class:`Gather` node (backward: scatter-add)."""
    pad = _check_pad_pairs(x, pad, mode)
    if mode == "constant":
        return _pad_constant(x, pad, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: mode={mode!r} takes no fill value, got value={value!r}")
    _check_mode_pad(x, pad, mode)
    if not any(pad):
        return x
    k = len(pad) // 2
    maps = [_pad_map(x.backend, x.shape[x.ndim - k + i], *pad[2 * (k - 1 - i):2 * (k - i)], mode)
            for i in range(k)]
    return Gather.apply(x, maps)


# ---------------------------------------------------------------------------
# interpolation
# ---------------------------------------------------------------------------
_LINEAR_MODES = {"linear": 3, "bilinear": 4, "trilinear": 5}   # mode -> input rank
_NEAREST_MODES = ("nearest", "nearest-exact")


def _per_dim(v, k, name, x):
    """An int/float or a k-sequence of them, as a k-tuple."""
    if isinstance(v, (tuple, list)):
        if len(v) != k:
            raise ValueError(f"interpolate: {name} {tuple(v)} must have one entry per spatial dim "
                             f"of input shape {x.shape} ({k})")
        return tuple(v)
    return (v,) * k


def _output_size(x, k, size, scale_factor, recompute_scale_factor):
    """Output spatial size and the scales (input / output per dim, or None) PyTorch uses."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    ins = x.shape[-k:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("interpolate: recompute_scale_factor is not meaningful with an "
                             "explicit size")
        out = tuple(int(s) for s in _per_dim(size, k, "size", x))
        scales = (None,) * k
    else:
        sf = tuple(float(s) for s in _per_dim(scale_factor, k, "scale_factor", x))
        if not all(s > 0 for s in sf):
            raise ValueError(f"interpolate: scale_factor must be > 0, got {scale_factor!r}")
        out = tuple(int(math.floor(n * s)) for n, s in zip(ins, sf))
        # PyTorch interpolates with 1/scale_factor unless asked to use in/out sizes
        scales = (None,) * k if recompute_scale_factor else tuple(1.0 / s for s in sf)
    if min(out) <= 0 or min(ins) <= 0:
        raise ValueError(f"interpolate: input and output sizes must be > 0, got input spatial "
                         f"size {ins} (shape {x.shape}) and output size {out}")
    return out, scales


def _opmath(dtype):
    """The type PyTorch's CPU kernels compute source positions in: float64 for float64
    input, float32 otherwise. Matching it keeps nearest indices identical to PyTorch's."""
    return numpy.float64 if numpy.dtype(dtype) == numpy.float64 else numpy.float32


def _grid_scale(n_in, n_out, scale, align_corners, ft):
    """PyTorch's ``area_pixel_compute_scale`` in type ``ft``."""
    if align_corners:
        return ft(n_in - 1) / ft(n_out - 1) if n_out > 1 else ft(0)
    return ft(scale) if scale is not None else ft(n_in) / ft(n_out)


def _floorf(be, a):
    """C's ``floorf(a)``: round to float32 first, then floor (a >= 0, so truncation)."""
    return be.astype(be.astype(a, numpy.float32), _INT)


def _half_pixel_src(be, dst, s, ft):
    """max(s * (dst + 0.5) - 0.5, 0) in type ``ft``. In float32 the multiply-add is done
    in float64 and rounded once, as the fused multiply-add in PyTorch's CPU build (it
    decides which side of a pixel boundary a position falls on)."""
    half = dst + ft(0.5)
    if ft is numpy.float32:
        src = be.astype(be.astype(half, numpy.float64) * float(s) - 0.5, ft)
    else:
        src = half * s - ft(0.5)
    return be.clip(src, ft(0), None)


def _nearest_map(be, n_in, n_out, scale, exact, dtype, legacy):
    """PyTorch's nearest source index along one axis, clamped to n_in - 1, with
    s = 1/scale_factor or n_in/n_out:

    * ``legacy`` (its 4-D kernels for outputs with H + W <= 128): s in float32;
      'nearest' copies when n_out == n_in, halves when n_out == 2 n_in, else
      floorf(dst * s); 'nearest-exact' is floorf((dst + 0.5) * s);
    * otherwise (3-D and 5-D input), in the kernel's type: floorf(dst * s), or
      floorf(max((dst + 0.5) * s - 0.5, 0) + 0.5) for 'nearest-exact'."""
    if legacy:
        if not exact and n_out == n_in:
            return be.arange(0, n_out, 1, _INT)
        if not exact and n_out == 2 * n_in:
            return be.arange(0, n_out, 1, _INT) // 2
        ft = numpy.float32
    else:
        ft = _opmath(dtype)
    s = _grid_scale(n_in, n_out, scale, False, ft)
    dst = be.arange(0, n_out, 1, ft)
    if exact and legacy:
        idx = _floorf(be, (be.astype(dst, numpy.float64) + 0.5) * float(s))
    elif exact:
        idx = _floorf(be, be.astype(_half_pixel_src(be, dst, s, ft), numpy.float64) + 0.5)
    else:
        idx = _floorf(be, dst * s)
    return be.binary("minimum", idx, n_in - 1)


def _linear_taps(be, n_in, n_out, scale, align_corners, dtype):
    """(lo, hi, w_lo, w_hi) of 1-D linear interpolation from ``n_in`` to ``n_out`` points,
    PyTorch's rule: align_corners maps the corner pixel centres onto each other
    (src = dst * (n_in - 1)/(n_out - 1)); otherwise src = (dst + 0.5) * s - 0.5 clamped at
    0, s = 1/scale_factor or n_in/n_out; equal sizes copy. lo = min(floor(src), n_in - 1),
    hi = min(lo + 1, n_in - 1), w_hi = clip(src - lo, 0, 1), in the kernel's type."""
    ft = _opmath(dtype)
    dst = be.arange(0, n_out, 1, ft)
    if n_out == n_in:
        src = dst
    elif align_corners:
        src = dst * _grid_scale(n_in, n_out, scale, True, ft)
    else:
        src = _half_pixel_src(be, dst, _grid_scale(n_in, n_out, scale, False, ft), ft)
    lo = be.binary("minimum", _floorf(be, src), n_in - 1)
    hi = be.binary("minimum", lo + 1, n_in - 1)
    lam = be.clip(src - be.astype(lo, ft), ft(0), ft(1))
    return lo, hi, be.astype(-lam + ft(1), dtype), be.astype(lam, dtype)


def _block_factor(n_in, n_out, scale, legacy):
    """Whether 'nearest' from ``n_in`` to ``n_out`` is exactly block replication by the
    integer ``f = n_out // n_in``. The legacy (4-D) rule special-cases f = 1 and 2;
    otherwise PyTorch samples floorf(dst * s), which equals dst // f when s is 1/f (given
    as size or as scale_factor f), f <= 32 and dst < 2**19, in float32 and float64
    (float32 checked for every dst below 2**22)."""
    if n_out % n_in or n_out >= 2 ** 19:
        return False
    f = n_out // n_in
    return (legacy and f <= 2) or (f <= 32 and (scale is None or scale == 1.0 / f))


def _nearest_blocks(x, factors):
    """Nearest upsampling by integer factors as reshape + expand (each input element
    becomes a block; the gradient sums each block, no scatter)."""
    lead, k = x.shape[:x.ndim - len(factors)], len(factors)
    inter = lead + tuple(v for n in x.shape[-k:] for v in (n, 1))
    full = lead + tuple(v for n, f in zip(x.shape[-k:], factors) for v in (n, f))
    y = x.reshape(inter).expand(full)
    return y.reshape(lead + tuple(n * f for n, f in zip(x.shape[-k:], factors)))


def _check_interp_input(x, mode, align_corners, antialias):
    if not isinstance(x, Tensor):
        raise TypeError(f"interpolate: input must be a Tensor, got {type(x).__name__}")
    if mode not in _NEAREST_MODES and mode not in _LINEAR_MODES and mode != "area":
        raise NotImplementedError(
            f"interpolate: mode={mode!r} is not implemented; supported: 'nearest', "
            f"'nearest-exact', 'area' (3-D or 4-D input), 'linear' (3-D input), "
            f"'bilinear' (4-D), 'trilinear' (5-D)")
    if mode == "area" and x.ndim not in (3, 4):
        raise NotImplementedError(f"interpolate: mode='area' is implemented for 3-D and 4-D "
                                  f"input (N, C, L) / (N, C, H, W), got shape {x.shape}")
    if mode not in _LINEAR_MODES and align_corners is not None:
        raise ValueError(f"interpolate: align_corners can only be set with the interpolating "
                         f"modes linear, bilinear, trilinear, got mode={mode!r}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not implemented")
    if mode in _LINEAR_MODES and x.ndim != _LINEAR_MODES[mode]:
        raise ValueError(f"interpolate: mode={mode!r} needs a {_LINEAR_MODES[mode]}-D input "
                         f"(N, C, spatial...), got shape {x.shape}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, spatial...), "
                         f"got shape {x.shape}")
    if x.dtype.kind != "f" and mode in _LINEAR_MODES:
        raise TypeError(f"interpolate: mode={mode!r} needs a floating input, got {x.dtype}")


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """PyTorch's ``F.interpolate`` over the spatial dims of (N, C, L), (N, C, H, W) or
    (N, C, D, H, W) input. Give ``size`` (int or per-dim) or ``scale_factor`` (output
    size ``floor(in * scale_factor)``; the sampling grid uses ``1/scale_factor`` unless
    ``recompute_scale_factor=True``).

    * ``nearest`` / ``nearest-exact``: any of the three ranks; integer upscaling is a
      reshape + expand, everything else a :class:`Gather`;
    * ``linear`` (3-D), ``bilinear`` (4-D), ``trilinear`` (5-D), ``align_corners``
      False (default) or True: one :class:`LinearResample` node;
    * ``area`` (3-D, 4-D): adaptive average pooling to the output size, as PyTorch."""
    _check_interp_input(x, mode, align_corners, antialias)
    k = x.ndim - 2
    out, scales = _output_size(x, k, size, scale_factor, recompute_scale_factor)
    if mode == "area":
        if k == 1:
            return adaptive_avg_pool1d(x, out[0])
        return adaptive_avg_pool2d(x, tuple(out))
    be, ins = x.backend, x.shape[2:]
    if mode in _LINEAR_MODES:
        taps = [_linear_taps(be, n, o, s, bool(align_corners), x.dtype)
                for n, o, s in zip(ins, out, scales)]
        return LinearResample.apply(x, taps)
    # PyTorch picks its older nearest index rule for 4-D input by output size (its kernel
    # choice for speed, out_H + out_W <= 128); the same choice keeps values identical
    legacy = k == 2 and sum(out) <= 128
    if mode == "nearest" and all(_block_factor(n, o, s, legacy) for n, o, s in zip(ins, out, scales)):
        return _nearest_blocks(x, [o // n for n, o in zip(ins, out)])
    maps = [_nearest_map(be, n, o, s, mode == "nearest-exact", x.dtype, legacy)
            for n, o, s in zip(ins, out, scales)]
    return Gather.apply(x, maps)
