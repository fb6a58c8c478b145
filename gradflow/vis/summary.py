"""``gradflow.summary(model, input_shape | input_size= | input_data=)``: the table an
AlexNet diagram shows.

One row per layer (leaf module, in the order the forward pass calls them):
type, output shape, parameter count and forward FLOPs, with totals. Found by
running one forward pass (of one sample's shape with a batch of
``batch_size`` prepended, torchinfo's ``input_size`` with the batch included,
or given ``input_data``; under ``no_grad`` and in eval mode) with hooks on every leaf module, so any model
whose layers are modules works, not only Sequential.

FLOPs count a multiply-add as 2 operations:

==================  =====================================================
Conv2d              2 * N*C_out*OH*OW * (C_in/groups)*kH*kW
Linear              2 * (rows) * in_features * out_features
                    (a bias adds 1 per output and the k-term dot product has
                    only k-1 additions, so 2k per output is exact with bias)
MaxPool / AvgPool   kH*kW per output element (one compare or add per tap)
BatchNorm           2 per element (scale and shift with running statistics)
LocalResponseNorm   2*size + 3 per element (squares, window sum, pow, div)
activations         1 per element (ReLU, Sigmoid, Tanh, LeakyReLU...)
Adaptive/global     1 per input element
Flatten, Dropout,   0 (no arithmetic in eval mode)
Identity, reshapes
==================  =====================================================

Transcendentals (exp in sigmoid/softmax) count as one operation; this is
the convention of fvcore/ptflops-style counters, times two for multiply-adds.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._table import LayerTable

__all__ = ["summary", "Summary", "SummaryRow", "layer_flops", "conv2d_flops", "linear_flops"]


@dataclass
class SummaryRow:
    name: str
    type: str
    output_shape: tuple
    params: int
    flops: int
    trainable: int = 0

    def __str__(self):
        return (f"{self.name} ({self.type}): output {self.output_shape}, "
                f"{self.params:,} params, {self.flops:,} FLOPs")


def conv2d_flops(out_shape, in_channels, kernel_size, groups=1):
    """2 * (number of outputs) * (inputs feeding each output)."""
    n = 1
    for v in out_shape:
        n *= int(v)
    kh, kw = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
    return 2 * n * (int(in_channels) // int(groups)) * int(kh) * int(kw)


def linear_flops(out_shape, in_features):
    n = 1
    for v in out_shape:
        n *= int(v)
    return 2 * n * int(in_features)


_ELEMENTWISE = {"ReLU", "ReLU6", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "GELU", "SiLU",
                "Softplus", "Hardtanh", "PReLU", "Softmax", "LogSoftmax", "Softsign", "Mish"}
_FREE = {"Flatten", "Unflatten", "Dropout", "Dropout2d", "Identity", "Reshape", "View"}


def _numel(shape):
    n = 1
    for v in shape or ():
        n *= int(v)
    return n


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def layer_flops(module, input_shapes, output_shape):
    """Forward FLOPs of one call of ``module`` (see the table in the module docstring)."""
    cls = type(module).__name__
    out_n = _numel(output_shape)
    in_n = _numel(input_shapes[0]) if input_shapes else 0
    if hasattr(module, "in_channels") and hasattr(module, "kernel_size"):
        return conv2d_flops(output_shape, module.in_channels, _pair(module.kernel_size),
                            getattr(module, "groups", 1))
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return linear_flops(output_shape, module.in_features)
    if cls.startswith("Adaptive") or cls.startswith("Global"):
        return in_n
    if hasattr(module, "kernel_size"):                       # pooling
        kh, kw = _pair(module.kernel_size)
        return out_n * int(kh) * int(kw)
    if cls.startswith("BatchNorm") or cls in ("GroupNorm", "LayerNorm", "InstanceNorm2d"):
        return 2 * out_n
    if cls == "LocalResponseNorm":
        return (2 * int(getattr(module, "size", 5)) + 3) * out_n
    if cls in _ELEMENTWISE:
        return out_n
    return 0


class Summary(LayerTable):
    """Rows plus totals; ``str(summary)`` is the printed table."""

    _what = "summary"

    def __init__(self, rows, input_shapes, output_shape, total_params, trainable_params,
                 batch_size):
        self.rows = rows
        self.input_shapes = input_shapes
        self.output_shape = output_shape
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_flops = sum(r.flops for r in rows)
        self.batch_size = batch_size
        self.assumed = None   # which reading of the input size was used (set by summary())

    def to_dict(self):
        return {"rows": [vars(r).copy() for r in self.rows], "total_params": self.total_params,
                "trainable_params": self.trainable_params, "total_flops": self.total_flops,
                "input_shapes": self.input_shapes, "output_shape": self.output_shape,
                "batch_size": self.batch_size, "assumed": self.assumed}

    def __str__(self):
        head = ("Layer (type)", "Output shape", "Param #", "FLOPs")
        body = [(f"{r.name} ({r.type})" if r.name else r.type, str(r.output_shape),
                 f"{r.params:,}", f"{r.flops:,}") for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(head, *body)]

        def line(cells):
            return "  ".join([cells[0].ljust(widths[0]), cells[1].ljust(widths[1]),
                              cells[2].rjust(widths[2]), cells[3].rjust(widths[3])])
        rule = "=" * len(line(head))
        ins = ", ".join(str(s) for s in self.input_shapes)
        foot = [f"Total params: {self.total_params:,} "
                f"(trainable {self.trainable_params:,}, "
                f"non-trainable {self.total_params - self.trainable_params:,})",
                f"Forward FLOPs: {self.total_flops:,} ({_human(self.total_flops)}FLOP, "
                f"multiply-add = 2) for input {ins}",
                f"Output shape: {self.output_shape}"]
        if getattr(self, "assumed", None):
            foot.append(f"Input read as: {self.assumed}")
        return "\n".join([rule, line(head), rule] + [line(b) for b in body] + [rule] + foot)

    __repr__ = __str__


def _human(n):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n} "


def _first_param(model):
    for p in model.parameters():
        return p
    return None


def _example_inputs(model, shapes, batch_size):
    """Random inputs of these per-sample shapes with a batch of ``batch_size`` prepended."""
    return _inputs_of_shapes(model, [(batch_size,) + tuple(s) for s in shapes])


def _inputs_of_shapes(model, shapes, dtypes=None, device=None):
    """Inputs of these full shapes on the model's backend and dtype (its first
    parameter's; the defaults for a model without parameters): random normal for
    floating dtypes, zeros for integer ones (valid indices for an Embedding), as
    torchinfo makes them. ``dtypes``: one per input; ``device``: where to put them."""
    from ..creation import randn, zeros
    from .. import dtypes as _dt
    p = _first_param(model) if hasattr(model, "parameters") else None
    kw = dict(dtype=p.dtype, backend=p.backend) if p is not None else {}
    if device is not None:
        from ..device import device as _device
        kw["backend"] = _device.resolve_backend(device)
    if dtypes is not None and len(dtypes) != len(shapes):
        raise ValueError(f"summary: {len(dtypes)} dtypes for {len(shapes)} inputs")
    out = []
    for i, shape in enumerate(shapes):
        dt = _dt.as_dtype(dtypes[i]) if dtypes is not None else kw.get("dtype")
        make = randn if dt is None or dt.kind in "fc" else zeros
        out.append(make(*shape, **dict(kw, **({"dtype": dt} if dt is not None else {}))))
    return out


def _shapes(input_shape):
    if isinstance(input_shape, int):
        return [(int(input_shape),)]
    if input_shape and isinstance(input_shape[0], (tuple, list)):
        return [tuple(int(v) for v in s) for s in input_shape]
    return [tuple(int(v) for v in input_shape)]


def _readings(input_shape, input_size, batch_size, batch_dim):
    """The ways to read the given size, most likely first: [(description, full shapes)].

    ``input_shape`` (positional; torchsummary's convention): one sample's shape,
    ``batch_size`` prepended -- else, if that fails, torchinfo's reading (batch
    included). ``input_size=`` (torchinfo's keyword): the batch included -- else one
    sample's. With ``batch_dim``, ``input_size`` excludes the batch, which goes there."""
    if input_size is not None:
        shapes = _shapes(input_size)
        if batch_dim is not None:
            full = [s[:batch_dim] + (batch_size or 1,) + s[batch_dim:] for s in shapes]
            return [(f"input_size without the batch dimension, batch of {batch_size or 1} inserted "
                     f"at dim {batch_dim}", full)]
        return [("input_size, batch dimension included (torchinfo's convention)", shapes),
                (f"one sample's shape, batch of {batch_size or 1} prepended",
                 [(batch_size or 1,) + s for s in shapes])]
    shapes = _shapes(input_shape)
    b = 1 if batch_size is None else batch_size
    return [(f"one sample's shape, batch of {b} prepended (torchsummary's convention)",
             [(b,) + s for s in shapes]),
            ("the full input size, batch dimension included (torchinfo's convention)", shapes)]


def summary(model, input_shape=None, batch_size=None, *, input_size=None, input_data=None,
            batch_dim=None, dtypes=None, device=None, verbose=None):
    """Run ``model`` once and tabulate its layers.

    Three ways to say what goes in:

    * ``summary(model, (3, 32, 32))``: ONE sample's shape without the batch
      dimension (torchsummary's convention), e.g. ``(784,)`` for an MLP, a list of
      shapes for a model with several inputs; a batch of ``batch_size`` (default 1)
      is prepended.
    * ``summary(model, input_size=(1, 3, 227, 227))``: torchinfo's convention, the
      batch dimension included (with ``batch_dim=0``, excluded and inserted there).
    * ``summary(model, input_data=x)``: example tensors (a tensor, a list/tuple of
      positional inputs, or a dict of keyword inputs), used as given.

    A size can be ambiguous (``(1, 3, 227, 227)`` given positionally is not one
    3-D conv sample): when the forward pass fails under the reading above, the other
    one is tried, and ``.assumed`` (also printed under the table) says which reading
    was used and why. Random inputs are made on the model's backend and dtype
    (``dtypes=[...]`` per input: integer dtypes get zeros; ``device=``). FLOPs are for
    one forward pass of that batch. ``verbose=1`` also prints the table, ``verbose=0``
    does not; the default prints it in a script (so ``gradflow.summary(model, shape)``
    as a statement shows it, as torchinfo's does) but not in an interactive session,
    where the returned value displays itself. Returns a
    :class:`Summary` (``.rows``, ``.total_params``, ``.trainable_params``,
    ``.total_flops``, ``.assumed``; ``print()`` it for the table)."""
    from ..autograd import no_grad
    from ..tensor import Tensor
    from ._trace import trace
    kwargs = None
    if input_data is not None:
        if isinstance(input_data, dict):
            xs, kwargs = [], dict(input_data)
        else:
            xs = [input_data] if isinstance(input_data, Tensor) else list(input_data)
        given = xs + list((kwargs or {}).values())
        if not given or not all(isinstance(x, Tensor) for x in given):
            raise TypeError("summary: input_data must be a Tensor, a list/tuple of Tensors or a "
                            "dict of Tensors")
        attempts = [("input_data, used as given", xs)]
        shapes = [tuple(x.shape) for x in given]
    elif input_size is None and input_shape is None:
        raise TypeError("summary: say what goes in: input_shape (one sample's shape, e.g. (3, 32, "
                        "32)), input_size= (torchinfo's, batch included, e.g. (1, 3, 32, 32)) or "
                        "input_data= (example tensors)")
    else:
        attempts = [(how, shapes) for how, shapes in _readings(input_shape, input_size, batch_size,
                                                                batch_dim)]
    failures = []
    for how, spec in attempts:
        xs = spec if input_data is not None else _inputs_of_shapes(model, spec, dtypes, device)
        try:
            with no_grad():
                records, out = trace(model, xs, kwargs=kwargs)
        except (ValueError, RuntimeError, TypeError, IndexError) as e:
            failures.append((how, spec, e))
            continue
        shapes = [tuple(x.shape) for x in xs] + [tuple(v.shape) for v in (kwargs or {}).values()]
        break
    else:
        raise failures[0][2]
    assumed = f"input {', '.join(str(s) for s in shapes)}: {how}"
    if failures:
        f_how, f_spec, f_err = failures[0]
        assumed += (f"; because read as {f_how}, {', '.join(str(s) for s in f_spec)}, the "
                    f"forward pass failed: {f_err}")
    elif input_size is None and input_data is None and len(attempts) > 1:
        size = attempts[1][1]
        if all(len(s) >= 2 and s[0] == 1 for s in size):
            assumed += (f"; if {', '.join(str(s) for s in size)} already includes the batch "
                        f"dimension, pass input_size= instead")
    batch = shapes[0][0] if shapes and shapes[0] else 1
    result = _tabulate(model, records, out, shapes, batch)
    result.assumed = assumed
    if verbose if verbose is not None else not _interactive():
        print(result)
    return result


def _interactive():
    """A REPL or a notebook: there the value of a bare expression statement is displayed."""
    import sys
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "ipykernel" in sys.modules


def _tabulate(model, records, out, shapes, batch):
    seen = set()
    rows = []
    for rec in records:
        params = trainable = 0
        for p in rec.module.parameters():
            if id(p) in seen:              # a layer called twice, or shared weights
                continue
            seen.add(id(p))
            params += p.numel()
            trainable += p.numel() if p.requires_grad else 0
        rows.append(SummaryRow(rec.name, type(rec.module).__name__, rec.output_shape, params,
                               int(layer_flops(rec.module, rec.input_shapes, rec.output_shape)),
                               trainable))
    # parameters that no leaf layer owns (a container's own Parameter used in forward)
    for pname, p in model.named_parameters():
        if id(p) not in seen:
            seen.add(id(p))
            rows.append(SummaryRow(pname, "Parameter", tuple(p.shape), p.numel(), 0,
                                   p.numel() if p.requires_grad else 0))
    uniq = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in uniq.values())
    trainable = sum(p.numel() for p in uniq.values() if p.requires_grad)
    out_t = out[0] if isinstance(out, (tuple, list)) else out
    return Summary(rows, shapes, tuple(out_t.shape), total, trainable, batch)
