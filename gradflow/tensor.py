"""``Tensor``: one backend array plus its place in the autograd graph.

``.array`` is the backend array (numpy or cupy), ``.backend`` the Backend that
owns it, ``.grad`` a Tensor (or None), ``._node`` the graph node (``Context``)
that produced it, ``None`` for leaves. Math lives in :mod:`gradflow.ops`; the
methods here are thin, PyTorch-named entry points to it.
"""
from __future__ import annotations

import builtins
import numbers
import weakref
from collections import namedtuple

import numpy

from . import autograd as _autograd, dtypes
from .autograd import backward as _backward, is_grad_enabled
from .backends import Backend, current_backend, device_types, get_backend, is_backend_name

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


class _ScalarError(RuntimeError, ValueError):
    """``item()`` of a tensor that is not one element: a RuntimeError as PyTorch's (and a
    ValueError, as gradflow raised before)."""


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


def _float_formatter(arr):
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


def _torch_body(arr, indent=7):
    """The bracketed body of ``repr`` laid out as ``torch/_tensor_str.py`` does: elements
    padded to one width, ``threshold``/``edgeitems`` summarisation with a ``" ..."``
    element, and ``floor((80 - indent) / (width + 2))`` elements per line."""
    opts = numpy.get_printoptions()
    edge, summarize = opts["edgeitems"], arr.size > opts["threshold"]
    fmt = _float_formatter(arr)
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


class Size(tuple):
    """PyTorch's ``torch.Size``: a tuple of dims (``x.shape == gradflow.Size([2, 3])``)."""

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


def _operand(o):
    """True for what elementwise ops accept next to a Tensor."""
    return isinstance(o, (Tensor, numbers.Number, numpy.ndarray, numpy.generic, list, tuple))


def _axis(dim, axis, name="dim"):
    if dim is not None and axis is not None and dim != axis:
        raise TypeError(f"give either dim= or axis=, not both ({dim} vs {axis})")
    return dim if dim is not None else axis


def _is_dtype_name(s):
    """True for dtype spellings ("float64", "int64", "float"), False for device/backend names."""
    head = s.split(":")[0].lower()
    if head in device_types() or is_backend_name(head):
        return False
    try:
        numpy.dtype(s)
        return True
    except TypeError:
        return False


