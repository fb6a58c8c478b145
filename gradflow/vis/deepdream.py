"""DeepDream (Mordvintsev, Olah & Tyka 2015): amplify whatever a layer sees.

Gradient *ascent* on the input image to increase the energy of a layer's
activations, ``mean(a(x)^2)``: patterns the layer weakly detects get drawn in
more strongly, and the result is the layer's "hallucination" laid over the
picture. Two tricks make it look like structure rather than noise:

- **octaves**: run the ascent on a small copy of the image first, then upscale
  the *detail* it added (dreamed - original at that scale) onto the next
  larger copy, and so on up to full size -- patterns appear at several scales;
- **jitter**: before each step, roll the image by a random shift of up to
  ``jitter`` pixels (and roll the gradient back), so the grid of the strided
  layers does not print itself into the result.

Each step is normalised by the gradient's mean absolute value, so ``lr`` is a
step in pixel units. The model must accept inputs of every octave's size (a
fully convolutional feature extractor, e.g. the conv part of a classifier).
"""
from __future__ import annotations

import numpy as np

__all__ = ["deepdream", "layer_energy"]


def layer_energy(model, x, layer=None):
    """mean(a^2) of ``layer``'s output (``None``: the model's output) for ``x``."""
    from ._trace import layer_output
    a = model(x) if layer is None else layer_output(model, x, layer)[0]
    return (a * a).mean()


def deepdream(model, image, layer=None, steps=10, lr=0.02, octaves=3, octave_scale=1.4,
              jitter=2, clip=(0.0, 1.0), seed=0, return_history=False):
    """The dreamed version of ``image`` (1, C, H, W), same shape. ``steps`` ascent
    steps per octave; ``octaves`` scales from ``1 / octave_scale ** (octaves - 1)``
    up to 1. With ``return_history`` also returns the energy (at the scale being
    worked on) before each step."""
    from ..autograd import no_grad
    from ..nn.functional import interpolate
    from .saliency import input_gradient
    if image.ndim != 4:
        raise ValueError(f"deepdream: image must be (N, C, H, W), got shape {image.shape}")
    if not isinstance(octaves, int) or octaves < 1:
        raise ValueError(f"deepdream: octaves must be a positive int, got {octaves!r}")
    if octave_scale <= 1.0 and octaves > 1:
        raise ValueError(f"deepdream: octave_scale must be > 1, got {octave_scale}")
    h, w = image.shape[2:]
    sizes = [(max(int(round(h / octave_scale ** k)), 1), max(int(round(w / octave_scale ** k)), 1))
             for k in reversed(range(octaves))]
    rng = np.random.RandomState(seed)
    base = image.detach()
    detail = None
    history = []
    for size in sizes:
        with no_grad():
            here = base if size == (h, w) else interpolate(base, size=size, mode="bilinear",
                                                           align_corners=False)
            if detail is not None:
                detail = interpolate(detail, size=size, mode="bilinear", align_corners=False)
                x = here + detail
            else:
                x = here
        for _ in range(int(steps)):
            dy, dx = (int(v) for v in rng.randint(-jitter, jitter + 1, 2)) if jitter else (0, 0)
            shifted = x.roll((dy, dx), dims=(2, 3)) if jitter else x
            grad, value = input_gradient(model, shifted,
                                         lambda xi: layer_energy(model, xi, layer))
            history.append(value)
            with no_grad():
                if jitter:
                    grad = grad.roll((-dy, -dx), dims=(2, 3))
                scale = float(grad.abs().mean().item()) + 1e-12
                x = x + grad * (float(lr) / scale)
                if clip is not None:
                    x = x.clip(float(clip[0]), float(clip[1]))
        detail = x - here
    x = x.detach()
    return (x, history) if return_history else x
