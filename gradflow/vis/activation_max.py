"""Activation maximisation: what input makes this unit fire most?

Start from faint noise and climb the gradient of one unit's activation with
respect to the *input* (the weights stay fixed), with an L2 penalty that keeps
the image from growing without bound::

    J(x) = a(x) - l2 * ||x||^2          x <- x + lr * dJ/dx

``unit_or_class`` chooses the unit:

- an int ``c``: the model's output (pre-softmax score) for class ``c``;
- ``(layer, channel)``: the mean activation of one channel of a layer's output
  (a feature map of a conv layer, or one feature of a linear layer);
- ``(layer, channel, i, j)``: one spatial position of that channel.

``layer`` is a module, a dotted name from ``named_modules()`` or a leaf index.
For a linear score ``w . x`` the ascent converges to ``x* = w / (2 * l2)``.

``normalize=True`` divides the activation's gradient by its root-mean-square
each step (as Keras' filter-visualisation recipe does), so ``lr`` is a step in
input units whatever the gradient's scale -- useful for deep, freshly
initialised units whose raw gradients are tiny.
"""
from __future__ import annotations

import numpy as np

__all__ = ["activation_maximization", "plot_activation_maximization"]


def _objective(model, unit_or_class):
    from ._trace import layer_output

    if isinstance(unit_or_class, (int, np.integer)):
        c = int(unit_or_class)

        def act(x):
            out = model(x)
            out = out.reshape(out.shape[0], -1)
            if not 0 <= c < out.shape[1]:
                raise ValueError(f"activation_maximization: class {c} out of range for "
                                 f"{out.shape[1]} outputs")
            return out[:, c].sum()
        return act
    if not isinstance(unit_or_class, (tuple, list)) or len(unit_or_class) not in (2, 4):
        raise TypeError(f"activation_maximization: unit_or_class is a class index, (layer, "
                        f"channel) or (layer, channel, i, j), got {unit_or_class!r}")
    layer, idx = unit_or_class[0], tuple(int(v) for v in unit_or_class[1:])

    def act(x):
        a, _ = layer_output(model, x, layer)
        if idx[0] >= a.shape[1]:
            raise ValueError(f"activation_maximization: channel {idx[0]} out of range for "
                             f"layer output {a.shape}")
        if len(idx) == 1:
            return a[:, idx[0]].mean()
        return a[:, idx[0], idx[1], idx[2]].sum()
    return act


def activation_maximization(model, unit_or_class, steps=100, lr=0.1, l2=1e-3, input_shape=None,
                            x0=None, seed=0, noise=0.1, clip=None, normalize=False,
                            return_history=False, path=None):
    """Gradient ascent on the input; returns the image, a (1, *input_shape) tensor.

    ``input_shape``: one sample's shape, e.g. (1, 28, 28); not needed with ``x0``
    (a starting tensor). The start is ``noise * N(0, 1)`` from ``seed``.
    ``clip=(lo, hi)`` clamps after each step. ``return_history=True`` returns
    ``(image, history)`` where ``history[k]`` is the unit's activation before step
    ``k`` and the last entry the activation of the returned image. ``path``
    writes a PNG of the image (and the activation curve)."""
    from ..autograd import no_grad
    from ..creation import tensor
    from .saliency import frozen, input_gradient
    if x0 is None:
        if input_shape is None:
            raise ValueError("activation_maximization: give input_shape (one sample's shape, "
                             "e.g. (1, 28, 28)) or a starting image x0")
        p = next(iter(model.parameters()), None)
        arr = np.random.RandomState(seed).standard_normal((1,) + tuple(input_shape)) * noise
        x = tensor(arr, dtype=p.dtype if p is not None else None,
                   backend=p.backend if p is not None else None)
    else:
        x = x0.detach()
    act = _objective(model, unit_or_class)
    history = []
    for _ in range(int(steps)):
        grad, value = input_gradient(model, x, act)
        history.append(value)
        with no_grad():
            if normalize:
                grad = grad * (1.0 / (float((grad * grad).mean().sqrt().item()) + 1e-12))
            x = x + (grad - x * (2.0 * l2)) * float(lr)
            if clip is not None:
                x = x.clip(float(clip[0]), float(clip[1]))
    with no_grad(), frozen(model):
        history.append(float(act(x).item()))
    x = x.detach()
    if path is not None:
        if isinstance(unit_or_class, (tuple, list)):
            lay = unit_or_class[0]
            lay = lay if isinstance(lay, (str, int)) else type(lay).__name__
            title = f"layer {lay} unit {tuple(unit_or_class[1:])}"
        else:
            title = f"class {unit_or_class}"
        plot_activation_maximization(x, history, path, title=title)
    return (x, history) if return_history else x


def plot_activation_maximization(images, history=None, path=None, title=None, titles=None,
                                 max_cols=8):
    """Maximising images in a grid (``max_cols`` per row), plus the activation curve
    when ``history`` is given."""
    from ._plot import as_numpy, new_figure, save, show, to_display
    imgs = as_numpy(images)
    imgs = imgs if imgs.ndim == 4 else imgs[None]
    n = len(imgs)
    extra = 1 if history is not None else 0
    cols = min(n + extra, max_cols)
    rows = -(-(n + extra) // cols)
    fig = new_figure(1.8 * cols + 0.4, 2.0 * rows + 0.2)
    for i in range(n):
        t = titles[i] if titles else (title if n == 1 else None)
        show(fig.add_subplot(rows, cols, i + 1), to_display(imgs[i]), t, cmap="viridis")
    if history is not None:
        ax = fig.add_subplot(rows, cols, n + 1)
        ax.plot(history)
        ax.set_xlabel("step", fontsize=8)
        ax.set_title("activation", fontsize=8)
        ax.tick_params(labelsize=7)
    save(fig, path)
    return fig
