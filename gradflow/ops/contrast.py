"""Local contrast normalisation, ``F.local_contrast_norm`` (the module is
``nn.LocalContrastNorm2d``): the "normalisation" stage of the early ConvNets of
Jarrett, Kavukcuoglu, Ranzato & LeCun 2009, "What is the best multi-stage
architecture for object recognition?".

For an input ``x`` of shape (N, C, H, W) and a Gaussian window ``w`` of
``size x size`` pixels and standard deviation ``sigma``, replicated over the C
channels and scaled so that it sums to 1 over (channel, row, column)::

    m     = sum_{c,p,q} w[p,q] x[c, i+p, j+q]            local mean, (N, 1, H, W)
    v     = x - m                                        subtractive step
    s     = sqrt(sum_{c,p,q} w[p,q] v[c, i+p, j+q]^2)    local standard deviation
    y     = v / max(s, floor)                            divisive step

Both sums run over space *and* channels, so every channel at a pixel is shifted
and scaled by the same amount -- unlike AlexNet's ``LocalResponseNorm``, which
divides by a sum of squares over neighbouring channels at one pixel and
subtracts nothing.

Borders: the window is zero-padded and renormalised by how much of it falls
inside the image (``m`` divides by ``sum w`` over the in-image taps), so the
mean near an edge is still a weighted average of real pixels.

The floor: ``floor="mean"`` (default) is the per-image mean of ``s`` over the
spatial positions (Jarrett et al.'s choice), so flat regions are not blown up
to unit contrast; a number uses that constant. ``eps`` keeps the square root
differentiable where the local variance is 0 (``s = sqrt(var + eps^2)``).

Everything is composed from ``conv2d`` and element-wise Tensor ops, so it is
differentiable to any order.
"""
from __future__ import annotations

import math

from ..tensor import Tensor
from .conv import conv2d

__all__ = ["local_contrast_norm", "gaussian_window"]


def gaussian_window(size, sigma):
    """The (size, size) Gaussian weights exp(-(p^2 + q^2) / (2 sigma^2)) centred on the
    middle tap, summing to 1, as nested Python lists."""
    r = (size - 1) / 2.0
    g = [math.exp(-((k - r) ** 2) / (2.0 * sigma * sigma)) for k in range(size)]
    total = sum(g) ** 2
    return [[a * b / total for b in g] for a in g]


def _check_options(op, size, sigma, floor, eps):
    if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
        raise ValueError(f"{op}: size must be an odd positive int (the window is centred), "
                         f"got {size!r}")
    if not sigma > 0:
        raise ValueError(f"{op}: sigma must be > 0, got {sigma!r}")
    if not (floor == "mean" or (isinstance(floor, (int, float)) and floor >= 0)):
        raise ValueError(f"{op}: floor must be 'mean' or a number >= 0, got {floor!r}")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be > 0, got {eps!r}")


def local_contrast_norm(x, size=9, sigma=2.0, divisive=True, floor="mean", eps=1e-4):
    """Subtractive (and, when ``divisive``, divisive) local contrast normalisation of
    ``x`` (N, C, H, W); returns a tensor of the same shape (see the module docstring).

    ``size``: the window's side (odd); ``sigma``: its standard deviation in pixels.
    ``divisive=False`` stops after the subtractive step (``x - m``)."""
    op = "local_contrast_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    _check_options(op, size, sigma, floor, eps)
    n, c, h, w = x.shape
    win = gaussian_window(size, float(sigma))
    weight = Tensor([[[[v / c for v in row] for row in win]] * c], dtype=x.dtype,
                    backend=x.backend)                                   # (1, C, size, size)
    pad = size // 2
    ones = Tensor._make(x.backend.full((1, c, h, w), 1.0, x.dtype), x.backend)
    coverage = conv2d(ones, weight, padding=pad)                         # (1, 1, H, W), <= 1
    mean = conv2d(x, weight, padding=pad) / coverage
    v = x - mean
    if not divisive:
        return v
    std = (conv2d(v * v, weight, padding=pad) / coverage + eps * eps).sqrt()   # (N, 1, H, W)
    if floor == "mean":
        lo = std.mean(dim=(2, 3), keepdim=True)
    else:
        lo = Tensor._make(x.backend.full((1, 1, 1, 1), float(floor), x.dtype), x.backend)
    return v / std.maximum(lo)
