"""Random regularisers and relaxations of ``torch.nn.functional`` composed from the
ops: channel dropout for 1-d/3-d inputs, alpha dropout (SELU-preserving), and the
Gumbel-softmax relaxation of a categorical sample.

Alpha dropout (Klambauer et al., "Self-Normalizing Neural Networks", 2017): dropped
units are set to ``a' = -lambda * alpha`` of SELU, then ``a * x + b`` restores zero
mean and unit variance, with ``a = ((1 - p)(1 + p a'^2))^-1/2`` and ``b = -a a' p``.
"""
from __future__ import annotations

from ..tensor import Tensor
from .norm import dropout2d
from .softmax import softmax

_SELU_NEG = -1.0507009873554805 * 1.6732632423543772  # -lambda * alpha


def _check_p(op, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: p must be in [0, 1], got {p}")


def _channel_dropout(op, input, p, training, ndim):
    """Zero whole channels of a batched (``ndim`` dims) or unbatched input."""
    _check_p(op, p)
    if input.ndim not in (ndim - 1, ndim):
        raise ValueError(f"{op}: expected a {ndim - 1}-D or {ndim}-D input, got shape "
                         f"{input.shape}")
    x = input.unsqueeze(0) if input.ndim == ndim - 1 else input
    out = dropout2d(x, p, training)  # its mask is (N, C, 1, ...) for any rank
    return out.squeeze(0) if input.ndim == ndim - 1 else out


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) with probability ``p``."""
    return _channel_dropout("dropout1d", input, p, training, 3)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability ``p``."""
    return _channel_dropout("dropout3d", input, p, training, 5)


def _alpha(input, p, training, mask_shape, op):
    _check_p(op, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    be = input.backend
    keep = Tensor._make(be.astype(be.rand(mask_shape, input.dtype) >= p, input.dtype), be)
    a = ((1 - p) * (1 + p * _SELU_NEG ** 2)) ** -0.5
    b = -a * _SELU_NEG * p
    return (input * keep + _SELU_NEG * (1 - keep)) * a + b


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    return _alpha(input, p, training, input.shape, "alpha_dropout")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole channels (dim 1)."""
    return _alpha(input, p, training, input.shape[:2] + (1,) * (input.ndim - 2),
                  "feature_alpha_dropout")


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """``softmax((logits + g) / tau)`` with Gumbel(0, 1) noise ``g``; ``hard=True``
    returns the one-hot of the argmax in the forward pass with the soft sample's
    gradient (straight-through)."""
    if tau <= 0:
        raise ValueError(f"gumbel_softmax: tau must be positive, got {tau}")
    be = logits.backend
    u = Tensor._make(be.rand(logits.shape, logits.dtype), be)
    gumbel = -(-(1 - u).log()).log()  # -log(E), E ~ Exp(1)
    soft = softmax((logits + gumbel) / tau, dim)
    if not hard:
        return soft
    index = soft.argmax(dim, keepdim=True)
    one_hot = soft.detach() * 0
    one_hot = one_hot.scatter(dim % soft.ndim, index, value=1.0)
    return one_hot - soft.detach() + soft
