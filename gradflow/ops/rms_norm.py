"""``rms_norm`` (Zhang & Sennrich, "Root Mean Square Layer Normalization", 2019):
``x / sqrt(mean(x^2) + eps) * weight`` over the last ``len(normalized_shape)`` dims;
``eps`` defaults to the dtype's machine epsilon, as PyTorch's."""
from __future__ import annotations

import numpy  # host-side dtype limits only

from .norm import _norm_shape


def rms_norm(input, normalized_shape, weight=None, eps=None):
    ns = _norm_shape("rms_norm", input, normalized_shape)
    if weight is not None and tuple(weight.shape) != ns:
        raise ValueError(f"rms_norm: weight of shape {weight.shape} must have shape {ns}")
    if eps is None:
        eps = float(numpy.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(ns), input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight
