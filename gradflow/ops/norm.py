"""Normalisation and regularisation built from differentiable ops:
batch_norm, local_response_norm, dropout."""
from __future__ import annotations

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
    mask = be.rand(x.shape, x.dtype) >= p
    scale = be.astype(mask, x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return x * Tensor._make(scale, be)


def dropout2d(x, p=0.5, training=True, inplace=False):
    """Drop whole channels of (N, C, H, W)."""
    if not training or p == 0.0:
        return x
    be = x.backend
    mask = be.rand(x.shape[:2] + (1,) * (x.ndim - 2), x.dtype) >= p
    return x * Tensor._make(be.astype(mask, x.dtype) * x.dtype.type(1.0 / (1.0 - p)), be)
