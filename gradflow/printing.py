"""How a Tensor prints: PyTorch's layout (``torch/_tensor_str.py``), computed on the host.

``tensor_repr(t)`` is ``repr(t)``: ``tensor([...], dtype=..., grad_fn=...)`` with
PyTorch's element formatting (:func:`float_formatter`), line wrapping and
``threshold``/``edgeitems`` summarisation (:func:`torch_body`). The options are NumPy's
print options, set through :func:`set_printoptions` (``gradflow.set_printoptions``).
"""
from __future__ import annotations

import builtins
import sys

import numpy

from . import dtypes


def float_formatter(arr):
    """PyTorch's float print style (``torch/_tensor_str.py``): every element padded to one
    width; ``1.`` when all values are integral, else 4 decimals (``1.0000``), scientific
    (``1.0000e-05``) when the magnitudes span more than 1000x or leave [1e-4, 1e8]."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return None
    summarize = arr.size > numpy.get_printoptions()["threshold"]
    vals = arr.astype(numpy.float64).reshape(-1)
    if summarize:  # only what is shown decides the format (as PyTorch)
        e = numpy.get_printoptions()["edgeitems"]
        vals = numpy.concatenate([vals[:e], vals[-e:]])
    finite = vals[numpy.isfinite(vals)]
    nz = numpy.abs(finite[finite != 0])
    int_mode = bool(numpy.all(finite == numpy.ceil(finite)))
    sci = False
    if nz.size:
        lo, hi = nz.min(), nz.max()
        sci = hi / lo > 1000.0 or hi > 1e8 or (not int_mode and lo < 1e-4)
    if sci:
        fmt = "{:.4e}".format
    elif int_mode:
        def fmt(v):
            return f"{v:.0f}."
    else:
        fmt = "{:.4f}".format

    def one(v):
        return fmt(v) if numpy.isfinite(v) else str(float(v))

    # torch pads to the widest nonzero finite value (inf, nan and 0 do not count)
    width = builtins.max((len(one(v)) for v in finite[finite != 0]), default=1)
    return {"float_kind": lambda v: one(v).rjust(width)}


def torch_body(arr, indent=7):
    """The bracketed body of ``repr`` laid out as ``torch/_tensor_str.py`` does: elements
    padded to one width, ``threshold``/``edgeitems`` summarisation with a ``" ..."``
    element, and ``floor((80 - indent) / (width + 2))`` elements per line."""
    opts = numpy.get_printoptions()
    edge, summarize = opts["edgeitems"], arr.size > opts["threshold"]
    fmt = float_formatter(arr)
    if fmt is not None:
        one = fmt["float_kind"]
        shown = numpy.asarray(arr, dtype=numpy.float64).reshape(-1)
        if summarize:
            shown = numpy.concatenate([shown[:edge], shown[-edge:]])
        shown = shown[numpy.isfinite(shown) & (shown != 0)]
        width = len(one(shown[0])) if shown.size else 1  # torch's formatter width
    else:
        shown = arr.reshape(-1)
        if summarize:
            shown = numpy.concatenate([shown[:edge], shown[-edge:]])
        width = builtins.max(len(str(v)) for v in shown.tolist())

        def one(v):
            return str(v).rjust(width)

    def vector(a, ind):
        items = a.tolist()
        if summarize and len(items) > 2 * edge:
            data = [one(v) for v in items[:edge]] + [" ..."] + [one(v) for v in items[-edge:]]
        else:
            data = [one(v) for v in items]
        per_line = builtins.max(1, (80 - ind) // (width + 2))
        lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
        return "[" + (",\n" + " " * (ind + 1)).join(lines) + "]"

    def block(a, ind):
        if a.ndim == 1:
            return vector(a, ind)
        if summarize and a.shape[0] > 2 * edge:
            parts = [block(a[i], ind + 1) for i in range(edge)] + ["..."] + \
                [block(a[i], ind + 1) for i in range(a.shape[0] - edge, a.shape[0])]
        else:
            parts = [block(a[i], ind + 1) for i in range(a.shape[0])]
        return "[" + ("," + "\n" * (a.ndim - 1) + " " * (ind + 1)).join(parts) + "]"

    return block(arr, indent)


def tensor_repr(t):
    """``repr(t)`` of a Tensor ``t``: its values (fetched to the host) and, as PyTorch
    shows them, the non-default dtype, the backend (gradflow's device), and ``grad_fn`` or
    ``requires_grad=True``."""
    arr = t.numpy()
    extras = []
    if arr.ndim and arr.size and arr.dtype.kind in "fiub":
        body = torch_body(arr)
    elif arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            extras.append(f"size={tuple(arr.shape)}")
    else:
        body = numpy.array2string(arr, separator=", ", precision=4, prefix="tensor(",
                                  formatter=float_formatter(arr))
    if t.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
        extras.append(f"dtype={t.dtype}")
    if t.backend.name != "numpy":
        extras.append(f"backend='{t.backend.name}'")
    if t._node is not None:
        extras.append(f"grad_fn={t._node!r}")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Printing options for tensor reprs (forwarded to NumPy's, which format them)."""
    kw = {k: v for k, v in dict(precision=precision, threshold=threshold, edgeitems=edgeitems,
                                linewidth=linewidth).items() if v is not None}
    if profile == "default":
        kw = dict(precision=4, threshold=1000, edgeitems=3, linewidth=80, **kw)
    elif profile == "full":
        kw.setdefault("threshold", sys.maxsize)
    if sci_mode is not None:
        kw["suppress"] = not sci_mode
    numpy.set_printoptions(**kw)
