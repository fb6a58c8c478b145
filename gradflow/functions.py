"""Module-level spellings of Tensor methods (``gradflow.exp(x)`` == ``x.exp()``)."""
from __future__ import annotations

import builtins as _builtins
import copy as _copy
import math as _math

import numpy

from . import backends as _backends, creation as _creation, dtypes as _dtypes
from .dtypes import finfo, iinfo  # noqa: F401
from .ops import elementwise as _ew, shape as _sh
from .ops.extra import diag, diagonal  # noqa: F401
from .ops.norm import cosine_similarity  # noqa: F401
from .ops.shape import cat as concat  # noqa: F401
from .printing import set_printoptions  # noqa: F401
from .tensor import Tensor


def _m(name):
    def f(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = f"``gradflow.{name}(x, ...)`` is ``x.{name}(...)``."
    return f


exp, log, sqrt, abs, sin, cos = _m("exp"), _m("log"), _m("sqrt"), _m("abs"), _m("sin"), _m("cos")  # noqa: A001
tanh, sigmoid, relu, sign = _m("tanh"), _m("sigmoid"), _m("relu"), _m("sign")
sum, mean, max, min, var, std, prod = (_m("sum"), _m("mean"), _m("max"), _m("min"),  # noqa: A001
                                       _m("var"), _m("std"), _m("prod"))
argmax, argmin, transpose, clamp = _m("argmax"), _m("argmin"), _m("transpose"), _m("clamp")
square, log1p, expm1, amax, amin = _m("square"), _m("log1p"), _m("expm1"), _m("amax"), _m("amin")


def numel(x):
    return x.numel()


def is_tensor(x):
    return isinstance(x, Tensor)


def allclose(a, b, rtol=1e-5, atol=1e-8):
    return bool(numpy.allclose(numpy.asarray(a), numpy.asarray(b), rtol=rtol, atol=atol))


# -- more of torch's namespace ------------------------------------------------------------
pi, e, inf, nan = _math.pi, _math.e, _math.inf, _math.nan
uint8 = _dtypes.uint8


def _cmp(op):
    def f(input, other):
        return _ew.compare(op, input, other)
    f.__name__ = op
    f.__doc__ = f"``gradflow.{op}(a, b)``: elementwise comparison, a bool tensor."
    return f


eq, ne, lt, le, gt, ge = (_cmp(o) for o in ("eq", "ne", "lt", "le", "gt", "ge"))


def equal(a, b):
    """True when ``a`` and ``b`` have the same shape and elements."""
    return a.shape == b.shape and _builtins.bool((a == b).all().item())


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    a, b = _ew.operands(a, b, "isclose")
    be = a.backend
    close = be.binary("le", be.unary("abs", a.array - b.array),
                      atol + rtol * be.unary("abs", b.array))
    if equal_nan:
        close = close | (be.classify("isnan", a.array) & be.classify("isnan", b.array))
    return Tensor._make(close, be)


def _as_bool(x):
    return x if x.dtype.kind == "b" else x != 0


def logical_and(a, b): return _ew.logical("and", _as_bool(a), _as_bool(b))  # noqa: E704
def logical_or(a, b): return _ew.logical("or", _as_bool(a), _as_bool(b))  # noqa: E704
def logical_not(a): return _ew.logical_not(a)  # noqa: E704


def logical_xor(a, b):
    return _as_bool(a) != _as_bool(b)


def where(condition, input=None, other=None):
    """``where(cond, a, b)``: elementwise ``a if cond else b`` (differentiable in a and b);
    ``where(cond)``: ``nonzero(cond, as_tuple=True)``, as PyTorch."""
    if input is None and other is None:
        return _sh.nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (where(condition))")
    return _ew.where(condition, input, other)


def index_select(input, dim, index): return _sh.index_select(input, dim, index)  # noqa: E704
def masked_select(input, mask): return _sh.masked_select(input, mask)  # noqa: E704
def nonzero(input, as_tuple=False): return _sh.nonzero(input, as_tuple)  # noqa: E704
def argwhere(input): return _sh.nonzero(input)  # noqa: E704
def round(input, decimals=0): return input.round(decimals)  # noqa: E704,A001
def floor(input): return input.floor()  # noqa: E704
def ceil(input): return input.ceil()  # noqa: E704
def trunc(input): return input.trunc()  # noqa: E704
def clone(input): return input.clone()  # noqa: E704
def neg(input): return -input  # noqa: E704
def is_floating_point(input): return input.is_floating_point()  # noqa: E704
def masked_fill(input, mask, value): return input.masked_fill(mask, value)  # noqa: E704


def scatter(input, dim, index, src=None, value=None, reduce=None):
    return _sh.scatter(input, dim, index, src, value, reduce)


def scatter_add(input, dim, index, src):
    return _sh.scatter(input, dim, index, src, reduce="add", _op="scatter_add")


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    out = input.norm(p, dim, keepdim)
    return out if dtype is None else out.to(dtype)


def outer(a, b):
    """``a[i] * b[j]`` of two 1-D tensors (differentiable)."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-D tensors, got shapes {a.shape} and {b.shape}")
    return a.reshape(-1, 1) * b.reshape(1, -1)


ger = outer


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    return input.unique(sorted, return_inverse, return_counts, dim)


def bincount(input, weights=None, minlength=0):
    """Counts of each non-negative integer in the 1-D ``input`` (host-side)."""
    if input.ndim != 1 or input.dtype.kind not in "iu":
        raise ValueError(f"bincount: expected a 1-D integer tensor, got shape {input.shape} "
                         f"{input.dtype}")
    a = input.numpy()
    if a.size and a.min() < 0:
        raise ValueError(f"bincount: input must be non-negative, got min {a.min()}")
    w = None if weights is None else weights.numpy()
    out = numpy.bincount(a, weights=w, minlength=minlength)
    dt = _dtypes.int64 if w is None else weights.dtype
    return Tensor._make(input.backend.asarray(out.astype(dt)), input.backend)


def cdist(x1, x2, p=2.0):
    """Pairwise ``p``-norm distances between the rows of ``x1`` (.., P, M) and ``x2``
    (.., R, M): (.., P, R). Differentiable."""
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 2:
        return (d * d).sum(-1).sqrt()
    return d.norm(p, dim=-1)


def _legacy(dt):
    def ctor(*args):
        if len(args) == 1 and not isinstance(args[0], (int, numpy.integer)):
            return _creation.tensor(args[0], dtype=dt)
        return _creation.zeros(*args, dtype=dt)
    return ctor


class _LegacyMeta(type):
    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls._dtype


def _legacy_type(name, dt):
    """``torch.FloatTensor([1, 2])`` (data) / ``FloatTensor(2, 3)`` (sizes); also an
    ``isinstance`` check of the dtype."""
    def __new__(cls, *args):
        return _legacy(dt)(*args)
    return _LegacyMeta(name, (), {"__new__": __new__, "_dtype": dt})


FloatTensor = _legacy_type("FloatTensor", _dtypes.float32)
DoubleTensor = _legacy_type("DoubleTensor", _dtypes.float64)
LongTensor = _legacy_type("LongTensor", _dtypes.int64)
IntTensor = _legacy_type("IntTensor", _dtypes.int32)
BoolTensor = _legacy_type("BoolTensor", _dtypes.bool_)


def seed():
    """Seed every backend from fresh OS entropy; returns the seed."""
    s = int(numpy.random.SeedSequence().entropy % (2 ** 63))
    _creation.manual_seed(s)
    return s


def initial_seed():
    return _backends._seed if _backends._seed is not None else 0


def get_rng_state():
    """The current backend's generator state (an opaque object for ``set_rng_state``)."""
    be = _backends.current_backend()
    return _copy.deepcopy(getattr(be, "_rng", None))


def set_rng_state(state):
    be = _backends.current_backend()
    if state is None or not hasattr(be, "_rng"):
        raise RuntimeError(f"set_rng_state: backend {be.name} has no host generator state")
    be._rng = _copy.deepcopy(state)


# -- one-line spellings of Tensor methods ---------------------------------------------------
def isnan(x): return x.isnan()  # noqa: E704
def isinf(x): return x.isinf()  # noqa: E704
def atan(x): return x.atan()  # noqa: E704
def arctan(x): return x.atan()  # noqa: E704
def isfinite(x): return x.isfinite()  # noqa: E704
def reciprocal(x): return x.reciprocal()  # noqa: E704
def rsqrt(x): return x.rsqrt()  # noqa: E704
def erf(x): return x.erf()  # noqa: E704
def tril(x, diagonal=0): return x.tril(diagonal)  # noqa: E704
def triu(x, diagonal=0): return x.triu(diagonal)  # noqa: E704
def cumsum(x, dim, dtype=None): return x.cumsum(dim, dtype=dtype)  # noqa: E704
def logsumexp(x, dim, keepdim=False): return x.logsumexp(dim, keepdim)  # noqa: E704
def unbind(x, dim=0): return x.unbind(dim)  # noqa: E704


def lerp(input, end, weight):
    """``input + weight * (end - input)`` (differentiable)."""
    return input + (end - input) * weight
