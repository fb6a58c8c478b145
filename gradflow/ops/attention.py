"""Scaled dot-product attention (PyTorch's ``F.scaled_dot_product_attention``), composed
from differentiable ops: the gradients come from autograd.

Mask convention (PyTorch's for this function): a bool ``attn_mask`` is True where
attention is *allowed*; a float mask is *added* to the scores. (``nn.MultiheadAttention``
uses the opposite bool convention; see :mod:`gradflow.nn.modules.activation`.)
"""
from __future__ import annotations

import math

from ..tensor import Tensor
from .norm import dropout
from .softmax import softmax

_NEG_INF = float("-inf")


def _attend(q, k, v, mask, dropout_p, scale):
    """``softmax(q @ k^T * scale [masked]) [dropout] @ v`` for q (..., L, E), k (..., S, E),
    v (..., S, Ev); ``mask`` None, bool (keep where True) or float (added), broadcastable
    to (..., L, S). Returns (output (..., L, Ev), weights (..., L, S))."""
    scores = (q @ k.transpose(-2, -1)) * scale
    if mask is not None:
        scores = scores.masked_fill(~mask, _NEG_INF) if mask.dtype == bool else scores + mask
    weights = softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, True)
    return weights @ v, weights


def _check_sdpa(q, k, v, attn_mask, is_causal):
    op = "scaled_dot_product_attention"
    for name, t in (("query", q), ("key", k), ("value", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a gradflow Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (..., L, E), got shape "
                             f"{t.shape}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{op}: expected query (..., L, E), key (..., S, E), value (..., S, Ev); "
                         f"got query {q.shape}, key {k.shape}, value {v.shape}")
    if attn_mask is not None:
        if is_causal:
            raise ValueError(f"{op}: explicit attn_mask should not be set when is_causal=True")
        if not isinstance(attn_mask, Tensor):
            raise TypeError(f"{op}: attn_mask must be a Tensor, got {type(attn_mask).__name__}")
        if attn_mask.dtype != bool and attn_mask.dtype != q.dtype:
            raise TypeError(f"{op}: attn_mask must be bool or have the query's dtype {q.dtype}, "
                            f"got {attn_mask.dtype}")


def _repeat_kv_heads(t, n_q_heads):
    """(..., Hkv, S, E) -> (..., Hq, S, E), each kv head used by Hq/Hkv consecutive q heads."""
    hkv = t.shape[-3]
    if n_q_heads % hkv:
        raise ValueError(f"scaled_dot_product_attention: enable_gqa needs the query's head count "
                         f"({n_q_heads}) to be a multiple of the key/value's ({hkv})")
    g = n_q_heads // hkv
    lead = t.shape[:-3]
    out = t.unsqueeze(-3).expand(*lead, hkv, g, *t.shape[-2:])
    return out.reshape(*lead, n_q_heads, *t.shape[-2:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """``softmax(query @ key^T * scale + mask) @ value`` (PyTorch's
    ``F.scaled_dot_product_attention``).

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev). ``scale``
    defaults to ``1/sqrt(E)``. ``attn_mask`` broadcastable to (..., L, S): bool keeps the
    positions where it is True, float is added to the scores. ``is_causal`` masks out key
    positions after the query's (the top-left-aligned lower triangle), and excludes
    ``attn_mask``. ``dropout_p`` drops attention weights whenever it is > 0 (as in
    PyTorch, independent of any module's train/eval mode). ``enable_gqa``: key/value may
    have fewer heads (dim -3) than query, each shared by consecutive query heads.
    """
    _check_sdpa(query, key, value, attn_mask, is_causal)
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        key, value = (_repeat_kv_heads(t, query.shape[-3]) for t in (key, value))
    if is_causal:
        L, S = query.shape[-2], key.shape[-2]
        attn_mask = query.new_ones((L, S), dtype=bool).tril()
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    return _attend(query, key, value, attn_mask, dropout_p, scale)[0]
