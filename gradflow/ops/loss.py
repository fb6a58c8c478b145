"""Loss functions. ``cross_entropy`` is one fused, numerically stable primitive
(log-softmax + negative log-likelihood, gradient softmax - onehot); the others
are compositions of differentiable ops."""
from __future__ import annotations

import math

from .. import dtypes
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import where
from .softmax import log_softmax, softmax

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _weighted_mean(total, denom):
    """``total / denom``; NaN with a zero gradient (and no 0/0 warning) when ``denom`` is 0,
    e.g. every target ignored -- PyTorch's result."""
    ok = denom != 0
    return where(ok, total / where(ok, denom, 1.0), float("nan"))


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class SoftmaxCrossEntropy(Function):
    """logits (N, C), target (N,) ints -> per-sample or reduced loss.

    forward: loss_i = w_i * (logsumexp(x_i) - x_i[t_i]), w_i = weight[t_i] (0 where
    t_i == ignore_index); 'mean' divides by sum(w_i).
    backward: d/dx_i = (softmax(x_i) - onehot(t_i)) * w_i * g (/ sum(w) for 'mean')."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, reduction):
        be = logits.backend
        t = target.array
        valid = None
        if ignore_index is not None:
            # masked whether or not this batch holds ignore_index: no host read of the
            # targets (a device sync on CuPy), and a captured step (gradflow.compile) runs
            # the same kernels for every batch
            valid = be.binary("ne", t, ignore_index)
            t = be.where(valid, t, be.zeros((), t.dtype))
        loss, logp = be.softmax_cross_entropy_forward(logits.array, t)
        w = None
        if weight is not None:
            w = be.getitem(weight.array, t)
        if valid is not None:
            v = be.astype(valid, loss.dtype)
            w = v if w is None else be.binary("mul", w, v)
        if w is not None:
            loss = be.binary("mul", loss, w)
        ctx.save_for_backward(logits)
        ctx.logp, ctx.t, ctx.w, ctx.reduction = logp, t, w, reduction
        if reduction == "none":
            return loss
        total = be.reduce("sum", loss, None, False)
        if reduction == "sum":
            return total
        if w is None and loss.shape[0]:  # a plain mean: the divisor is known on the host
            ctx.denom = ctx.ok = None
            return be.binary("div", total, be.asarray(loss.shape[0], dtype=total.dtype))
        denom = be.reduce("sum", w, None, False) if w is not None else \
            be.full((), loss.shape[0], loss.dtype)
        # every target ignored (or an empty batch): NaN and a zero gradient, as PyTorch,
        # without a 0/0 warning
        # backend kernels, not NumPy operators: a captured step (gradflow.compile) replays
        # only kernel calls
        ctx.ok = ok = be.binary("ne", denom, be.zeros((), denom.dtype))
        ctx.denom = be.where(ok, denom, be.full((), 1, denom.dtype))
        return be.where(ok, be.binary("div", total, ctx.denom),
                        be.full((), float("nan"), total.dtype))

    @staticmethod
    def backward(ctx, gy):
        logits, = ctx.saved_tensors
        be = gy.backend
        wn = ctx.w  # per-sample factor on the output gradient: weights, / sum(w) for 'mean'
        if ctx.reduction == "mean" and ctx.denom is None:  # a plain mean over N samples
            n = ctx.logp.shape[0]
            wn = be.full((n,), 1 / n, ctx.logp.dtype)
        elif ctx.reduction == "mean":
            inv = be.where(ctx.ok, be.binary("div", be.full((), 1, ctx.denom.dtype), ctx.denom),
                           be.zeros((), ctx.denom.dtype))
            wn = be.binary("mul", inv, be.full((ctx.logp.shape[0],), 1, inv.dtype) if wn is None
                           else wn)
        return (SoftmaxCrossEntropyGrad.apply(logits, gy, ctx.logp, ctx.t, wn),
                None, None, None, None)


class SoftmaxCrossEntropyGrad(Function):
    """The cross-entropy gradient (softmax(x) - onehot(t)) * gl[:, None] for logits x
    (N, C), with gl = g * wn: the output gradient ``g`` (0-d for a reduced loss, (N,)
    for 'none') times a per-sample constant ``wn`` (N,) (class weights, 1/sum(w) for
    'mean'; None: 1), as one fused kernel from the forward's log-probabilities ``logp``.
    Its backward (second-order gradients), with p = softmax(x) and incoming G (N, C):
    d/dg = sum_c G (p - onehot) * wn (summed to g's shape by the engine) and
    d/dx = gl[:, None] * p * (G - sum_c G p)."""

    @staticmethod
    def forward(ctx, logits, g, logp, t, wn):
        be = g.backend
        ctx.save_for_backward(logits, g)
        ctx.t, ctx.wn = t, wn
        n = logp.shape[0]
        gl = be.copy(be.broadcast_to(g.array, (n,)))  # contiguous, writable: kernels need it
        if wn is not None:
            gl = be.binary("mul", gl, wn)
        return be.softmax_cross_entropy_backward(logp, t, gl)

    @staticmethod
    def backward(ctx, gg):
        logits, g = ctx.saved_tensors
        be = gg.backend
        n, c = logits.shape
        wn = None if ctx.wn is None else Tensor._make(ctx.wn, be)
        gl = g.broadcast_to((n,)) if wn is None else g * wn
        p = softmax(logits, 1)
        need = ctx.needs_input_grad
        glogits = gg_ = None
        if need[0]:
            glogits = gl.unsqueeze(1) * p * (gg - (gg * p).sum(dim=1, keepdim=True))
        if need[1]:
            classes = Tensor._make(be.reshape(be.arange(0, c, 1, ctx.t.dtype), (1, c)), be)
            onehot = (Tensor._make(be.reshape(ctx.t, (-1, 1)), be) == classes).to(gg.dtype)
            gg_ = (gg * (p - onehot)).sum(dim=1)
            if wn is not None:
                gg_ = gg_ * wn
        return glogits, gg_, None, None, None


def _check_target(op, logits, target, ignore_index):
    if not isinstance(target, Tensor):
        raise TypeError(f"{op}: target must be a Tensor of class indices")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices (int64), got {target.dtype}; "
                        f"for probabilities pass a float target of the logits' shape")
    n, c = logits.shape[0], logits.shape[1]
    expected = (n,) + logits.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op}: input of shape {logits.shape} needs target of shape {expected}, "
                         f"got {target.shape}")
    if target.numel():
        t = target.array
        be = target.backend
        bad = be.binary("or", be.binary("lt", t, 0), be.binary("ge", t, c))
        if ignore_index is not None:
            bad = be.binary("and", bad, be.binary("ne", t, ignore_index))
        if bool(be.reduce("any", bad, None, False)):
            lo, hi = int(be.reduce("min", t, None, False)), int(be.reduce("max", t, None, False))
            raise ValueError(f"{op}: target values must be class indices in [0, {c}) "
                             f"(or ignore_index={ignore_index}); got values in [{lo}, {hi}]")


def _to_2d(logits, target):
    """(N, C, d1, ...) logits and (N, d1, ...) target -> (N*d1*..., C) and (N*d1*...)."""
    if logits.ndim == 2:
        return logits, target
    c = logits.shape[1]
    perm = (0,) + tuple(range(2, logits.ndim)) + (1,)
    return logits.permute(*perm).reshape(-1, c), target.reshape(-1)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C) or (N, C, d1, ...) against
    integer classes ``target`` (N,) / (N, d1, ...), or class probabilities of
    ``input``'s shape. Stable for any finite logits (±1e4 included)."""
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if input.ndim < 1 or input.dtype.kind != "f":
        raise ValueError(f"{op}: input must be floating logits (N, C), got {input.shape} {input.dtype}")
    if input.ndim == 1:
        input, target = input.reshape(1, -1), target.reshape(1)
        out = cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
        return out.reshape(()) if reduction == "none" else out
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"{op}: a floating target holds class probabilities and must have the "
                             f"input's shape {input.shape}, got {target.shape}; for class indices "
                             f"pass an integer (int64) target of shape {(input.shape[0],) + input.shape[2:]}")
        c = input.shape[1]
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / c
        logp = log_softmax(input, 1)
        if weight is not None:
            logp = logp * weight.reshape((1, c) + (1,) * (input.ndim - 2))
        return _reduce(-(target * logp).sum(1), reduction)
    _check_target(op, input, target, ignore_index)
    if weight is not None and weight.shape != (input.shape[1],):
        raise ValueError(f"{op}: weight must have shape ({input.shape[1]},), got {weight.shape}")
    if label_smoothing:
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
        # PyTorch's form: (1 - e) * weighted NLL + e * mean over classes of -w_c log p_c;
        # 'mean' divides both by the summed weight of the non-ignored targets
        hard = cross_entropy(input, target, weight, ignore_index, "none")
        l2, t2 = _to_2d(input, target)
        lp = log_softmax(l2, 1)
        if weight is not None:
            lp = lp * weight.reshape(1, -1)
        smooth = -lp.mean(1)
        be = t2.backend
        valid = be.binary("ne", t2.array, ignore_index)
        keep = Tensor._make(be.astype(valid, input.dtype), be)
        smooth = (smooth * keep).reshape(hard.shape)
        loss = hard * (1 - label_smoothing) + smooth * label_smoothing
        if reduction == "mean":
            if weight is None:
                return _weighted_mean(loss.sum(), keep.sum())
            t_safe = Tensor._make(be.where(valid, t2.array, be.zeros((), t2.dtype)), be)
            return _weighted_mean(loss.sum(), (weight[t_safe] * keep).sum())
        return _reduce(loss, reduction)
    shape = target.shape
    l2, t2 = _to_2d(input, target)
    out = SoftmaxCrossEntropy.apply(l2, t2, weight, ignore_index, reduction)
    return out.reshape(shape) if reduction == "none" and len(shape) != 1 else out


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C[, d...])."""
    op = "nll_loss"
    _check_reduction(op, reduction)
    if isinstance(input, Tensor) and input.ndim == 1 and isinstance(target, Tensor) and target.ndim == 0:
        out = nll_loss(input.reshape(1, -1), target.reshape(1), weight, ignore_index, reduction)
        return out.reshape(()) if reduction == "none" else out  # unbatched (C,), as PyTorch
    if not isinstance(input, Tensor) or input.ndim < 2:
        raise ValueError(f"{op}: input must be log-probabilities of shape (N, C[, d1, ...]) or (C,), "
                         f"got {getattr(input, 'shape', type(input).__name__)}")
    _check_target(op, input, target, ignore_index)
    shape = target.shape
    lp, t = _to_2d(input, target)
    be = t.backend
    valid = be.binary("ne", t.array, ignore_index)
    t_safe = Tensor._make(be.where(valid, t.array, be.zeros((), t.dtype)), be)
    rows = Tensor._make(be.arange(0, lp.shape[0], 1, t.dtype), be)
    picked = -lp[rows, t_safe]
    w = Tensor._make(be.astype(valid, lp.dtype), be)
    if weight is not None:
        w = w * weight[t_safe]
    loss = picked * w
    if reduction == "mean":
        return _weighted_mean(loss.sum(), w.sum())
    if reduction == "sum":
        return loss.sum()
    return loss.reshape(shape)


def mse_loss(input, target, reduction="mean"):
    _check_reduction("mse_loss", reduction)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    _check_reduction("l1_loss", reduction)
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (PyTorch's definition)."""
    _check_reduction("smooth_l1_loss", reduction)
    _same_shape("smooth_l1_loss", input, target)
    d = input - target
    a = d.abs()
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    return smooth_l1_loss(input, target, reduction, delta) * delta