class Tensor:
    __slots__ = ("array", "backend", "requires_grad", "grad", "_node", "_version", "_grad_hooks",
                 "_post_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy scalars/arrays defer to Tensor's operators

    def __init__(self, data, dtype=None, requires_grad=False, backend=None):
        be = get_backend(backend)
        if isinstance(data, Tensor):
            data = data.array if data.backend is be else data.numpy()
        dt = dtypes.as_dtype(dtype) or dtypes.infer_dtype(data)
        self.array = be.asarray(data, dtype=dt)
        self.backend = be
        self.grad = None
        self._node = None
        self._version = [0]
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, array, backend, requires_grad=False):
        """Wrap a backend array without copying (internal fast path)."""
        if isinstance(array, numpy.generic):  # NumPy reductions return scalars
            array = numpy.asarray(array)
        t = object.__new__(cls)
        t.array = array
        t.backend = backend
        t.requires_grad = requires_grad
        t.grad = None
        t._node = None
        t._version = [0]
        return t

    # -- properties ------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.array.shape)

    @property
    def ndim(self):
        return self.array.ndim

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def device(self):
        from .device import device
        return device(self.backend.device_type)

    @property
    def is_cuda(self):
        return self.backend.device_type == "cuda"

    def _new(self, fn, *args, dtype=None, requires_grad=False):
        from . import creation
        return getattr(creation, fn)(*args, dtype=dtype or self.dtype, requires_grad=requires_grad,
                                     backend=self.backend)

    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self._new("zeros", *size, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self._new("ones", *size, dtype=dtype, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad=False):
        return self._new("zeros", *size, dtype=dtype, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False):
        return self._new("full", size, fill_value, dtype=dtype, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, requires_grad=False):
        return self._new("tensor", data, dtype=dtype, requires_grad=requires_grad)

    @property
    def is_leaf(self):
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def data(self):
        """The same storage outside the graph (PyTorch's ``.data``); in-place updates
        through it are allowed, e.g. ``p.data.add_(-lr * p.grad)``."""
        t = Tensor._make(self.array, self.backend)
        t._version = self._version
        return t

    @data.setter
    def data(self, value):
        value = value if isinstance(value, Tensor) else Tensor(value, backend=self.backend)
        if value.shape != self.shape or value.dtype != self.dtype:
            raise ValueError(f"data: cannot assign shape {value.shape} {value.dtype} to a tensor "
                             f"of shape {self.shape} {self.dtype}")
        self.array = value.array
        self._version[0] += 1

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return int(self.array.size)

    nelement = numel

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # -- conversion ------------------------------------------------------------------------
    def numpy(self):
        return self.backend.to_numpy(self.array)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def item(self):
        if self.array.size != 1:
            raise _ScalarError(f"item: only one-element tensors can be converted to Python "
                               f"scalars, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __float__(self):
        return builtins.float(self.item())

    def __int__(self):
        return builtins.int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, got {self.dtype}")
        return builtins.int(self.item())

    def __bool__(self):
        if self.array.size != 1:
            raise RuntimeError(f"bool: the truth value of a tensor with {self.array.size} "
                               f"elements (shape {self.shape}) is ambiguous; use .any() or .all()")
        return builtins.bool(self.item())

    def __format__(self, spec):
        if self.ndim == 0 or (self.array.size == 1 and spec):  # f"{loss}" prints the number
            return format(self.item(), spec)
        return format(repr(self), spec)

    def __repr__(self):
        arr = self.numpy()
        extras = []
        if arr.ndim and arr.size and arr.dtype.kind in "fiub":
            body = _torch_body(arr)
        elif arr.size == 0:
            body = "[]"
            if arr.ndim != 1:
                extras.append(f"size={tuple(arr.shape)}")
        else:
            body = numpy.array2string(arr, separator=", ", precision=4, prefix="tensor(",
                                      formatter=_float_formatter(arr))
        if self.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self.dtype}")
        if self.backend.name != "numpy":
            extras.append(f"backend='{self.backend.name}'")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __hash__(self):
        return id(self)

    # -- graph -------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=None, create_graph=False, gradient=None):
        """Backpropagate from this tensor into every leaf's ``.grad`` (accumulating).

        ``grad`` (PyTorch's name: ``gradient``) is required unless the tensor has one
        element; the graph's saved tensors are freed unless ``retain_graph=True``.
        ``create_graph=True`` records the backward pass itself, so the ``.grad`` it
        leaves can be differentiated again (``retain_graph`` then defaults to True)."""
        if gradient is not None:
            if grad is not None:
                raise TypeError("backward: give grad= or gradient=, not both")
            grad = gradient
        _backward(self, grad, retain_graph, create_graph)

    def detach(self):
        """A tensor sharing storage (and the in-place version counter), cut from the graph."""
        t = Tensor._make(self.array, self.backend)
        t._version = self._version
        return t

    def detach_(self):
        self._node = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"requires_grad: only floating-point tensors can require "
                               f"gradients, got dtype {self.dtype}")
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_(False): this tensor is the output of an op in a "
                               "graph; use .detach() instead")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is not None:
            self._node.retained = weakref.ref(self)
        return self

    @property
    def retains_grad(self):
        """True for a non-leaf tensor whose ``retain_grad()`` was called."""
        return self._node is not None and self._node.retained is not None and \
            self._node.retained() is self

    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is computed
        (before it is accumulated into a leaf's ``.grad`` or passed on); a returned
        tensor replaces the gradient. Returns a handle with ``.remove()``."""
        from .autograd import RemovableHandle
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is not None:
            if self._node.hooks is None:
                self._node.hooks = {}
            return RemovableHandle(self._node.hooks, hook)
        if getattr(self, "_grad_hooks", None) is None:
            self._grad_hooks = {}
        _autograd._leaf_hooks[0] += 1
        return RemovableHandle(self._grad_hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` after a leaf's ``.grad`` has been accumulated by backward."""
        from .autograd import RemovableHandle
        if self._node is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if getattr(self, "_post_hooks", None) is None:
            self._post_hooks = {}
        _autograd._leaf_hooks[0] += 1
        return RemovableHandle(self._post_hooks, hook)

    def _check_inplace(self, op):
        if is_grad_enabled() and self.requires_grad:
            kind = "a leaf tensor that requires grad" if self._node is None else \
                "a tensor that is part of the autograd graph"
            raise RuntimeError(
                f"{op}: in-place operation on {kind} (shape {self.shape}); the graph may still "
                f"need its value. Update parameters under gradflow.no_grad() or through "
                f"p.data, or compute out of place")

    def _bump(self):
        self._version[0] += 1
        return self

    # -- moving between backends and dtypes ------------------------------------------------
    def to(self, *args, dtype=None, device=None, backend=None, copy=False, non_blocking=False,
           memory_format=None):
        """``.to("numba")``, ``.to("cuda")``, ``.to(gradflow.device("cpu"))``,
        ``.to(gradflow.float64)``, ``.to(other)`` (its backend and dtype). Differentiable;
        a no-op returns ``self``. ``non_blocking`` is accepted (copies are synchronous);
        ``memory_format`` (``gradflow.channels_last`` ...) is accepted and ignored, a
        deliberate no-op: gradflow stays NCHW (see :mod:`gradflow.layout`)."""
        from .device import device as _device
        from .layout import check
        check(memory_format, "to")
        for a in args:
            if isinstance(a, Tensor):
                backend, dtype = a.backend, a.dtype
            elif isinstance(a, str) and _is_dtype_name(a):
                dtype = a  # .to("float64")
            elif isinstance(a, (str, Backend, _device)):
                backend = a
            else:
                dtype = a
        out = self
        if backend is not None or device is not None:
            target = _device.resolve_backend(backend if backend is not None else device)
            if target is not out.backend:
                from .ops.shape import ToBackend
                out = ToBackend.apply(out, target)
        if dtype is not None:
            dt = dtypes.as_dtype(dtype)
            if dt != out.dtype:
                from .ops.elementwise import Cast
                out = Cast.apply(out, dt)
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None, non_blocking=False):
        """``x.type()`` -> ``'torch.FloatTensor'`` (PyTorch's type string; ``cuda.`` on the
        GPU); ``x.type(gradflow.float64)`` / ``x.type('torch.DoubleTensor')`` convert."""
        if dtype is None:
            name = _TYPE_NAMES.get(self.dtype.name, self.dtype.name)
            return f"torch.{'cuda.' if self.is_cuda else ''}{name}"
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            inv = {v: k for k, v in _TYPE_NAMES.items()}
            name = dtype.rsplit(".", 1)[-1]
            if name not in inv:
                raise ValueError(f"type: invalid type {dtype!r}")
            out = self.to(inv[name])
            if ".cuda." in dtype and not out.is_cuda:
                out = out.cuda()
            return out
        if isinstance(dtype, type) and hasattr(dtype, "_dtype"):  # gradflow.FloatTensor
            return self.to(dtype._dtype)
        return self.to(dtype)

    def cpu(self):
        from .backends import default_cpu_backend
        return self if self.backend.device_type == "cpu" else self.to(default_cpu_backend())

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def long(self):
        return self.to(dtypes.int64)

    def int(self):
        return self.to(dtypes.int32)

    def bool(self):
        return self.to(dtypes.bool_)

    def type_as(self, other):
        return self.to(other.dtype)

    # -- in-place updates (outside the graph) -----------------------------------------------
    def _inplace(self, op, other):
        if self.array.dtype.kind != "f":
            self._check_int_inplace(op, other)
        if self._in_graph(other):  # a non-leaf of the graph: rebind to the result (PyTorch
            # allows it); a leaf that requires grad refuses; _rebind checks shape and dtype
            return self._rebind(op + "_", getattr(_ew, op)(self, other))
        self._check_inplace(op + "_")
        from .ops.elementwise import scalar_or_array
        b = scalar_or_array(other, self, op + "_")
        res = self.backend.binary(op, self.array, b)
        if tuple(res.shape) != self.shape:
            raise RuntimeError(f"{op}_: output with shape {self.shape} doesn't match the "
                               f"broadcast shape {tuple(res.shape)}")
        self.backend.copyto_(self.array, res)
        return self._bump()

    def _check_int_inplace(self, op, other):
        """PyTorch refuses an in-place result its integer/bool tensor cannot hold: true
        division, a float operand, an integer operand into a bool tensor."""
        kind = other.dtype.kind if isinstance(other, (Tensor, numpy.ndarray, numpy.generic)) \
            else "b" if isinstance(other, builtins.bool) \
            else "i" if isinstance(other, numbers.Integral) else "f"
        if op == "div" or kind == "f" or (self.dtype.kind == "b" and kind != "b"):
            res = "float" if op == "div" or kind == "f" else "int64"
            raise RuntimeError(f"{op}_: result type {res} can't be cast to the {self.dtype} "
                               f"tensor updated in place (shape {self.shape})")

    def add_(self, other, alpha=1):
        return self._inplace("add", other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return self._inplace("sub", other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self._inplace("mul", other)

    def div_(self, other):
        return self._inplace("div", other)

    def zero_(self):
        return self.fill_(0, _op="zero_")

    def fill_(self, value, _op="fill_"):
        self._check_inplace(_op)
        self.backend.copyto_(self.array, self.backend.full((), value, self.dtype))
        return self._bump()

    def copy_(self, src):
        self._check_inplace("copy_")
        src = src if isinstance(src, Tensor) else Tensor(src, dtype=self.dtype, backend=self.backend)
        if src.backend is not self.backend:
            src = src.to(self.backend)
        arr = src.array if src.dtype == self.dtype else self.backend.astype(src.array, self.dtype)
        try:
            self.backend.copyto_(self.array, arr)
        except ValueError:
            raise ValueError(f"copy_: cannot copy a tensor of shape {src.shape} into shape "
                             f"{self.shape}; shapes must be broadcastable") from None
        return self._bump()

    def _unary_(self, op):
        """In-place elementwise math (``x.relu_()``, ``x.exp_()``...); on a non-leaf of the
        graph the tensor is rebound to the out-of-place result."""
        if self._in_graph():
            return self._rebind(op + "_", getattr(self, op)())
        self._check_inplace(op + "_")
        self.backend.copyto_(self.array, self.backend.unary(op, self.array))
        return self._bump()

    def relu_(self): return self._unary_("relu")
    def abs_(self): return self._unary_("abs")
    def sqrt_(self): return self._unary_("sqrt")
    def exp_(self): return self._unary_("exp")
    def log_(self): return self._unary_("log")
    def neg_(self): return self._unary_("neg")
    def sigmoid_(self): return self._unary_("sigmoid")
    def tanh_(self): return self._unary_("tanh")

    def clamp_(self, min=None, max=None):
        if self._in_graph(min, max):
            return self._rebind("clamp_", self.clamp(min, max))
        self._check_inplace("clamp_")
        self.backend.copyto_(self.array, self.backend.clip(self.array, min, max))
        return self._bump()

    def _draw(self, kind, generator):
        if generator is None:
            return getattr(self.backend, kind)(self.shape, self.dtype)
        from .creation import _check_generator, _host_draw
        _check_generator(generator, kind)
        return _host_draw(generator, self.backend, kind, self.shape, self.dtype)

    def normal_(self, mean=0.0, std=1.0, generator=None):
        self._check_inplace("normal_")
        r = self._draw("randn", generator)
        self.backend.copyto_(self.array, r * std + mean)
        return self._bump()

    def uniform_(self, a=0.0, b=1.0, generator=None):
        self._check_inplace("uniform_")
        r = self._draw("rand", generator)
        self.backend.copyto_(self.array, r * (b - a) + a)
        return self._bump()

    def bernoulli_(self, p=0.5, generator=None):
        self._check_inplace("bernoulli_")
        r = self._draw("rand", generator)
        self.backend.copyto_(self.array, self.backend.astype(r < p, self.dtype))
        return self._bump()

    def _rebind(self, op, out):
        """In-place op on a non-leaf tensor of the graph (``scores.masked_fill_(m, -inf)``):
        ``self`` becomes the out-of-place result ``out`` (new array, node and version
        counter, so nodes that saved the old value keep it); a leaf that requires grad
        refuses, as every in-place op."""
        if self._node is None and self.requires_grad:
            self._check_inplace(op)
        if out.shape != self.shape:  # an in-place result keeps the tensor's shape (PyTorch)
            raise RuntimeError(f"{op}: output with shape {self.shape} doesn't match the "
                               f"broadcast shape {out.shape}")
        if out.dtype != self.dtype:
            raise RuntimeError(f"{op}: result type {out.dtype} can't be cast to the "
                               f"{self.dtype} tensor updated in place (shape {self.shape})")
        old = self._node
        if old is not None and old.is_view:
            # self is a view of its node's input (slice, reshape, transpose...: another array
            # sharing the input's version counter; setitem's output is the input's own
            # array): rebinding would leave the base unchanged -- a silently wrong value
            raise RuntimeError(
                f"{op}: in-place operation on a view ({old.name}) of a tensor that is part of "
                f"the autograd graph (shape {self.shape}) is not supported: the base tensor "
                f"would not see the change. Use the out-of-place form (y = y.{op.rstrip('_')}"
                f"(...)) or apply it to the base tensor.")
        self.array, self._node, self.requires_grad = out.array, out._node, out.requires_grad
        self._version = [self._version[0] + 1]
        self._move_retained(old)
        return self

    def _move_retained(self, old):
        """``retain_grad()`` follows the tensor to its new node after an in-place op: its
        ``.grad`` is the gradient w.r.t. the new value (PyTorch), not the old one."""
        if old is not None and old.retained is not None and old.retained() is self:
            old.retained = None
            self._node.retained = weakref.ref(self)

    def _in_graph(self, *others):
        return is_grad_enabled() and (self.requires_grad or builtins.any(
            isinstance(o, Tensor) and o.requires_grad for o in others))

    def masked_fill_(self, mask, value):
        """In place: ``value`` where the bool ``mask`` (broadcast to ``self``) is True."""
        from .ops.elementwise import scalar_or_array
        if self._in_graph(value):
            return self._rebind("masked_fill_", _ew.masked_fill(self, mask, value))
        self._check_inplace("masked_fill_")
        if not isinstance(mask, Tensor) or mask.dtype.kind != "b":
            raise TypeError(f"masked_fill_: mask must be a bool Tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        v = scalar_or_array(value, self, "masked_fill_")
        try:
            res = self.backend.where(mask.array, v, self.array)
            self.backend.copyto_(self.array, res)
        except ValueError:
            raise ValueError(f"masked_fill_: mask of shape {mask.shape} does not broadcast to "
                             f"the tensor's shape {self.shape}") from None
        return self._bump()

    def _scatter_(self, op, dim, index, src, reduce):
        out = _sh.scatter(self, dim, index, src, reduce=reduce, _op=op)
        if self._in_graph(src):
            return self._rebind(op, out)
        self._check_inplace(op)
        self.backend.copyto_(self.array, out.array)
        return self._bump()

    def scatter_(self, dim, index, src=None, value=None, reduce=None):
        """In place: write ``src`` (a Tensor or a number) at ``index`` along ``dim``,
        e.g. one-hot ``zeros(n, c).scatter_(1, y.unsqueeze(1), 1.0)``."""
        return self._scatter_("scatter_", dim, index, src if src is not None else value,
                              {"add": "add", None: None}.get(reduce, reduce))

    def scatter_add_(self, dim, index, src):
        return self._scatter_("scatter_add_", dim, index, src, "add")

    def scatter(self, dim, index, src=None, value=None, reduce=None):
        return _sh.scatter(self, dim, index, src, value, reduce)

    def scatter_add(self, dim, index, src):
        return _sh.scatter(self, dim, index, src, reduce="add", _op="scatter_add")

    def index_select(self, dim, index): return _sh.index_select(self, dim, index)
    def masked_select(self, mask): return _sh.masked_select(self, mask)
    def nonzero(self, as_tuple=False): return _sh.nonzero(self, as_tuple)
    def argwhere(self): return _sh.nonzero(self)

    def fill_diagonal_(self, fill_value, wrap=False):
        self._check_inplace("fill_diagonal_")
        if self.ndim < 2:
            raise ValueError(f"fill_diagonal_: needs at least 2 dims, got shape {self.shape}")
        n = builtins.min(self.shape)
        r = self.backend.arange(0, n, 1, dtypes.int64)
        self.backend.setitem_(self.array, (r,) * self.ndim, self.dtype.type(fill_value))
        return self._bump()

    def is_floating_point(self):
        return self.dtype.kind == "f"

    def element_size(self):
        return self.dtype.itemsize

    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):
        """The distinct values (sorted), optionally with the inverse indices and counts
        (computed on the host; not differentiable)."""
        if dim is not None:
            raise NotImplementedError("unique: dim= is not supported; flatten first")
        vals, inv, counts = numpy.unique(self.numpy(), return_inverse=True, return_counts=True)
        be = self.backend
        out = [Tensor._make(be.asarray(vals), be)]
        if return_inverse:
            out.append(Tensor._make(be.asarray(inv.reshape(self.shape).astype(numpy.int64)), be))
        if return_counts:
            out.append(Tensor._make(be.asarray(counts.astype(numpy.int64)), be))
        return out[0] if len(out) == 1 else tuple(out)

    def _rounding(self, op):
        return _ew.rounding(op, self)

    def round(self, decimals=0):
        """Round half to even (as PyTorch); not differentiable (zero gradient a.e.)."""
        if decimals:
            scale = 10.0 ** decimals
            return (self * scale)._rounding("round") / scale
        return self._rounding("round")

    def floor(self): return self._rounding("floor")
    def ceil(self): return self._rounding("ceil")
    def trunc(self): return self._rounding("trunc")

    def __deepcopy__(self, memo):
        """``copy.deepcopy(model)`` / ``deepcopy(tensor)``: new storage, same type (a
        Parameter stays a Parameter), requires_grad and grad; graph history is dropped."""
        if self._node is not None:
            raise RuntimeError("deepcopy: only leaf tensors (parameters, buffers, detached "
                               "tensors) support deepcopy; call .detach() first")
        new = object.__new__(type(self))
        new.array = self.backend.copy(self.array)
        new.backend, new._node, new._version = self.backend, None, [0]
        new.requires_grad = self.requires_grad
        new.grad = None if self.grad is None else self.grad.__deepcopy__(memo)
        for k in getattr(type(self), "__slots__", ()):
            if k not in Tensor.__slots__ and hasattr(self, k):
                setattr(new, k, getattr(self, k))
        memo[id(self)] = new
        return new

    def __setitem__(self, index, value):
        from .ops.shape import normalize_index
        from .ops.elementwise import scalar_or_array, _as_tensor
        idx = normalize_index(index, self)
        in_graph = is_grad_enabled() and (
            self.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
        if not in_graph:
            self.backend.setitem_(self.array, idx, scalar_or_array(value, self, "__setitem__"))
            self._bump()
            return
        # differentiable assignment (``buf[t] = h``): self becomes the output of a SetItem
        # node; only a leaf that requires grad refuses, as for every in-place op
        if self._node is None and self.requires_grad:
            self._check_inplace("__setitem__")
        if self.dtype.kind != "f":
            raise TypeError(f"__setitem__: assigning a tensor that requires grad into a "
                            f"{self.dtype} tensor of shape {self.shape}; it must be floating")
        v = _as_tensor(value, self, "__setitem__")
        if v.dtype != self.dtype:
            v = v.to(self.dtype)
        from .ops.shape import SetItem
        out = SetItem.apply(self, idx, v)
        old = self._node
        self._node, self.requires_grad = out._node, True
        self._bump()
        self._move_retained(old)

    # -- arithmetic ------------------------------------------------------------------------------
    def __add__(self, o): return _ew.add(self, o)
    def __radd__(self, o): return _ew.add(o, self)
    def __sub__(self, o): return _ew.sub(self, o)
    def __rsub__(self, o): return _ew.sub(o, self)
    def __mul__(self, o): return _ew.mul(self, o)
    def __rmul__(self, o): return _ew.mul(o, self)
    def __truediv__(self, o): return _ew.div(self, o)
    def __rtruediv__(self, o): return _ew.div(o, self)
    def __pow__(self, o): return _ew.pow(self, o)
    def __rpow__(self, o): return _ew.pow(o, self)
    def __matmul__(self, o): return _la.matmul(self, o)
    def __rmatmul__(self, o): return _la.matmul(o, self)
    def __neg__(self): return _ew.Neg.apply(self)
    def __pos__(self): return self
    def __abs__(self): return _ew.unary("abs", self)
    # other operand types (None, pytest.approx, ...) get NotImplemented, so Python
    # falls back to their reflected method or identity (``t == None`` is False)
    def __eq__(self, o): return _ew.compare("eq", self, o) if _operand(o) else NotImplemented
    def __ne__(self, o): return _ew.compare("ne", self, o) if _operand(o) else NotImplemented
    def __lt__(self, o): return _ew.compare("lt", self, o) if _operand(o) else NotImplemented
    def __le__(self, o): return _ew.compare("le", self, o) if _operand(o) else NotImplemented
    def __gt__(self, o): return _ew.compare("gt", self, o) if _operand(o) else NotImplemented
    def __ge__(self, o): return _ew.compare("ge", self, o) if _operand(o) else NotImplemented
    def __invert__(self): return _ew.invert(self)
    def __xor__(self, o): return _ew.logical("xor", self, o)
    def __floordiv__(self, o): return _ew.floordiv(self, o)
    def __rfloordiv__(self, o): return _ew.floordiv(o, self)
    def __mod__(self, o): return _ew.remainder(self, o)
    def __rmod__(self, o): return _ew.remainder(o, self)
    def __and__(self, o): return _ew.logical("and", self, o)
    def __or__(self, o): return _ew.logical("or", self, o)
    def __rand__(self, o): return _ew.logical("and", o, self)
    def __ror__(self, o): return _ew.logical("or", o, self)
    def __rxor__(self, o): return _ew.logical("xor", o, self)

    def __iadd__(self, o):
        # in place outside the graph (incl. ``p -= lr * p.grad`` under no_grad), else out of place
        return self.add_(o) if not (self.requires_grad and is_grad_enabled()) else self + o

    def __isub__(self, o):
        # in place outside the graph (incl. ``p -= lr * p.grad`` under no_grad), else out of place
        return self.sub_(o) if not (self.requires_grad and is_grad_enabled()) else self - o

    def __imul__(self, o):
        # in place outside the graph (incl. ``p -= lr * p.grad`` under no_grad), else out of place
        return self.mul_(o) if not (self.requires_grad and is_grad_enabled()) else self * o

    def __itruediv__(self, o):
        # in place outside the graph (incl. ``p -= lr * p.grad`` under no_grad), else out of place
        return self.div_(o) if not (self.requires_grad and is_grad_enabled()) else self / o

    def add(self, o, alpha=1): return _ew.add(self, o if alpha == 1 else o * alpha)
    def sub(self, o, alpha=1): return _ew.sub(self, o if alpha == 1 else o * alpha)
    def mul(self, o): return _ew.mul(self, o)
    def div(self, o): return _ew.div(self, o)
    def pow(self, o): return _ew.pow(self, o)
    def matmul(self, o): return _la.matmul(self, o)
    def mm(self, o): return _la.mm(self, o)
    def bmm(self, o): return _la.bmm(self, o)
    def dot(self, o): return _la.dot(self, o)
    def neg(self): return _ew.Neg.apply(self)
    def eq(self, o): return _ew.compare("eq", self, o)
    def ne(self, o): return _ew.compare("ne", self, o)
    def lt(self, o): return _ew.compare("lt", self, o)
    def le(self, o): return _ew.compare("le", self, o)
    def gt(self, o): return _ew.compare("gt", self, o)
    def ge(self, o): return _ew.compare("ge", self, o)
    def maximum(self, o): return _ew.maximum(self, o)
    def minimum(self, o): return _ew.minimum(self, o)
    def exp(self): return _ew.unary("exp", self)
    def log(self): return _ew.unary("log", self)
    def sqrt(self): return _ew.unary("sqrt", self)
    def abs(self): return _ew.unary("abs", self)
    def sin(self): return _ew.unary("sin", self)
    def cos(self): return _ew.unary("cos", self)
    def log1p(self): return _ew.unary("log1p", self)
    def erf(self): return _ew.erf(self)
    def expm1(self): return _ew.unary("expm1", self)
    def atan(self): return _ew.unary("atan", self)
    def atan2(self, other): return _ew.atan2(self, other)
    arctan, arctan2 = atan, atan2
    def sign(self): return _ew.sign(self)
    def square(self): return _ew.mul(self, self)
    def reciprocal(self): return _ew.div(1.0, self)
    def rsqrt(self): return _ew.div(1.0, _ew.unary("sqrt", self))
    def relu(self): return _ew.Relu.apply(self)
    def sigmoid(self): return _ew.unary("sigmoid", self)
    def tanh(self): return _ew.unary("tanh", self)

    def clip(self, min=None, max=None):
        return _ew.clip(self, min, max)

    clamp = clip

    def softmax(self, dim=None, axis=None):
        from .ops.softmax import softmax
        d = _axis(dim, axis)
        return softmax(self, -1 if d is None else d)

    def log_softmax(self, dim=None, axis=None):
        from .ops.softmax import log_softmax
        d = _axis(dim, axis)
        return log_softmax(self, -1 if d is None else d)

    # -- reductions ----------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.to(dtype)  # dtype=: cast first (PyTorch)
        return _rd.sum(x, _axis(dim, axis), keepdim if keepdims is None else keepdims)

    def mean(self, dim=None, keepdim=False, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.to(dtype)
        return _rd.mean(x, _axis(dim, axis), keepdim if keepdims is None else keepdims)

    def var(self, dim=None, keepdim=False, unbiased=True, axis=None, keepdims=None, correction=None):
        ddof = (1 if unbiased else 0) if correction is None else correction
        return _rd.var(self, _axis(dim, axis), keepdim if keepdims is None else keepdims, ddof)

    def std(self, dim=None, keepdim=False, unbiased=True, axis=None, keepdims=None, correction=None):
        return self.var(dim, keepdim, unbiased, axis, keepdims, correction).sqrt()

    def prod(self, dim=None, keepdim=False, axis=None, keepdims=None, dtype=None):
        x = self if dtype is None else self.to(dtype)
        return _rd.prod(x, _axis(dim, axis), keepdim if keepdims is None else keepdims)

    def _minmax(self, op, dim, keepdim, axis, keepdims):
        kd = keepdim if keepdims is None else keepdims
        if isinstance(dim, Tensor):  # torch.max(a, b) style, elementwise
            return _ew.maximum(self, dim) if op == "max" else _ew.minimum(self, dim)
        if dim is not None and isinstance(dim, builtins.int):
            # PyTorch: x.max(dim) returns (values, indices); the gradient goes to the
            # selected index only (amax/max() share it among ties)
            return ValuesIndices(*_rd.select_minmax(op, self, dim, kd))
        return _rd.minmax(op, self, _axis(dim, axis), kd)

    def max(self, dim=None, keepdim=False, axis=None, keepdims=None):
        """``x.max()``; ``x.max(axis=1)`` -> values; ``x.max(1)`` / ``x.max(dim=1)`` ->
        ``(values, indices)`` as PyTorch."""
        return self._minmax("max", dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim=False, axis=None, keepdims=None):
        return self._minmax("min", dim, keepdim, axis, keepdims)

    def amax(self, dim=None, keepdim=False):
        return _rd.minmax("max", self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return _rd.minmax("min", self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False, axis=None, keepdims=None):
        return _rd.argminmax("argmax", self, _axis(dim, axis), keepdim if keepdims is None else keepdims)

    def argmin(self, dim=None, keepdim=False, axis=None, keepdims=None):
        return _rd.argminmax("argmin", self, _axis(dim, axis), keepdim if keepdims is None else keepdims)

    def any(self, dim=None, keepdim=False):
        return Tensor._make(self.backend.reduce("any", self.array, dim, keepdim), self.backend)

    def all(self, dim=None, keepdim=False):
        return Tensor._make(self.backend.reduce("all", self.array, dim, keepdim), self.backend)

    def norm(self, p=2, dim=None, keepdim=False):
        if p == "fro" or p is None:
            p = 2
        if p == builtins.float("inf"):
            return self.abs().amax(dim, keepdim)
        if p == 2:
            return _rd.norm2(self, dim, keepdim)
        if p == 0:  # the number of non-zero entries
            return (self != 0).sum(dim, keepdim).to(self.dtype)
        if p == 1:
            return self.abs().sum(dim, keepdim)
        return (self.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    # -- shape -----------------------------------------------------------------------------------------
    def reshape(self, *shape): return _sh.reshape(self, _sh.shape_arg(shape))
    def view(self, *shape): return _sh.reshape(self, _sh.shape_arg(shape))
    def view_as(self, other): return _sh.reshape(self, other.shape)
    def reshape_as(self, other): return _sh.reshape(self, other.shape)
    def flatten(self, start_dim=0, end_dim=-1): return _sh.flatten(self, start_dim, end_dim)
    def unflatten(self, dim, sizes): return _sh.unflatten(self, dim, sizes)
    def squeeze(self, dim=None): return _sh.squeeze(self, dim)
    def unsqueeze(self, dim): return _sh.unsqueeze(self, dim)
    def permute(self, *dims): return _sh.permute(self, _sh.shape_arg(dims))
    def transpose(self, *axes): return _sh.transpose(self, axes)
    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}; "
                               f"use transpose(dim0, dim1) or .mT")
        return _sh.transpose(self, ())

    def where(self, condition, other): return _ew.where(condition, self, other)
    def expand(self, *shape): return _sh.expand(self, _sh.shape_arg(shape))
    def expand_as(self, other): return _sh.expand(self, other.shape)
    def broadcast_to(self, shape): return _sh.expand(self, tuple(shape))
    def repeat(self, *reps): return _sh.repeat(self, _sh.shape_arg(reps))
    def chunk(self, chunks, dim=0): return _sh.chunk(self, chunks, dim)
    def flip(self, *dims): return _sh.flip(self, _sh.shape_arg(dims))
    def fliplr(self): return _sh.fliplr(self)
    def flipud(self): return _sh.flipud(self)
    def roll(self, shifts, dims=None): return _sh.roll(self, shifts, dims)
    def rot90(self, k=1, dims=(0, 1)): return _sh.rot90(self, k, dims)
    def unbind(self, dim=0): return _sh.unbind(self, dim)
    def cumsum(self, dim, dtype=None): return _rd.cumsum(self if dtype is None else self.to(dtype), dim)
    def logsumexp(self, dim, keepdim=False): return _rd.logsumexp(self, dim, keepdim)
    def tril(self, diagonal=0): return _sh.tri(self, diagonal, lower=True)
    def triu(self, diagonal=0): return _sh.tri(self, diagonal, lower=False)
    def split(self, size, dim=0): return _sh.split(self, size, dim)
    def clone(self, memory_format=None):
        """A copy in the graph (gradient passes through). ``memory_format`` is accepted and
        ignored (a no-op layout hint: the copy is row-major NCHW, see gradflow.layout)."""
        from .layout import check
        check(memory_format, "clone")
        return _sh.Clone.apply(self)

    # -- memory layout ---------------------------------------------------------------------
    def stride(self, dim=None):
        """Strides in elements, as the backend array really has them (a transpose or slice
        is a view with its own strides); ``stride(dim)`` one of them."""
        st = self.backend.strides(self.array)
        if dim is None:
            return st
        if not -builtins.max(self.ndim, 1) <= dim < builtins.max(self.ndim, 1) or self.ndim == 0:
            raise IndexError(f"stride: dimension {dim} out of range for a tensor of shape "
                             f"{self.shape} (valid: {-self.ndim} to {self.ndim - 1})")
        return st[dim]

    def is_contiguous(self, memory_format=None):
        """Truthfully: True when the backend array is row-major contiguous (gradflow's own
        results almost always are; views such as ``x.t()`` or ``x[:, ::2]`` are not).
        ``memory_format=channels_last`` checks NHWC strides of a 4-D tensor (False for
        gradflow's NCHW arrays unless C == 1 or H == W == 1, as in PyTorch)."""
        from . import layout
        layout.check(memory_format, "is_contiguous")
        if memory_format in (None, layout.contiguous_format, layout.preserve_format):
            return self.backend.is_contiguous(self.array)
        order = {layout.channels_last: (0, 2, 3, 1), layout.channels_last_3d: (0, 2, 3, 4, 1)}[
            memory_format]
        if self.ndim != len(order):
            return False
        return layout.strides_match(self.shape, self.stride(), order)

    def contiguous(self, memory_format=None):
        """``self`` if already contiguous, else a row-major copy (differentiable).
        ``memory_format`` (e.g. ``gradflow.channels_last``) is accepted as a no-op layout
        hint: gradflow stays NCHW (see :mod:`gradflow.layout`)."""
        from .layout import check
        check(memory_format, "contiguous")
        return self if self.backend.is_contiguous(self.array) else _sh.Clone.apply(self)

    def storage_offset(self):
        """Elements between the start of the underlying storage and this tensor's first
        element (nonzero for views such as ``x[1:]``)."""
        return self.backend.storage_offset(self.array)

    def data_ptr(self):
        """Address of the first element (equal for tensors sharing storage at one offset)."""
        return self.backend.data_ptr(self.array)
    def masked_fill(self, mask, value): return _ew.masked_fill(self, mask, value)
    def gather(self, dim, index): return _sh.gather(self, dim, index)
    def sort(self, dim=-1, descending=False, stable=False): return _sh.sort(self, dim, descending)
    def argsort(self, dim=-1, descending=False, stable=False): return _sh.argsort(self, dim, descending)
    def topk(self, k, dim=-1, largest=True, sorted=True): return _sh.topk(self, k, dim, largest)
    def isnan(self): return _ew.classify("isnan", self)
    def isinf(self): return _ew.classify("isinf", self)
    def isfinite(self): return _ew.classify("isfinite", self)

    @property
    def T(self):
        return _sh.transpose(self, ())

    @property
    def mT(self):
        """The last two dims swapped (batched matrix transpose)."""
        if self.ndim < 2:
            raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices; "
                               f"got a {self.ndim}-D tensor")
        return _sh.transpose(self, (-2, -1))

    mH = mT  # real dtypes only

    def index_add_(self, dim, index, source, alpha=1):
        """In place: ``self[..., index[i], ...] += alpha * source[..., i, ...]`` along
        ``dim`` (repeated indices accumulate); differentiable in ``source``."""
        if not isinstance(index, Tensor) or index.ndim != 1:
            raise ValueError(f"index_add_: index must be a 1-D integer Tensor, got "
                             f"{getattr(index, 'shape', type(index).__name__)}")
        if not isinstance(source, Tensor):
            source = Tensor(source, dtype=self.dtype, backend=self.backend)
        d = dim % builtins.max(self.ndim, 1)
        if source.ndim != self.ndim or source.shape[d] != index.shape[0]:
            raise ValueError(f"index_add_: source of shape {source.shape} does not match index of "
                             f"length {index.shape[0]} along dim {dim} of a tensor of shape "
                             f"{self.shape}")
        shape = [1] * self.ndim
        shape[d] = index.shape[0]
        idx = index.reshape(shape).expand(*source.shape)
        return self.scatter_add_(d, idx, source if alpha == 1 else source * alpha)

    def index_add(self, dim, index, source, alpha=1):
        return self.clone().index_add_(dim, index, source, alpha)

    def __getitem__(self, index):
        return _sh.getitem(self, index)


_autograd.function.register_tensor_class(Tensor)

# ops import Tensor from this module; bind them after the class exists
from .ops import elementwise as _ew, linalg as _la, reduce as _rd, shape as _sh  # noqa: E402
