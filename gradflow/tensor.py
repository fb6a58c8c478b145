"""``Tensor``: one backend array plus its place in the autograd graph.

``.array`` is the backend array (numpy or cupy), ``.backend`` the Backend that
owns it, ``.grad`` a Tensor (or None), ``._node`` the graph node (``Context``)
that produced it, ``None`` for leaves.

This module is the core: storage, conversion, the graph handle (``backward``,
``detach``, hooks), the in-place version counter and the in-place updates that
need only the backend. It imports nothing from :mod:`gradflow.ops`. The math
methods (operators, ``sum``, ``reshape``, ``softmax``, ``to`` ...) call ops, so
they are written in :mod:`gradflow.tensor_methods`, one layer above the ops, and
bound onto this class when ``gradflow`` is imported. Methods here may call
``self.<method>()`` of that surface (``self.to``, ``self.clamp``): a late-bound
attribute lookup, not an import.
"""
from __future__ import annotations

import builtins
import weakref
from collections import namedtuple

import numpy

from . import autograd as _autograd, dtypes, layout, printing
from .autograd import RemovableHandle, backward as _backward, is_grad_enabled
from .backends import default_cpu_backend, get_backend
from .device import device as _device

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


class _ScalarError(RuntimeError, ValueError):
    """``item()`` of a tensor that is not one element: a RuntimeError as PyTorch's (and a
    ValueError, as gradflow raised before)."""


_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}


class Size(tuple):
    """PyTorch's ``torch.Size``: a tuple of dims (``x.shape == gradflow.Size([2, 3])``)."""

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


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
        return _device(self.backend.device_type)

    @property
    def is_cuda(self):
        return self.backend.device_type == "cuda"

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
        return printing.tensor_repr(self)

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

    def any(self, dim=None, keepdim=False):
        return Tensor._make(self.backend.reduce("any", self.array, dim, keepdim), self.backend)

    def all(self, dim=None, keepdim=False):
        return Tensor._make(self.backend.reduce("all", self.array, dim, keepdim), self.backend)

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
        layout.check(memory_format, "is_contiguous")
        if memory_format in (None, layout.contiguous_format, layout.preserve_format):
            return self.backend.is_contiguous(self.array)
        order = {layout.channels_last: (0, 2, 3, 1), layout.channels_last_3d: (0, 2, 3, 4, 1)}[
            memory_format]
        if self.ndim != len(order):
            return False
        return layout.strides_match(self.shape, self.stride(), order)

    def storage_offset(self):
        """Elements between the start of the underlying storage and this tensor's first
        element (nonzero for views such as ``x[1:]``)."""
        return self.backend.storage_offset(self.array)

    def data_ptr(self):
        """Address of the first element (equal for tensors sharing storage at one offset)."""
        return self.backend.data_ptr(self.array)


_autograd.function.register_tensor_class(Tensor)
