"""Receptive-field arithmetic: which input pixels can influence each layer's units.

For every layer the table gives, per axis (height, width):

- ``size``  -- the receptive field r: how many input pixels one unit sees;
- ``jump``  -- j: the distance, in input pixels, between two adjacent units;
- ``start`` -- the centre of the first unit's receptive field, in input pixel
  coordinates (the first input pixel's centre is 0; padding makes it negative).

A layer with kernel k, stride s, padding p and dilation d (effective kernel
k' = d(k-1)+1) maps (r, j, start) to::

    r_out     = r_in + (k' - 1) * j_in
    j_out     = j_in * s
    start_out = start_in + ((k' - 1) / 2 - p) * j_in
    n_out     = floor((n_in + 2p - k') / s) + 1

so a KxK stride-1 conv followed by a PxP pool gives a (P+K-1)x(P+K-1) field.
Element-wise layers (ReLU, batch norm, dropout...) change nothing; after a
Flatten or Linear layer every unit sees the whole input (``covers_input``).

``receptive_field`` takes either a model (it runs one forward pass to find the
layers in call order and their output sizes) or a list of layer descriptions::

    receptive_field([("conv", 5), ("pool", 2)], input_shape=(28, 28))
    receptive_field([dict(kind="conv", kernel_size=3, stride=2, padding=1)], (32, 32))

A tuple is ``(kind, kernel_size, stride, padding, dilation)`` with defaults
stride 1 for convolutions and stride = kernel for pools, padding 0, dilation 1.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..geometry import conv_out_size, int_tuple
from ._table import LayerTable

__all__ = ["receptive_field", "ReceptiveField", "RFRow"]


@dataclass
class RFRow:
    name: str
    type: str
    output_size: tuple        # (H, W) of this layer's output
    size: tuple               # receptive field (rh, rw) in input pixels
    jump: tuple               # (jh, jw)
    start: tuple              # centre of the first unit's field, (sh, sw)
    covers_input: bool = False

    def __str__(self):
        return (f"{self.name} ({self.type}): out {_fmt(self.output_size)}, rf {_fmt(self.size)}, "
                f"jump {_fmt(self.jump)}, start {_fmt(self.start)}")


def _fmt(t, collapse=True):
    if t is None:
        return "-"
    vals = [f"{v:g}" if isinstance(v, float) else str(v) for v in t]
    return vals[0] if collapse and len(set(vals)) == 1 and len(vals) == 2 else "x".join(vals)


def _num(v):
    return int(v) if float(v).is_integer() else float(v)


class ReceptiveField(LayerTable):
    """The per-layer table; ``rows[0]`` is the input itself (field 1, jump 1, start 0)."""

    _what = "receptive_field"

    def __str__(self):
        head = ("layer", "type", "output", "field", "jump", "start")
        body = [(r.name, r.type, _fmt(r.output_size, False),
                 (_fmt(r.size, False) + (" (all)" if r.covers_input else "")), _fmt(r.jump),
                 _fmt(r.start)) for r in self.rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        return "\n".join([line(head), rule] + [line(b) for b in body])

    __repr__ = __str__


def _pair(v, default=None):
    return int_tuple(default if v is None else v, 2, "kernel geometry", "receptive_field")


def _spec_from_description(d):
    """A tuple/dict description -> (kind, name, k, s, p, dil)."""
    if isinstance(d, dict):
        kind = str(d.get("kind", d.get("type", "conv")))
        k = d.get("kernel_size", d.get("kernel"))
        s, p, dil = d.get("stride"), d.get("padding", 0), d.get("dilation", 1)
        name = d.get("name", kind)
    elif isinstance(d, (tuple, list)) and d and isinstance(d[0], str):
        kind = d[0]
        k, s, p, dil = (list(d[1:]) + [None, None, 0, 1][len(d) - 1:])[:4]
        name = kind
    else:
        raise TypeError(f"receptive_field: a layer description is a (kind, kernel_size, stride, "
                        f"padding, dilation) tuple or a dict, got {d!r}")
    low = kind.lower()
    if low in ("flatten", "linear", "fc", "dense", "global"):
        return "global", name, None, None, None, None
    if low in ("relu", "identity", "act", "activation", "bn", "batchnorm", "dropout", "norm"):
        return "identity", name, None, None, None, None
    if k is None:
        raise ValueError(f"receptive_field: layer {d!r} needs a kernel_size")
    k = _pair(k)
    is_pool = "pool" in low
    s = _pair(s, default=k if is_pool else 1)
    return "spatial", name, k, s, _pair(p if p is not None else 0), _pair(dil if dil is not None else 1)


def _spec_from_module(m):
    """A module -> (kind, k, s, p, dil), found from its attributes (duck-typed)."""
    cls = type(m).__name__
    if cls.startswith("Adaptive") or cls.startswith("Global"):
        return "adaptive", None, None, None, None
    if cls in ("Flatten", "Linear", "LazyLinear", "Bilinear") or hasattr(m, "in_features"):
        return "global", None, None, None, None
    if hasattr(m, "kernel_size"):
        k = _pair(m.kernel_size)
        s = _pair(getattr(m, "stride", None) or k)
        dil = _pair(getattr(m, "dilation", 1) or 1)
        p = getattr(m, "padding", 0)
        if isinstance(p, str):
            p = (0, 0) if p == "valid" else tuple(dd * (kk - 1) // 2 for kk, dd in zip(k, dil))
        return "spatial", k, s, _pair(p), dil
    return "identity", None, None, None, None


def _step(prev, k, s, p, dil):
    """Apply one layer's arithmetic on both axes."""
    size, jump, start = [], [], []
    for a in range(2):
        ke = dil[a] * (k[a] - 1) + 1
        size.append(prev.size[a] + (ke - 1) * prev.jump[a])
        jump.append(prev.jump[a] * s[a])
        start.append(_num(prev.start[a] + ((ke - 1) / 2 - p[a]) * prev.jump[a]))
    return tuple(size), tuple(jump), tuple(start)


