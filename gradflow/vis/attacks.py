"""Stronger attacks than FGSM: projected gradient descent and an adversarial patch.

**PGD** (Madry, Makelov, Schmidt, Tsipras & Vladu 2018) repeats FGSM's signed
step with a small step size and projects back into the L-infinity ball of
radius ``eps`` around the clean input after every step, starting from a random
point of the ball::

    x_0     = x + U(-eps, eps)
    x_{k+1} = clip(x + clip(x_k + alpha * sign(d loss / d x_k) - x, -eps, eps), lo, hi)

It searches the same ball as FGSM (one step of size eps), so it can only do
better; on a trained net it does much better.

**Adversarial patch** (Brown, Mane, Roy, Abadi & Gilmer 2017): a small square
of pixels, not bounded in size of change but in area, learned so that pasting
it *anywhere* on *any* image makes the net answer a chosen target class. Each
step pastes the current patch at a fresh random location on a batch of
images and climbs the target class's log-probability (Adam on the patch's
pixels, which are kept in the valid range).
"""
from __future__ import annotations

import numpy as np

__all__ = ["pgd", "paste_patch", "adversarial_patch", "patch_success_rate"]


def _labels(target, x, op):
    """An int64 label tensor of length N from an int, a list, an array or a tensor."""
    from ..creation import tensor
    from ..tensor import Tensor
    if isinstance(target, Tensor):
        return target
    t = np.asarray(target, dtype=np.int64).reshape(-1)
    if t.size not in (1, x.shape[0]):
        raise ValueError(f"{op}: target has {t.size} labels for a batch of {x.shape[0]}")
    return tensor(np.broadcast_to(t, (x.shape[0],)) if t.size == 1 else t, dtype="int64",
                  backend=x.backend)


