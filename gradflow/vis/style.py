"""Style and content losses (Gatys et al., "A Neural Algorithm of Artistic Style").

The *style* of an image, seen by one conv layer, is the Gram matrix of that
layer's feature maps: how strongly every pair of channels fires together,
summed over all positions -- which throws away *where* things are and keeps
*what textures* are there. The *content* is the feature maps themselves.

Normalisation (documented, and what the tests check): for features ``F`` of
shape (N, C, H, W) reshaped to (N, C, H*W)::

    gram_matrix(F)[n] = F[n] @ F[n].T / (C * H * W)        # (N, C, C)

so the numbers do not grow with the image size or the channel count (the
PyTorch neural-style tutorial's convention, per sample). ``normalize=False``
gives the raw sums ``F[n] @ F[n].T``.
"""
from __future__ import annotations

__all__ = ["gram_matrix", "style_loss", "content_loss"]


def gram_matrix(features, normalize=True):
    """(N, C, H, W) -> (N, C, C) Gram matrices, divided by C*H*W when ``normalize``.

    A 3-D input (C, H, W) is treated as a batch of one and gives (C, C).
    Differentiable: it is a reshape and a batched matmul."""
    if features.ndim not in (3, 4):
        raise ValueError(f"gram_matrix: expects features of shape (N, C, H, W) or (C, H, W), "
                         f"got shape {features.shape}")
    unbatched = features.ndim == 3
    if unbatched:
        features = features.reshape((1,) + features.shape)
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    g = f @ f.transpose(0, 2, 1)
    if normalize:
        g = g * (1.0 / (c * h * w))
    return g.reshape(c, c) if unbatched else g


def content_loss(features, target):
    """Mean squared difference between feature maps and (detached) target features."""
    if features.shape != target.shape:
        raise ValueError(f"content_loss: features {features.shape} and target {target.shape} "
                         f"must have the same shape")
    d = features - target.detach()
    return (d * d).mean()


def style_loss(features, target_grams, weights=None):
    """Sum over layers of ``weight * mean((gram_matrix(F_l) - A_l) ** 2)``.

    ``features``: one (N, C, H, W) tensor or a list of them (one per layer);
    ``target_grams``: the style image's Gram matrices, same length (each (1, C, C)
    or (N, C, C); a batch of one broadcasts over N); ``weights``: per-layer
    factors (default 1 each)."""
    single = not isinstance(features, (list, tuple))
    feats = [features] if single else list(features)
    grams = [target_grams] if single and not isinstance(target_grams, (list, tuple)) \
        else list(target_grams)
    if len(feats) != len(grams):
        raise ValueError(f"style_loss: got {len(feats)} feature maps but {len(grams)} target "
                         f"Gram matrices; give one target per layer")
    weights = [1.0] * len(feats) if weights is None else list(weights)
    if len(weights) != len(feats):
        raise ValueError(f"style_loss: got {len(weights)} weights for {len(feats)} layers")
    total = None
    for f, a, wgt in zip(feats, grams, weights):
        g = gram_matrix(f)
        if g.shape[-2:] != a.shape[-2:]:
            raise ValueError(f"style_loss: Gram matrix {g.shape} of features {f.shape} does not "
                             f"match target Gram matrix {a.shape}")
        d = g - a.detach()
        term = (d * d).mean() * float(wgt)
        total = term if total is None else total + term
    return total
