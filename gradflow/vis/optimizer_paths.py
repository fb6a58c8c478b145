"""Optimiser paths on a 2-D loss surface (the "wiggle" picture of the training lecture).

A model with exactly two scalar parameters has a loss surface one can draw.
:func:`loss_surface` evaluates the loss on a grid of parameter values;
:func:`optimizer_path` runs a ``gradflow.optim`` optimiser from a starting
point and records where the parameters go. On a long, narrow valley plain SGD
bounces between the walls (its step is set by the steep direction, so it
crawls along the flat one), momentum averages the bounces out and builds up
speed along the valley, and Adam rescales each coordinate by its own gradient
size so it heads more directly for the floor.
"""
from __future__ import annotations

import numpy as np

__all__ = ["two_parameters", "set_point", "loss_surface", "optimizer_path",
           "plot_optimizer_paths"]


def two_parameters(model):
    """The model's parameters, checked to hold exactly two numbers in all."""
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    if total != 2:
        raise ValueError(f"optimizer paths need a model with exactly 2 scalar parameters, got "
                         f"{total} in {[tuple(p.shape) for p in params]}")
    return params


def _flat(params):
    return np.concatenate([np.asarray(p.detach().numpy(), dtype=np.float64).reshape(-1)
                           for p in params])


def set_point(params, point):
    """Write the two numbers ``point`` into ``params`` (in order, row-major)."""
    i = 0
    for p in params:
        k = p.numel()
        vals = np.asarray(point[i:i + k], dtype=np.dtype(p.dtype)).reshape(p.shape)
        p.data = vals
        i += k


def loss_surface(model, loss_fn, xs, ys):
    """The loss at every grid point: an array (len(ys), len(xs)) with ``Z[i, j]`` the
    loss at parameters (xs[j], ys[i]). ``loss_fn(model)`` returns a scalar tensor.
    The model's parameters are restored afterwards."""
    from ..autograd import no_grad
    params = two_parameters(model)
    saved = _flat(params)
    z = np.empty((len(ys), len(xs)))
    try:
        with no_grad():
            for i, b in enumerate(ys):
                for j, a in enumerate(xs):
                    set_point(params, (a, b))
                    z[i, j] = float(loss_fn(model).item())
    finally:
        set_point(params, saved)
    return z


def optimizer_path(model, loss_fn, make_optimizer, start, steps):
    """Run ``make_optimizer(parameters)`` for ``steps`` steps from ``start``.

    Returns ``(path, losses)``: the (steps + 1, 2) parameter values (the start
    first) and the loss before each step plus the final one. The model's
    parameters are left at the path's end."""
    from ..autograd import no_grad
    params = two_parameters(model)
    set_point(params, start)
    opt = make_optimizer(params)
    path, losses = [_flat(params)], []
    for _ in range(int(steps)):
        loss = loss_fn(model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
        path.append(_flat(params))
    with no_grad():
        losses.append(float(loss_fn(model).item()))
    return np.stack(path), losses


def plot_optimizer_paths(xs, ys, z, paths, path=None, title=None, levels=30):
    """Contours of ``z`` (log-spaced) with each optimiser's path on top.

    ``paths``: {label: (steps + 1, 2) array}."""
    from ._plot import new_figure, save
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = float(z.min()), float(z.max())
    lv = lo + np.geomspace((hi - lo) * 1e-3, hi - lo, levels) if hi > lo else None
    ax.contour(xs, ys, z, levels=lv, cmap="viridis", linewidths=0.6)
    for label, p in paths.items():
        ax.plot(p[:, 0], p[:, 1], "-o", ms=2, lw=1.1, label=label)
    first = next(iter(paths.values()))
    ax.plot(first[0, 0], first[0, 1], "k*", ms=9, label="start")
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.legend(fontsize=8)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    save(fig, path)
    return fig
