"""Tensor's math surface: the PyTorch-named operators and methods that call the ops.

:mod:`gradflow.tensor` is the core (storage, the graph handle, versions) and imports
nothing from :mod:`gradflow.ops`, because the ops import ``Tensor``. The methods that
forward to an op (``x + y``, ``x.sum()``, ``x.reshape()``, ``x.to()``, the in-place
ops that may record a graph node, ``x[i] = v``...) are written here, in the body of
:class:`_TensorSurface`, one layer above the ops, and :func:`bind` copies them onto
``Tensor`` when :mod:`gradflow` is imported (``gradflow/__init__.py`` imports this
module right after ``Tensor``). So imports run one way, ops -> tensor, and
``Tensor.__add__`` is still an ordinary method: ``help(Tensor)`` and
``Tensor.sum.__qualname__`` read as before.
"""
from __future__ import annotations

import builtins
import numbers

import numpy

from . import creation as _creation, dtypes, layout as _layout
from .autograd import is_grad_enabled
from .backends import Backend, device_types, is_backend_name
from .device import device as _device
from .ops import elementwise as _ew, linalg as _la, reduce as _rd, shape as _sh, softmax as _sm
from .tensor import Tensor, ValuesIndices


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


_AUGMENTED = {"add": "+=", "sub": "-=", "mul": "*=", "div": "/="}


def _augmented(self, op, o):
    """``x += o`` and friends: in place outside the graph (incl. ``p -= lr * p.grad``
    under no_grad); a leaf that requires grad refuses (as PyTorch: its ``.grad`` would
    silently stay None); a non-leaf graph tensor gets the out-of-place result."""
    if not (self.requires_grad and is_grad_enabled()):
        return getattr(self, op + "_")(o)
    if self._node is None:
        self._check_inplace(f"x {_AUGMENTED[op]} ...")
    return getattr(_ew, op)(self, o)


