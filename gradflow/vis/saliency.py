"""Saliency maps (Simonyan, Vedaldi & Zisserman 2014): |d score / d input|.

How much would the class score change if this pixel changed a little? The
gradient of the (pre-softmax) class score with respect to the input answers
that, for every pixel at once, in one backward pass. For a linear model
``score = w_c . x + b`` the map is exactly ``|w_c|``.

:func:`input_gradient` is the shared machinery (also used by FGSM and
activation maximisation): the model's parameters are switched to
``requires_grad=False`` and the model to eval mode for the duration, so
their ``.grad`` is left untouched and no weight gradients are computed.
"""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["saliency", "input_gradient", "plot_saliency", "frozen", "class_score"]


@contextlib.contextmanager
def frozen(model):
    """Eval mode and parameters without grad, restored on exit."""
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    flags = [p.requires_grad for p in params]
    modes = [(m, m.training) for _, m in model.named_modules()] \
        if hasattr(model, "named_modules") else []
    try:
        for p in params:
            p.requires_grad = False
        if hasattr(model, "eval"):
            model.eval()
        yield model
    finally:
        for p, f in zip(params, flags):
            p.requires_grad = f
        for m, t in modes:
            m.training = t


def input_gradient(model, x, objective):
    """d objective(x) / d x, with ``model`` frozen (see :func:`frozen`) meanwhile.

    ``objective(x)`` runs the model itself and returns a scalar tensor. Returns
    ``(grad, value)``: the gradient tensor shaped like ``x`` and the
    objective's float value."""
    from ..autograd import enable_grad
    xi = x.detach()
    xi.requires_grad = True
    with frozen(model), enable_grad():
        value = objective(xi)
        if value.numel() != 1:
            raise ValueError(f"input_gradient: the objective must be a scalar, got shape "
                             f"{value.shape}")
        value.backward()
    return xi.grad, float(value.item())


def _targets(target, out):
    """Per-sample class indices as a numpy int array of length N."""
    n = out.shape[0]
    if target is None:
        return np.asarray(out.detach().argmax(dim=1).numpy()).astype(np.int64).reshape(n)
    t = np.asarray(target.numpy() if hasattr(target, "numpy") else target).astype(np.int64)
    t = np.broadcast_to(t.reshape(-1), (n,)) if t.size == 1 else t.reshape(-1)
    if t.shape[0] != n:
        raise ValueError(f"saliency: target has {t.shape[0]} entries for a batch of {n}")
    if t.min() < 0 or t.max() >= out.shape[1]:
        raise ValueError(f"saliency: target classes must lie in [0, {out.shape[1]}), got {t}")
    return t


def class_score(out, target):
    """sum_n out[n, target[n]]: a scalar whose gradient w.r.t. each sample's input is
    that sample's own class-score gradient (samples do not interact in eval mode)."""
    from ..tensor import Tensor
    if out.ndim != 2:
        out = out.reshape(out.shape[0], -1)
    t = _targets(target, out)
    mask = np.zeros(out.shape, dtype=np.dtype(out.dtype))
    mask[np.arange(out.shape[0]), t] = 1
    return (out * Tensor(mask, dtype=out.dtype, backend=out.backend)).sum()


def saliency(model, x, target=None, reduce=None):
    """|d score_target / d x| for a batch ``x`` (N, ...).

    ``target``: a class index, one per sample (list / int tensor), or ``None`` for
    the predicted class. The score is the model's raw output (logit) for that
    class. ``reduce="max"`` takes the maximum over the channel axis (dim 1) as
    Simonyan et al. do for colour images, giving (N, H, W); default: same shape
    as ``x``."""
    from ..autograd import no_grad
    if target is None:
        with no_grad(), frozen(model):
            target = _targets(None, model(x.detach()))
    grad, _ = input_gradient(model, x, lambda xi: class_score(model(xi), target))
    sal = grad.abs()
    if reduce == "max":
        sal = sal.amax(dim=1) if sal.ndim >= 3 else sal
    elif reduce not in (None, "none"):
        raise ValueError(f"saliency: reduce must be None or 'max', got {reduce!r}")
    return sal


def plot_saliency(x, sal, path=None, titles=None, max_images=8):
    """Inputs on the top row, saliency maps (channel max, hot colour map) below."""
    from ._plot import as_numpy, new_figure, save, show, to_display
    xs, ss = as_numpy(x), as_numpy(sal)
    n = min(len(xs), max_images)
    fig = new_figure(1.6 * n + 0.4, 3.4)
    for i in range(n):
        img, s = xs[i], ss[i]
        if s.ndim == 3:
            s = s.max(axis=0)
        show(fig.add_subplot(2, n, i + 1), to_display(img),
             titles[i] if titles else None)
        show(fig.add_subplot(2, n, n + i + 1), to_display(s), "|d score/dx|" if i == 0 else None,
             cmap="hot")
    save(fig, path)
    return fig