# PyTorch's BCE gradient is (p - t) / max(p (1 - p), eps): finite at saturated p = 0 or 1.
# eps is PyTorch's 1e-12 rounded to float32 (it uses that constant for float64 too)
_BCE_EPS = 9.999999960041972e-13


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """-(t log p + (1-t) log(1-p)) on probabilities ``input`` in [0, 1]; as in PyTorch the
    logs are clamped at -100 and the gradient is ``(p - t) / max(p (1 - p), 1e-12)``, so a
    saturated ``sigmoid`` output (exactly 0 or 1) gives a finite gradient, not NaN. The
    target's gradient is ``log(1-p) - log(p)`` unclamped, as PyTorch's, except at p = 0
    or 1 exactly, where PyTorch's is +-inf and gradflow's uses the log of the dtype's
    smallest positive number (finite).

    Where ``p (1 - p) >= 1e-12`` the loss is the plain formula (its derivatives are
    PyTorch's there). Elsewhere the value is the clamped formula on detached ``p'``, plus
    zero-valued terms that carry the gradients: ``(p - p') (p' - t) / 1e-12`` for ``p``,
    and the unclamped logs for ``t``. Each branch is fed inputs that are safe in the
    other's region, so no 0 * inf reaches the gradient."""
    op = "binary_cross_entropy"
    _check_reduction(op, reduction)
    _same_shape(op, input, target)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must hold floating probabilities, got {input.dtype}")
    pd = input.detach()
    if input.numel() and not bool(((pd >= 0) & (pd <= 1)).all()):
        raise ValueError(f"{op}: every input value must be a probability in [0, 1] "
                         f"(got values in [{pd.min().item()}, {pd.max().item()}]); for "
                         f"logits use binary_cross_entropy_with_logits")
    ok = pd * (1 - pd) >= _BCE_EPS
    p_in = where(ok, input, 0.5)                   # away from 0 and 1 outside ``ok``
    plain = -(target * p_in.log() + (1 - target) * (-p_in).log1p())
    log_tiny = math.log(float(dtypes.finfo(input.dtype).smallest_subnormal))
    lp, lq = pd.log(), (-pd).log1p()               # log p', log(1 - p'): constants in p
    lp_u, lq_u = lp.clamp(log_tiny, None), lq.clamp(log_tiny, None)
    lp_c, lq_c = lp.clamp(-100.0, None), lq.clamp(-100.0, None)
    td = target.detach()
    saturated = (-(target * lp_u + (1 - target) * lq_u)
                 + (td * (lp_u - lp_c) + (1 - td) * (lq_u - lq_c))
                 + (input - pd) * ((pd - target) * (1.0 / _BCE_EPS)))
    loss = where(ok, plain, saturated)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Stable: max(x, 0) - x t + log(1 + exp(-|x|)) (with pos_weight: PyTorch's form)."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    softplus_neg = (-input.abs()).exp().log1p() + (-input).relu()  # log(1 + exp(-x))
    if pos_weight is None:
        loss = (1 - target) * input + softplus_neg
    else:
        lw = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + lw * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    if log_target:
        loss = target.exp() * (target - input)
    else:
        pos = target > 0  # log(1) where target is 0: no 0/0 in the unused branch's gradient
        loss = where(pos, target * (where(pos, target, 1.0).log() - input), 0.0 * input)
    if reduction == "batchmean":
        return loss.sum() / input.shape[0]
    return _reduce(loss, reduction)


def _same_shape(op, a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{op}: input and target must be Tensors")
    if a.shape != b.shape:
        raise ValueError(f"{op}: input shape {a.shape} and target shape {b.shape} differ; "
                         f"they must be equal (reshape the target)")
    if a.dtype != b.dtype and a.dtype.kind == b.dtype.kind == "f":
        raise TypeError(f"{op}: input dtype {a.dtype} and target dtype {b.dtype} differ; "
                        f"convert one (gradflow never promotes silently)")
