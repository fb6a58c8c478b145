"""Top-k activating patches (Zeiler & Fergus 2014, "Visualizing and understanding
convolutional networks"): which pieces of real images excite a unit most?

For one channel of one layer, run the images through the model, find the k
largest activations over all images and positions, and cut out of the input
the region that unit can see -- its receptive field, from
:func:`gradflow.vis.receptive_field`. A unit at output position (i, j) of a
layer with field size r, jump J and start S (per axis) sees input rows::

    S + i J - (r - 1) / 2   ...   S + i J + (r - 1) / 2

Parts of the field that fall outside the image (padding) are filled with
``fill``. For a layer whose units see the whole input (after a Flatten or a
Linear) the "patch" is the whole image.

``one_per_image=True`` (default, as in the paper's grids) takes each image's
strongest position only, so the k patches come from k different images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TopPatch", "top_activating_patches", "layer_name", "plot_top_patches"]


@dataclass
class TopPatch:
    image: int                # index into the images
    position: tuple           # (i, j) in the layer's output; () for a non-spatial layer
    activation: float
    box: tuple                # (top, left, bottom, right) in input pixels, bottom/right exclusive
    patch: np.ndarray = field(repr=False)   # (C, bottom - top, right - left)


def layer_name(model, layer):
    """The named_modules() name of ``layer`` (a module, a name or a leaf index)."""
    from ._trace import resolve_layer
    m = resolve_layer(model, layer)
    for name, mod in model.named_modules():
        if mod is m:
            return name
    raise ValueError(f"layer {type(m).__name__} is not part of the model")


def _activations(model, images, layer, batch_size):
    """The (N, C', H', W') or (N, C') output of ``layer`` on ``images``, as numpy."""
    from ..autograd import no_grad
    from ._trace import layer_output
    out = []
    with no_grad():
        for i in range(0, images.shape[0], batch_size):
            a, _ = layer_output(model, images[i:i + batch_size], layer)
            out.append(a.numpy())
    return np.concatenate(out)


def _crop(img, box, fill):
    """img (C, H, W) cut to box, with ``fill`` outside the image."""
    top, left, bottom, right = box
    c, h, w = img.shape
    out = np.full((c, bottom - top, right - left), fill, dtype=img.dtype)
    t, lft, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if t < b and lft < r:
        out[:, t - top:b - top, lft - left:r - left] = img[:, t:b, lft:r]
    return out


def top_activating_patches(model, images, layer, channel, k=9, one_per_image=True, fill=0.0,
                           batch_size=250):
    """The ``k`` strongest activations of ``channel`` of ``layer`` over ``images``
    (a tensor (N, C, H, W)), strongest first, each as a :class:`TopPatch` with
    the input patch its unit sees. ``layer``: a module, a name or a leaf index.

    ``channel``: an int (returns a list of k patches) or a list of ints (returns
    ``{channel: list}``, from one pass over the images)."""
    from .receptive_field import receptive_field
    if images.ndim != 4:
        raise ValueError(f"top_activating_patches: images must be (N, C, H, W), got shape "
                         f"{images.shape}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"top_activating_patches: k must be a positive int, got {k!r}")
    name = layer_name(model, layer)
    channels = [int(c) for c in channel] if isinstance(channel, (list, tuple, range)) \
        else [int(channel)]
    everything = _activations(model, images, layer, batch_size)
    bad = [c for c in channels if not 0 <= c < everything.shape[1]]
    if bad:
        raise ValueError(f"top_activating_patches: channel(s) {bad} out of range for layer "
                         f"{name!r} with output shape {(None,) + everything.shape[1:]}")
    rf = receptive_field(model, tuple(images.shape[1:]))[name]
    host = images.numpy()
    found = {c: _top(everything[:, c], k, one_per_image, rf, host, fill) for c in channels}
    return found if isinstance(channel, (list, tuple, range)) else found[channels[0]]


def _top(acts, k, one_per_image, rf, host, fill):
    """The k strongest entries of one channel's activations acts (N, ...)."""
    n = acts.shape[0]
    flat = acts.reshape(n, -1)
    if one_per_image:
        pos = flat.argmax(axis=1)
        best = flat[np.arange(n), pos]
        order = np.argsort(-best, kind="stable")[:k]
        picks = [(int(i), int(pos[i])) for i in order]
    else:
        order = np.argsort(-flat.reshape(-1), kind="stable")[:k]
        picks = [divmod(int(f), flat.shape[1]) for f in order]
    h, w = host.shape[2:]
    result = []
    for img, p in picks:
        if acts.ndim == 1 or rf.covers_input:
            position = () if acts.ndim == 1 else np.unravel_index(p, acts.shape[1:])
            box = (0, 0, h, w)
        else:
            position = np.unravel_index(p, acts.shape[1:])
            box = tuple(int(math.floor(s + q * j - (r - 1) / 2))
                        for s, q, j, r in zip(rf.start, position, rf.jump, rf.size))
            box = box + (box[0] + rf.size[0], box[1] + rf.size[1])
        result.append(TopPatch(img, tuple(int(v) for v in position),
                               float(flat[img, p]), box, _crop(host[img], box, fill)))
    return result


def _mosaic(patches, cols=3, gap=1):
    """Patches (each (C, h, w), same size) tiled into one (C, H, W) array in [0, 1]
    (one scale for all of them), with mid-grey gaps."""
    c, ph, pw = patches[0].shape
    lo = min(float(p.min()) for p in patches)
    hi = max(float(p.max()) for p in patches)
    rows = -(-len(patches) // cols)
    out = np.full((c, rows * (ph + gap) - gap, cols * (pw + gap) - gap), 0.5)
    for i, p in enumerate(patches):
        r, q = divmod(i, cols)
        out[:, r * (ph + gap):r * (ph + gap) + ph, q * (pw + gap):q * (pw + gap) + pw] = \
            (p - lo) / (hi - lo) if hi > lo else 0.0
    return out


def plot_top_patches(units, path=None, title=None):
    """``units``: {row label: {column label: [TopPatch, ...]}} -- one row per layer, one
    3x3 mosaic of top patches per unit (one grey scale per mosaic)."""
    from ._plot import fit_title, new_figure, save
    rows = list(units.items())
    ncols = max(len(cols) for _, cols in rows)
    fig = new_figure(1.5 * ncols + 0.8, 1.6 * len(rows) + 0.6)
    for r, (row_label, cols) in enumerate(rows):
        for q, (col_label, tops) in enumerate(cols.items()):
            ax = fig.add_subplot(len(rows), ncols, r * ncols + q + 1)
            m = _mosaic([t.patch for t in tops])
            ax.imshow(m[0] if m.shape[0] == 1 else np.transpose(m[:3], (1, 2, 0)),
                      cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(col_label), fontsize=7)
            if q == 0:
                ax.set_ylabel(str(row_label), fontsize=8)
    if title:
        fit_title(fig, title)
    save(fig, path)
    return fig