def _out_size(n, k, s, p, dil, where):
    out = []
    for a in range(2):
        o = conv_out_size(n[a], k[a], s[a], p[a], dil[a])
        if o <= 0:
            raise ValueError(f"receptive_field: layer {where} would produce an output of size "
                             f"{o} from input {n} (kernel {k}, stride {s}, padding {p}, "
                             f"dilation {dil}); (N + 2P - D(K-1) - 1)/S + 1 must be >= 1")
        out.append(o)
    return tuple(out)


def _global_row(name, typ, out_size, hw):
    return RFRow(name, typ, out_size, tuple(hw), None, None, covers_input=True)


def receptive_field(model_or_layers, input_shape):
    """Per-layer receptive field size, jump and start; see the module docstring.

    ``input_shape``: one sample's shape, ``(C, H, W)`` for a model (the batch
    dimension of one is added), ``(H, W)`` or ``(C, H, W)`` for descriptions."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) < 2:
        raise ValueError(f"receptive_field: input_shape needs spatial dimensions (H, W), "
                         f"got {input_shape}")
    hw = shape[-2:]
    rows = [RFRow("input", "Input", hw, (1, 1), (1, 1), (0, 0))]
    if hasattr(model_or_layers, "named_modules"):
        return ReceptiveField(rows + _model_rows(model_or_layers, shape, hw))
    n = hw
    for i, d in enumerate(model_or_layers):
        if hasattr(d, "forward") or hasattr(d, "kernel_size") and not isinstance(d, dict):
            kind, k, s, p, dil = _spec_from_module(d)
            name = f"{i}"
            typ = type(d).__name__
        else:
            kind, name, k, s, p, dil = _spec_from_description(d)
            typ = name
        prev = rows[-1]
        if prev.covers_input or kind in ("global", "adaptive"):
            rows.append(_global_row(str(name), typ, None, hw))
        elif kind == "identity":
            rows.append(RFRow(str(name), typ, n, prev.size, prev.jump, prev.start))
        else:
            n = _out_size(n, k, s, p, dil, name)
            rows.append(RFRow(str(name), typ, n, *_step(prev, k, s, p, dil)))
    return ReceptiveField(rows)


def _model_rows(model, shape, hw):
    from ..autograd import no_grad
    from .summary import _example_inputs
    with no_grad():
        records, _ = _trace_model(model, _example_inputs(model, [shape], 1))
    rows = []
    for rec in records:
        prev = rows[-1] if rows else RFRow("input", "Input", hw, (1, 1), (1, 1), (0, 0))
        typ = type(rec.module).__name__
        out = rec.output_shape
        out_hw = tuple(out[-2:]) if out is not None and len(out) == 4 else None
        kind, k, s, p, dil = _spec_from_module(rec.module)
        if kind == "adaptive" and out_hw is not None and not prev.covers_input:
            in_hw = rec.input_shapes[0][-2:]
            if all(i % o == 0 for i, o in zip(in_hw, out_hw)) and out_hw != (1, 1):
                k = tuple(i // o for i, o in zip(in_hw, out_hw))
                kind, s, p, dil = "spatial", k, (0, 0), (1, 1)
            else:
                kind = "global"
        if prev.covers_input or kind == "global" or out_hw is None:
            rows.append(_global_row(rec.name, typ, out_hw, hw))
        elif kind == "identity":
            rows.append(RFRow(rec.name, typ, out_hw, prev.size, prev.jump, prev.start))
        else:
            rows.append(RFRow(rec.name, typ, out_hw, *_step(prev, k, s, p, dil)))
    return rows


def _trace_model(model, inputs):
    from ._trace import trace
    return trace(model, inputs)