class _TensorSurface:
    """Not a base class: a namespace whose members :func:`bind` copies onto Tensor."""

    def _new(self, fn, *args, dtype=None, requires_grad=False):
        return getattr(_creation, fn)(*args, dtype=dtype or self.dtype, requires_grad=requires_grad,
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

    # -- moving between backends and dtypes ------------------------------------------------
    def to(self, *args, dtype=None, device=None, backend=None, copy=False, non_blocking=False,
           memory_format=None):
        """``.to("numba")``, ``.to("cuda")``, ``.to(gradflow.device("cpu"))``,
        ``.to(gradflow.float64)``, ``.to(other)`` (its backend and dtype). Differentiable;
        a no-op returns ``self``. ``non_blocking`` is accepted (copies are synchronous);
        ``memory_format`` (``gradflow.channels_last`` ...) is accepted and ignored, a
        deliberate no-op: gradflow stays NCHW (see :mod:`gradflow.layout`)."""
        _layout.check(memory_format, "to")
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
                out = _sh.ToBackend.apply(out, target)
        if dtype is not None:
            dt = dtypes.as_dtype(dtype)
            if dt != out.dtype:
                out = _ew.Cast.apply(out, dt)
        if copy and out is self:
            out = self.clone()
        return out

    # -- in-place updates (outside the graph) -----------------------------------------------
    def _inplace(self, op, other):
        if self.array.dtype.kind != "f":
            self._check_int_inplace(op, other)
        if self._in_graph(other):  # a non-leaf of the graph: rebind to the result (PyTorch
            # allows it); a leaf that requires grad refuses; _rebind checks shape and dtype
            return self._rebind(op + "_", getattr(_ew, op)(self, other))
        self._check_inplace(op + "_")
        b = _ew.scalar_or_array(other, self, op + "_")
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

    def _draw(self, kind, generator):
        if generator is None:
            return getattr(self.backend, kind)(self.shape, self.dtype)
        _creation._check_generator(generator, kind)
        return _creation._host_draw(generator, self.backend, kind, self.shape, self.dtype)

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

    def masked_fill_(self, mask, value):
        """In place: ``value`` where the bool ``mask`` (broadcast to ``self``) is True."""
        if self._in_graph(value):
            return self._rebind("masked_fill_", _ew.masked_fill(self, mask, value))
        self._check_inplace("masked_fill_")
        if not isinstance(mask, Tensor) or mask.dtype.kind != "b":
            raise TypeError(f"masked_fill_: mask must be a bool Tensor, got "
                            f"{getattr(mask, 'dtype', type(mask).__name__)}")
        v = _ew.scalar_or_array(value, self, "masked_fill_")
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

    def __setitem__(self, index, value):
        idx = _sh.normalize_index(index, self)
        in_graph = is_grad_enabled() and (
            self.requires_grad or (isinstance(value, Tensor) and value.requires_grad))
        if not in_graph:
            self.backend.setitem_(self.array, idx, _ew.scalar_or_array(value, self, "__setitem__"))
            self._bump()
            return
        # differentiable assignment (``buf[t] = h``): self becomes the output of a SetItem
        # node; only a leaf that requires grad refuses, as for every in-place op
        if self._node is None and self.requires_grad:
            self._check_inplace("__setitem__")
        if self.dtype.kind != "f":
            raise TypeError(f"__setitem__: assigning a tensor that requires grad into a "
                            f"{self.dtype} tensor of shape {self.shape}; it must be floating")
        v = _ew._as_tensor(value, self, "__setitem__")
        if v.dtype != self.dtype:
            v = v.to(self.dtype)
        out = _sh.SetItem.apply(self, idx, v)
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
    def __neg__(self): return _ew.neg(self)
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
        return _augmented(self, "add", o)

    def __isub__(self, o):
        return _augmented(self, "sub", o)

    def __imul__(self, o):
        return _augmented(self, "mul", o)

    def __itruediv__(self, o):
        return _augmented(self, "div", o)

    def add(self, o, alpha=1): return _ew.add(self, o if alpha == 1 else o * alpha)
    def sub(self, o, alpha=1): return _ew.sub(self, o if alpha == 1 else o * alpha)
    def mul(self, o): return _ew.mul(self, o)
    def div(self, o): return _ew.div(self, o)
    def pow(self, o): return _ew.pow(self, o)
    def matmul(self, o): return _la.matmul(self, o)
    def mm(self, o): return _la.mm(self, o)
    def bmm(self, o): return _la.bmm(self, o)
    def dot(self, o): return _la.dot(self, o)
    def neg(self): return _ew.neg(self)
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
        d = _axis(dim, axis)
        return _sm.softmax(self, -1 if d is None else d)

    def log_softmax(self, dim=None, axis=None):
        d = _axis(dim, axis)
        return _sm.log_softmax(self, -1 if d is None else d)

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
        _layout.check(memory_format, "clone")
        return _sh.Clone.apply(self)

    def contiguous(self, memory_format=None):
        """``self`` if already contiguous, else a row-major copy (differentiable).
        ``memory_format`` (e.g. ``gradflow.channels_last``) is accepted as a no-op layout
        hint: gradflow stays NCHW (see :mod:`gradflow.layout`)."""
        _layout.check(memory_format, "contiguous")
        return self if self.backend.is_contiguous(self.array) else _sh.Clone.apply(self)
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


def bind(cls, surface=_TensorSurface):
    """Copy every member of ``surface`` onto ``cls`` (methods, properties, aliases),
    renamed so that ``__qualname__`` says ``Tensor.<name>``."""
    for name, member in vars(surface).items():
        # (Python sets __hash__ = None on a class body that defines __eq__: Tensor keeps its own)
        if name in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__hash__"):
            continue
        fn = member.fget if isinstance(member, property) else member
        if callable(fn) and hasattr(fn, "__qualname__"):
            fn.__qualname__ = f"{cls.__name__}.{fn.__name__}"
        setattr(cls, name, member)


bind(Tensor)
