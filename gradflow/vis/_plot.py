"""Headless matplotlib helpers: figures are built with the object-oriented API on
an Agg canvas (no pyplot, no global backend switch, no GUI), and written as PNG."""
from __future__ import annotations

import math
import os

import numpy as np


def new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def fit_title(fig, title, fontsize=9, margin_in=0.45):
    """A suptitle sitting ``margin_in`` inches above the axes, whatever the figure
    height (the default fractional margin leaves a gap on tall grids)."""
    h = fig.get_figheight()
    fig.subplots_adjust(top=1 - margin_in / h, bottom=min(0.1, 0.15 / h), hspace=0.35)
    fig.suptitle(title, fontsize=fontsize, y=1 - 0.12 / h)


def save(fig, path, dpi=100):
    """Write ``fig`` as a PNG at ``path`` (creating the folder); returns ``path``."""
    if path is None:
        return None
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def as_numpy(t):
    return t.numpy() if hasattr(t, "numpy") and not isinstance(t, np.ndarray) else np.asarray(t)


def to_display(img, symmetric=False):
    """(C, H, W) / (H, W) array -> (H, W) or (H, W, 3) scaled to [0, 1] for imshow.

    ``symmetric``: scale by the largest |value| so 0 maps to 0.5 (weights)."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 3:
        a = a[0] if a.shape[0] == 1 else np.transpose(a[:3], (1, 2, 0))
    if symmetric:
        m = np.abs(a).max()
        return 0.5 + 0.5 * a / m if m > 0 else np.full_like(a, 0.5)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def grid(n, ncols=None):
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / ncols)), ncols


def show(ax, img, title=None, cmap="gray", **kw):
    ax.imshow(img, cmap=None if img.ndim == 3 else cmap, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
