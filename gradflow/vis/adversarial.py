"""Adversarial examples by the fast gradient sign method (Goodfellow, Shlens &
Szegedy 2015).

Move every input pixel by +/- eps in the direction that increases the loss::

    x_adv = x + eps * sign(d loss(model(x), target) / d x)

One gradient, one step: because a network is close to linear in its input,
thousands of tiny, aligned changes add up to a large change of the score.
``targeted=True`` instead steps *down* the loss of a chosen wrong class
(``x - eps * sign(grad)``), pushing the input towards it.
"""
from __future__ import annotations

__all__ = ["fgsm", "plot_fgsm"]


def fgsm(model, x, target, eps, clip=None, targeted=False, loss_fn=None):
    """The FGSM adversarial version of ``x`` (a detached tensor shaped like ``x``).

    ``target``: the true labels (int tensor (N,), a list, or one int), or the
    wanted labels when ``targeted``. ``clip=(lo, hi)`` clamps the result to the
    valid pixel range (e.g. ``(0.0, 1.0)`` for images in [0, 1]; default: no
    clamping, for normalised inputs). ``loss_fn(logits, target)`` defaults to
    cross-entropy (summed over the batch, so each sample's step is its own)."""
    import numpy as np

    from ..creation import tensor
    from ..nn.functional import cross_entropy
    from ..tensor import Tensor
    from .saliency import input_gradient
    if eps < 0:
        raise ValueError(f"fgsm: eps must be >= 0, got {eps}")
    if not isinstance(target, Tensor):                  # an int, a list, a numpy array
        t = np.asarray(target, dtype=np.int64).reshape(-1)
        target = tensor(np.broadcast_to(t, (x.shape[0],)) if t.size == 1 else t,
                        dtype="int64", backend=x.backend)
    if loss_fn is None:
        def loss_fn(out, t):
            return cross_entropy(out, t, reduction="sum")
    grad, _ = input_gradient(model, x, lambda xi: loss_fn(model(xi), target))
    step = grad.sign() * float(eps)
    x_adv = x.detach() - step if targeted else x.detach() + step
    if clip is not None:
        x_adv = x_adv.clip(float(clip[0]), float(clip[1]))
    return x_adv.detach()


def plot_fgsm(x, x_adv, probs_clean, probs_adv, path=None, class_names=None, max_images=6):
    """Three rows per example: the clean input with its prediction and confidence,
    the perturbation (x_adv - x, diverging colours), and the adversarial input."""
    import numpy as np

    from ._plot import as_numpy, new_figure, save, show, to_display
    xs, xa = as_numpy(x), as_numpy(x_adv)
    pc, pa = as_numpy(probs_clean), as_numpy(probs_adv)
    n = min(len(xs), max_images)
    name = (lambda k: class_names[k]) if class_names else str
    fig = new_figure(1.7 * n + 0.6, 5.6)
    for i in range(n):
        c, a = int(pc[i].argmax()), int(pa[i].argmax())
        show(fig.add_subplot(3, n, i + 1), to_display(xs[i]),
             f"clean: {name(c)} ({pc[i, c]:.0%})")
        d = xa[i] - xs[i]
        show(fig.add_subplot(3, n, n + i + 1), to_display(d, symmetric=True),
             f"perturbation ±{np.abs(d).max():.2f}", cmap="bwr")
        ax = fig.add_subplot(3, n, 2 * n + i + 1)
        show(ax, to_display(xa[i]), f"adv: {name(a)} ({pa[i, a]:.0%})")
        if a != c:
            ax.title.set_color("crimson")
    save(fig, path)
    return fig
