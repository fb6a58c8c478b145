"""Sliding-window geometry shared by the backends, the ops and the nn modules.

A leaf module: it imports nothing from gradflow, so every layer can use it.

- :func:`ntuple` reads an ``int or n ints`` argument (``kernel_size=3`` or ``(3, 5)``)
  strictly, as the functional ops do: ints only (bools refused), each ``>= minimum``.
- :func:`int_tuple` reads the same argument leniently, as the Module constructors do
  (anything ``int()`` accepts, e.g. numpy integers).
- :func:`conv_out_size` is the output length of one axis of a convolution or pooling
  window, ``floor((size + 2p - d(k-1) - 1) / s) + 1``, with PyTorch's ``ceil_mode`` rule.
"""
from __future__ import annotations

_WORDS = {1: "a 1-tuple", 2: "a pair of ints", 3: "three ints"}


def ntuple(v, n, name, op, minimum=1):
    """``v`` (an int, or n ints) as an n-tuple of ints, each ``>= minimum``.

    A tensor-like ``v`` (anything with ``tolist()``, e.g. a 1-element Tensor) is read
    through ``tolist()``. Raises ValueError naming ``op``, ``name`` and the value."""
    if hasattr(v, "tolist") and not isinstance(v, (int, tuple, list)):
        v = v.tolist()

    def is_int(i):
        return isinstance(i, int) and not isinstance(i, bool)

    t = (v,) * n if is_int(v) else tuple(v) if isinstance(v, (tuple, list)) else None
    if t is None or len(t) != n or not all(is_int(i) for i in t) or min(t) < minimum:
        raise ValueError(f"{op}: {name} must be an int or {_WORDS.get(n, f'{n} ints')} "
                         f">= {minimum}, got {v!r}")
    return t


def pair(v, name, op, minimum=1):
    """``ntuple(v, 2, ...)``: ``(h, w)``."""
    return ntuple(v, 2, name, op, minimum)


def triple(v, name, op, minimum=1):
    """``ntuple(v, 3, ...)``: ``(d, h, w)``."""
    return ntuple(v, 3, name, op, minimum)


def int_tuple(v, n, name, where):
    """``v`` (an int or n values ``int()`` accepts) as an n-tuple of ints; the lenient
    reading of the Module constructors. ValueError naming ``where`` on a wrong length."""
    vals = v if isinstance(v, (tuple, list)) else (v,)
    if isinstance(v, (tuple, list)) and len(v) != n:
        raise ValueError(f"{where}: {name} must be an int or {_WORDS.get(n, f'{n} ints')}, "
                         f"got {v!r}")
    for i in vals:
        try:
            int(i)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: {name} must be an int or {_WORDS.get(n, f'{n} ints')}, "
                            f"got {v!r}") from None
    return tuple(int(i) for i in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def conv_out_size(size, k, s, p, d=1, ceil_mode=False):
    """Output length of a sliding window: ``floor((size + 2p - d(k-1) - 1)/s) + 1``.

    With ``ceil_mode`` the division rounds up, but (as PyTorch) the last window must start
    inside the input or the left padding. May be <= 0; callers check and explain."""
    span = size + 2 * p - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:
            out -= 1
        return out
    return span // s + 1
