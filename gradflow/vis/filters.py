"""Looking at what a conv net learned: its filters and its feature maps.

- :func:`plot_filters` draws a conv layer's weights, one tile per filter: RGB
  for 3-channel input, grey for 1 channel, and one row per filter (one tile per
  input channel) otherwise. Weights are scaled symmetrically so 0 is mid-grey.
- :func:`feature_maps` returns a layer's output for an input;
  :func:`plot_feature_maps` draws one tile per channel, for the first sample.
"""
from __future__ import annotations

import numpy as np

__all__ = ["plot_filters", "feature_maps", "plot_feature_maps"]


def _weight(conv_layer):
    w = getattr(conv_layer, "weight", conv_layer)
    a = w.detach().numpy() if hasattr(w, "detach") else np.asarray(w)
    if a.ndim != 4:
        raise ValueError(f"plot_filters: expects a Conv2d layer or a weight of shape "
                         f"(out, in, kH, kW), got shape {a.shape}")
    return a


def plot_filters(conv_layer, path=None, max_filters=64, max_channels=8, title=None):
    """Draw the filters of ``conv_layer`` (a Conv2d or its weight tensor); writes a
    PNG when ``path`` is given and returns the matplotlib Figure."""
    from ._plot import fit_title, grid, new_figure, save, show, to_display
    w = _weight(conv_layer)[:max_filters]
    n, cin = w.shape[:2]
    if cin in (1, 3):
        rows, cols = grid(n)
        fig = new_figure(0.9 * cols + 0.4, 0.9 * rows + 0.6)
        for i in range(n):
            img = w[i, 0] if cin == 1 else w[i]
            show(fig.add_subplot(rows, cols, i + 1), to_display(img, symmetric=True),
                 cmap="gray")
    else:
        cols = min(cin, max_channels)
        fig = new_figure(0.7 * cols + 0.8, 0.7 * n + 0.6)
        for i in range(n):
            for j in range(cols):
                ax = fig.add_subplot(n, cols, i * cols + j + 1)
                show(ax, to_display(w[i, j], symmetric=True), cmap="gray")
                if j == 0:
                    ax.set_ylabel(f"{i}", fontsize=7, rotation=0, labelpad=8)
                if i == 0:
                    ax.set_title(f"in {j}", fontsize=7)
    fit_title(fig, title or f"{type(conv_layer).__name__} filters "
                            f"{tuple(_weight(conv_layer).shape)}")
    save(fig, path)
    return fig


def feature_maps(model, x, layer):
    """The output of ``layer`` (module, dotted name or leaf index) for input ``x``
    (computed without a graph, in eval mode)."""
    from ..autograd import no_grad
    from ._trace import layer_output
    with no_grad():
        out, _ = layer_output(model, x, layer)
    return out.detach()


def plot_feature_maps(model, x, layer, path=None, max_maps=32, show_input=True, title=None):
    """Feature maps of ``layer`` for the first sample of ``x``, one tile per channel
    (viridis, each tile scaled on its own). Returns the Figure."""
    from ._plot import as_numpy, fit_title, grid, new_figure, save, show, to_display
    from ._trace import resolve_layer
    fmap = as_numpy(feature_maps(model, x, layer))[0]
    if fmap.ndim == 1:
        fmap = fmap[:, None, None]
    maps = fmap[:max_maps]
    n = len(maps) + (1 if show_input else 0)
    rows, cols = grid(n)
    fig = new_figure(1.1 * cols + 0.4, 1.15 * rows + 0.6)
    k = 0
    if show_input:
        show(fig.add_subplot(rows, cols, 1), to_display(as_numpy(x)[0]), "input")
        k = 1
    for i, m in enumerate(maps):
        show(fig.add_subplot(rows, cols, k + i + 1), to_display(m), f"ch {i}", cmap="viridis")
    m = resolve_layer(model, layer)
    fit_title(fig, title or f"feature maps of "
                            f"{layer if isinstance(layer, str) else type(m).__name__} "
                            f"{tuple(fmap.shape)}")
    save(fig, path)
    return fig
