"""Margin, embedding and likelihood losses of ``torch.nn.functional`` composed from
the differentiable ops (formulas as PyTorch documents them; ``reduction`` is 'mean',
'sum' or 'none'):

- margin_ranking: ``max(0, -y (x1 - x2) + margin)``
- hinge_embedding: ``x`` where ``y == 1``, ``max(0, margin - x)`` where ``y == -1``
- soft_margin: ``log(1 + exp(-y x))``, averaged over all elements
- cosine_embedding: ``1 - cos(x1, x2)`` (y = 1), ``max(0, cos(x1, x2) - margin)`` (y = -1)
- triplet_margin: ``max(d(a, p) - d(a, n) + margin, 0)``, ``d`` the p-norm distance
  (+ eps), ``swap`` uses ``min(d(a, n), d(p, n))``
- multilabel_soft_margin: mean over classes of the binary cross-entropy with logits
- multi_margin: ``sum_{j != y} max(0, margin - x[y] + x[j])^p / C`` (class weights on y)
- poisson_nll: ``exp(x) - y x`` (log_input) or ``x - y log(x + eps)``, plus Stirling's
  term ``y log y - y + log(2 pi y) / 2`` for ``y > 1`` when ``full``
- gaussian_nll: ``(log(max(var, eps)) + (x - y)^2 / max(var, eps)) / 2`` (+ log(2 pi)/2
  when ``full``)
"""
from __future__ import annotations

import math

from ..tensor import Tensor
from .elementwise import maximum, minimum, where
from .loss import _check_reduction, _reduce
from .norm import pairwise_distance


def _like(v, x):
    return v if isinstance(v, Tensor) else Tensor(v, dtype=x.dtype, backend=x.backend)


def _same_shape(op, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{op}: input of shape {a.shape} and target of shape {b.shape} must "
                         f"have the same shape")


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction="mean"):
    _check_reduction("margin_ranking_loss", reduction)
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, reduction="mean"):
    _check_reduction("hinge_embedding_loss", reduction)
    target = _like(target, input)
    zero = input.new_zeros(())
    pos = where(target == 1, input, zero)
    neg = where(target == -1, (margin - input).clamp(min=0), zero)
    return _reduce(pos + neg, reduction)


def soft_margin_loss(input, target, reduction="mean"):
    _check_reduction("soft_margin_loss", reduction)
    _same_shape("soft_margin_loss", input, _like(target, input))
    z = -target * input  # log(1 + e^z) computed stably
    return _reduce(z.clamp(min=0) + (-z.abs()).exp().log1p(), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction="mean"):
    _check_reduction("cosine_embedding_loss", reduction)
    eps = 1e-12
    dot = (input1 * input2).sum(-1)
    cos = dot / ((input1 * input1).sum(-1) + eps).sqrt() / ((input2 * input2).sum(-1) + eps).sqrt()
    target = _like(target, cos)
    zero = cos.new_zeros(())
    loss = where(target == 1, 1 - cos, zero) + where(target == -1, (cos - margin).clamp(min=0),
                                                      zero)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        reduction="mean"):
    _check_reduction("triplet_margin_loss", reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, reduction="mean"):
    _check_reduction("multilabel_soft_margin_loss", reduction)
    target = _like(target, input)
    _same_shape("multilabel_soft_margin_loss", input, target)
    log_sig = -((-input).clamp(min=0) + (-input.abs()).exp().log1p())   # log sigmoid(x)
    log_sig_neg = log_sig - input                                         # log sigmoid(-x)
    per = -(target * log_sig + (1 - target) * log_sig_neg)
    if weight is not None:
        per = per * weight
    return _reduce(per.mean(-1), reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, reduction="mean"):
    _check_reduction("multi_margin_loss", reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: p must be 1 or 2, got {p}")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    t = target.reshape(-1, 1)
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"multi_margin_loss: input of shape {input.shape} and target of shape "
                         f"{target.shape} disagree on the batch size")
    picked = x.gather(1, t)
    hinge = (margin - picked + x).clamp(min=0)
    if p == 2:
        hinge = hinge * hinge
    if weight is not None:
        hinge = hinge * weight.gather(0, t.reshape(-1)).reshape(-1, 1)
    classes = Tensor(list(range(x.shape[1])), dtype=t.dtype, backend=x.backend)
    hinge = where(classes == t, hinge.new_zeros(()), hinge)
    loss = hinge.sum(1) / x.shape[1]
    return _reduce(loss if input.ndim == 2 else loss.reshape(()), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, eps=1e-8, reduction="mean"):
    _check_reduction("poisson_nll_loss", reduction)
    target = _like(target, input)
    loss = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        safe = where(target > 1, target, target.new_ones(()))
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + where(target > 1, stirling, stirling.new_zeros(()))
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    _check_reduction("gaussian_nll_loss", reduction)
    var = _like(var, input)
    if var.shape != input.shape:
        if var.shape == input.shape[:-1]:
            var = var.unsqueeze(-1)  # one variance per sample
        elif not (var.shape[:-1] == input.shape[:-1] and var.shape[-1:] == (1,)):
            raise ValueError(f"gaussian_nll_loss: var of shape {var.shape} does not match input "
                             f"of shape {input.shape}")
    if (var < 0).any().item():
        raise ValueError("gaussian_nll_loss: var has negative entries")
    v = var + (var.clamp(min=eps) - var).detach()  # clamped, the gradient passed straight on
    loss = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def pdist(input, p=2.0):
    """Distances between every pair of rows ``i < j`` of a 2-D input, row-major."""
    if input.ndim != 2:
        raise ValueError(f"pdist: expected a 2-D input, got shape {input.shape}")
    n = input.shape[0]
    rows = [i for i in range(n) for j in range(i + 1, n)]
    cols = [j for i in range(n) for j in range(i + 1, n)]
    idx = Tensor([rows, cols], backend=input.backend).long()
    return (input[idx[0]] - input[idx[1]]).norm(p, -1)