def pgd(model, x, target, eps, alpha=None, steps=10, random_start=True, clip=(0.0, 1.0),
        targeted=False, loss_fn=None, seed=0):
    """The PGD adversarial version of ``x`` (N, ...): a detached tensor in the L-inf ball
    of radius ``eps`` around ``x`` (and inside ``clip``, when given).

    ``alpha``: the step size (default ``2.5 * eps / steps``, so the walk can cross
    the ball); ``random_start``: begin at a uniform random point of the ball
    (``seed``). ``target``, ``targeted`` and ``loss_fn`` as for :func:`fgsm`."""
    from ..autograd import no_grad
    from ..creation import tensor
    from ..nn.functional import cross_entropy
    from .saliency import input_gradient
    if eps < 0:
        raise ValueError(f"pgd: eps must be >= 0, got {eps}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"pgd: steps must be a positive int, got {steps!r}")
    alpha = 2.5 * eps / steps if alpha is None else float(alpha)
    if alpha <= 0 and eps > 0:
        raise ValueError(f"pgd: alpha must be > 0, got {alpha}")
    target = _labels(target, x, "pgd")
    if loss_fn is None:
        def loss_fn(out, t):
            return cross_entropy(out, t, reduction="sum")
    x0 = x.detach()
    lo, hi = (None, None) if clip is None else (float(clip[0]), float(clip[1]))

    def project(xa):
        xa = x0 + (xa - x0).clip(-float(eps), float(eps))
        return xa if clip is None else xa.clip(lo, hi)

    x_adv = x0
    if random_start and eps > 0:
        noise = np.random.RandomState(seed).uniform(-eps, eps, x0.shape)
        x_adv = project(x0 + tensor(noise, dtype=x0.dtype, backend=x0.backend))
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        grad, _ = input_gradient(model, x_adv, lambda xi: loss_fn(model(xi), target))
        with no_grad():
            x_adv = project(x_adv + grad.sign() * (sign * alpha))
    return x_adv.detach()


def paste_patch(x, patch, top, left):
    """``x`` (N, C, H, W) with ``patch`` (C, h, w) written over rows top..top+h-1 and
    columns left..left+w-1; differentiable in both. ``top``/``left``: ints (the same
    place on every image) or sequences of N ints (one place per image)."""
    from ..nn.functional import pad
    from ..ops.shape import cat
    n, c, h, w = x.shape
    ph, pw = patch.shape[-2:]
    if patch.ndim != 3 or patch.shape[0] != c:
        raise ValueError(f"paste_patch: patch must be (C={c}, h, w), got shape {patch.shape}")
    tops = [int(top)] if np.ndim(top) == 0 else [int(t) for t in top]
    lefts = [int(left)] if np.ndim(left) == 0 else [int(v) for v in left]
    if len(tops) != len(lefts) or len(tops) not in (1, n):
        raise ValueError(f"paste_patch: give one (top, left) or one per image ({n}), got "
                         f"{len(tops)} tops and {len(lefts)} lefts")
    for t, v in zip(tops, lefts):
        if not (0 <= t <= h - ph and 0 <= v <= w - pw):
            raise ValueError(f"paste_patch: a {ph}x{pw} patch at (top={t}, left={v}) does not "
                             f"fit in a {h}x{w} image")
    one = patch.reshape((1,) + patch.shape)
    ones = one.detach() * 0.0 + 1.0
    specs = [(v, w - pw - v, t, h - ph - t) for t, v in zip(tops, lefts)]
    placed = [pad(one, s) for s in specs]                                 # each (1, C, H, W)
    masks = [pad(ones, s) for s in specs]
    if len(specs) > 1:
        placed, masks = cat(placed, dim=0), cat(masks, dim=0)
    else:
        placed, masks = placed[0], masks[0]
    return x * (1.0 - masks) + placed


def adversarial_patch(model, images, target, size, steps=200, lr=0.05, batch_size=32,
                      clip=(0.0, 1.0), seed=0, return_history=False):
    """Learn a (C, size, size) patch that turns ``model``'s answer to ``target`` wherever
    it is pasted on ``images`` (N, C, H, W). Returns the patch (detached), and with
    ``return_history`` also the per-step mean target log-probability."""
    from ..autograd import enable_grad
    from ..creation import tensor
    from ..nn.functional import log_softmax
    from ..optim import Adam
    from .saliency import frozen
    n, c, h, w = images.shape
    if not (isinstance(size, int) and 1 <= size <= min(h, w)):
        raise ValueError(f"adversarial_patch: size must be an int in [1, {min(h, w)}], "
                         f"got {size!r}")
    rng = np.random.RandomState(seed)
    lo, hi = float(clip[0]), float(clip[1])
    patch = tensor(rng.uniform(lo, hi, (c, size, size)), dtype=images.dtype,
                   backend=images.backend, requires_grad=True)
    opt = Adam([patch], lr=lr)
    history = []
    with frozen(model), enable_grad():
        for _ in range(int(steps)):
            b = rng.randint(0, n, min(batch_size, n))
            top, left = rng.randint(0, h - size + 1, len(b)), rng.randint(0, w - size + 1, len(b))
            logp = log_softmax(model(paste_patch(images[b], patch, top, left)), dim=1)
            objective = logp[:, int(target)].mean()
            opt.zero_grad()
            (-objective).backward()
            opt.step()
            patch.data.clamp_(lo, hi)
            history.append(float(objective.item()))
    patch = patch.detach()
    return (patch, history) if return_history else patch


def patch_success_rate(model, images, labels, patch, target, trials=4, seed=1,
                       batch_size=500):
    """Fraction of (image, random location) pairs, over images whose true label is not
    ``target``, that ``model`` classifies as ``target`` with ``patch`` pasted
    (``trials`` random locations per image)."""
    from ..autograd import no_grad
    labels = np.asarray(labels.numpy() if hasattr(labels, "numpy") else labels)
    keep = np.flatnonzero(labels != int(target))
    rng = np.random.RandomState(seed)
    _, _, h, w = images.shape
    ph, pw = patch.shape[-2:]
    hits = total = 0
    with no_grad():
        for _ in range(int(trials)):
            top, left = int(rng.randint(0, h - ph + 1)), int(rng.randint(0, w - pw + 1))
            for i in range(0, len(keep), batch_size):
                idx = keep[i:i + batch_size]
                pred = model(paste_patch(images[idx], patch, top, left)).numpy().argmax(1)
                hits += int((pred == int(target)).sum())
                total += len(idx)
    return hits / max(total, 1)
