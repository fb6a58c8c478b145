"""Normalisation and regularisation built from differentiable ops:
batch_norm, local_response_norm, dropout."""
from __future__ import annotations

import math

from ..autograd import no_grad
from ..tensor import Tensor
from .shape import cat


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise over every axis but 1 (N, C[, H, W]). In training, batch statistics are
    used and the running ones updated in place (biased var to normalise, unbiased var
    for the running estimate, as PyTorch)."""
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, c) + (1,) * (x.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for input {x.shape}, "
                             f"got {t.shape}")
    if training or running_mean is None:
        n = x.numel() // c
        if training and n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean = x.mean(axes, keepdims=True)
        d = x - mean
        var = (d * d).mean(axes, keepdims=True)
        if training and running_mean is not None:
            with no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach().reshape(c) * momentum)
                running_var.mul_(1 - momentum).add_(
                    var.detach().reshape(c) * (momentum * n / max(n - 1, 1)))
        y = d * (var + eps).rsqrt()
    else:
        y = (x - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """b_c = a_c / (k + alpha/size * sum_{c' near c} a_{c'}^2) ** beta, the window over
    ``size`` neighbouring channels (PyTorch's padding: size//2 before, (size-1)//2 after)."""
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expected (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    sq = x * x
    zeros = lambda m: Tensor._make(x.backend.zeros((x.shape[0], m) + x.shape[2:], x.dtype), x.backend)
    before, after = size // 2, (size - 1) // 2
    parts = ([zeros(before)] if before else []) + [sq] + ([zeros(after)] if after else [])
    padded = cat(parts, dim=1) if len(parts) > 1 else sq
    win = padded[:, 0:c]
    for j in range(1, size):
        win = win + padded[:, j:j + c]
    div = (win * (alpha / size) + k) ** beta
    return x / div


def dropout(x, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout).
    ``inplace`` is accepted for PyTorch compatibility; the result is always a new tensor."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    be = x.backend
    # backend kernels, not NumPy operators: gradflow.compile replays kernel calls only
    mask = be.binary("ge", be.rand(x.shape, x.dtype), p)
    scale = be.binary("mul", be.astype(mask, x.dtype), x.dtype.type(1.0 / (1.0 - p)))
    return x * Tensor._make(scale, be)


def dropout2d(x, p=0.5, training=True, inplace=False):
    """Drop whole channels of (N, C, H, W)."""
    if not training or p == 0.0:
        return x
    be = x.backend
    mask = be.binary("ge", be.rand(x.shape[:2] + (1,) * (x.ndim - 2), x.dtype), p)
    scale = be.binary("mul", be.astype(mask, x.dtype), x.dtype.type(1.0 / (1.0 - p)))
    return x * Tensor._make(scale, be)


def _norm_shape(op, x, normalized_shape):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not ns or x.shape[x.ndim - len(ns):] != ns or len(ns) > x.ndim:
        raise ValueError(f"{op}: normalized_shape {ns} must match the last dims of the input, "
                         f"got input of shape {x.shape}")
    return ns


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last ``len(normalized_shape)`` dims (biased variance), then
    scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``)."""
    ns = _norm_shape("layer_norm", x, normalized_shape)
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != ns:
            raise ValueError(f"layer_norm: {name} must have shape {ns}, got {t.shape}")
    axes = tuple(range(x.ndim - len(ns), x.ndim))
    mean = x.mean(axes, keepdims=True)
    d = x - mean
    y = d * ((d * d).mean(axes, keepdims=True) + eps).rsqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise (N, C, ...) over each group of C/num_groups channels and the spatial
    dims; ``weight``/``bias`` are per channel (C,)."""
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, ...), got shape {x.shape}")
    n, c = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int):
        raise TypeError(f"group_norm: num_groups must be an int, got {num_groups!r}")
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: num_channels {c} must be divisible by num_groups "
                         f"{num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"group_norm: {name} must have shape ({c},), got {t.shape}")
    g = x.reshape(n, num_groups, (c // num_groups) * math.prod(x.shape[2:]))  # n may be 0
    mean = g.mean(2, keepdims=True)
    d = g - mean
    y = (d * ((d * d).mean(2, keepdims=True) + eps).rsqrt()).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


def instance_norm(x, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalise each (sample, channel) over its spatial dims (no running stats)."""
    if running_mean is not None or not use_input_stats:
        raise NotImplementedError("instance_norm: running statistics are not supported")
    return group_norm(x, x.shape[1], weight, bias, eps)


def normalize(x, p=2.0, dim=1, eps=1e-12):
    """``x / max(||x||_p, eps)`` along ``dim`` (PyTorch's F.normalize)."""
    return x / x.norm(p, dim, keepdim=True).clip(eps, None)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``sum(x1 * x2) / max(||x1|| * ||x2||, eps)`` along ``dim`` (inputs broadcast)."""
    w12 = (x1 * x2).sum(dim)
    n12 = ((x1 * x1).sum(dim) * (x2 * x2).sum(dim)).clip(eps * eps, None).sqrt()
    return w12 / n12


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` along the last dim."""
    return (x1 - x2 + eps).norm(p, -1, keepdim)
