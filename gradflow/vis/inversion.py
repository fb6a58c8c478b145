"""Image reconstruction from features (Mahendran & Vedaldi 2015, "Understanding deep
image representations by inverting them").

What does a layer remember about an image? Find an input whose features at that
layer match the image's, starting from noise, with a total-variation prior that
prefers piecewise-smooth images over pixel noise::

    x* = argmin_x  ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2  +  tv * TV_beta(x)

    TV_beta(x) = mean over pixels of ((x[i+1, j] - x[i, j])^2 + (x[i, j+1] - x[i, j])^2)^(beta/2)

The feature term is normalised by the target's energy, so ``tv`` means the same
at every layer. Shallow layers keep almost everything; deeper ones keep what
the classifier needs (the digit's identity and rough shape) and forget the rest.
The minimisation is Adam on the pixels; the model's weights are frozen.
"""
from __future__ import annotations

import numpy as np

__all__ = ["total_variation", "invert_features"]


def total_variation(x, beta=2.0, eps=1e-8):
    """TV_beta of a batch (N, C, H, W), averaged over the (H-1)(W-1) positions, the
    channels and the batch. ``beta=2`` is the squared-gradient (smoothing) prior;
    ``beta=1`` the edge-preserving one (``eps`` keeps its gradient finite at 0)."""
    if x.ndim != 4:
        raise ValueError(f"total_variation: expected (N, C, H, W), got shape {x.shape}")
    if x.shape[2] < 2 or x.shape[3] < 2:
        raise ValueError(f"total_variation: needs H, W >= 2, got shape {x.shape}")
    dh = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    dw = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    sq = dh * dh + dw * dw
    if beta == 2.0:
        return sq.mean()
    return ((sq + eps) ** (beta / 2.0)).mean()


def invert_features(model, image, layer, steps=200, lr=0.05, tv=1e-2, beta=2.0, seed=0,
                    noise=0.1, clip=None, return_history=False):
    """Reconstruct ``image`` (1, C, H, W) from ``layer``'s features (a module, a name or
    a leaf index). Returns the reconstruction, with ``return_history`` also the
    normalised feature loss before each step and after the last one."""
    from ..autograd import enable_grad, no_grad
    from ..creation import tensor
    from ..optim import Adam
    from ._trace import layer_output
    from .saliency import frozen
    if image.ndim != 4:
        raise ValueError(f"invert_features: image must be (N, C, H, W), got shape {image.shape}")
    with no_grad(), frozen(model):
        target, _ = layer_output(model, image.detach(), layer)
        energy = float((target * target).sum().item())
    if energy == 0.0:
        raise ValueError(f"invert_features: the image's features at layer {layer!r} are all "
                         f"zero; nothing to match")
    start = np.random.RandomState(seed).standard_normal(image.shape) * noise
    x = tensor(start, dtype=image.dtype, backend=image.backend, requires_grad=True)
    opt = Adam([x], lr=lr)
    history = []

    def feature_loss(xi):
        f, _ = layer_output(model, xi, layer)
        d = f - target
        return (d * d).sum() * (1.0 / energy)

    with frozen(model), enable_grad():
        for _ in range(int(steps)):
            fl = feature_loss(x)
            loss = fl + total_variation(x, beta) * float(tv) if tv else fl
            opt.zero_grad()
            loss.backward()
            opt.step()
            if clip is not None:
                x.data.clamp_(float(clip[0]), float(clip[1]))
            history.append(float(fl.item()))
        with no_grad():
            history.append(float(feature_loss(x).item()))
    x = x.detach()
    return (x, history) if return_history else x
